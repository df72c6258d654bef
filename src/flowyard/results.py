"""``flowyard.results``: result storage and records (local files under ``FLOWYARD_HOME``)."""

from flowyard.sdk.results import (
    LocalFileSystem,
    ResultRecord,
    ResultStore,
    SerializationError,
    default_storage,
)

__all__ = [
    "LocalFileSystem",
    "ResultRecord",
    "ResultStore",
    "SerializationError",
    "default_storage",
]
