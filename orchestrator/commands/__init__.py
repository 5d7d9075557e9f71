"""One module per command that is more than a playbook run: cli.py declares it, the module does it."""
