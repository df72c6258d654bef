"""``flowyard.runner.storage``, as ``prefect.runner.storage``: ``GitRepository`` for
``flow.from_source`` (built in ``flowyard.sdk.sources``)."""

from flowyard.sdk.sources import GitRepository

__all__ = ["GitRepository"]
