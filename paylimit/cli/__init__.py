"""The `paylimit` command: a typer root with one module per command group."""
