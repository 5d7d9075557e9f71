"""orchestrator: one command from a laptop to a monitored GPU model server on UpCloud, and back down."""

__version__ = "0.1.0"
