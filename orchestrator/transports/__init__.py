"""Transports: how actions reach the world (local processes, SSH, HTTP) or a recording of them (dry-run)."""
