"""`python -m orchestrator` runs the CLI."""

from orchestrator.entry import main

main()
