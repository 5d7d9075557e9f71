"""Commands that operate a deployed server (logs, ssh, extend): one small module each, called from cli.py."""
