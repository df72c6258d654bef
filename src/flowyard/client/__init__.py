"""The one HTTP client of the Flowyard API, used by workers, the engine and the CLI."""

from flowyard.client.http import FlowyardClient, is_transient

__all__ = ["FlowyardClient", "is_transient"]
