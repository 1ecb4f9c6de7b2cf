"""`python -m paylimit …` is the `paylimit` command (how child processes are started)."""

from paylimit.cli.main import app

app()
