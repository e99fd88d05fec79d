"""Great Expectations suites for positions and instruments, as code, and their runner."""
