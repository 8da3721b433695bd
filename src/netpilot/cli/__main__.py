"""`python -m netpilot.cli`: the same as the `netpilot` command."""

from netpilot.cli import main

main()
