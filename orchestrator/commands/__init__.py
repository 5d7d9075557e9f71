"""Small command modules beside cli.py: each holds one command's work (cli.py keeps the typer declarations)."""
