"""The ``flowyard`` command."""
