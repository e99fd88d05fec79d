"""Great Expectations suites for positions and instruments, as code, and their runner.

Importing this package imports GX (seconds): flows import it inside the validate task only.
"""
