"""`python -m posguard.cli`: the same as the `posguard` command."""

from posguard.cli import main

main()
