"""What many test modules share: the ``flowyard`` command as a user types it, fake HTTP
servers, and the run and database helpers that several suites need (a test module never
imports another test module: what two share lives here)."""
