"""``python -m flowyard`` is the ``flowyard`` command."""

from flowyard.cli.main import cli

if __name__ == "__main__":
    cli()
