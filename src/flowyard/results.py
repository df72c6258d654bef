"""``flowyard.results``: result storage and records (local files under ``FLOWYARD_HOME``).

``load_result(ref)`` reads a persisted result back from any process, given its reference
(``client.read_flow_run(id).result``, or the flow run or task run document itself).
"""

from flowyard.sdk.results import (
    LocalFileSystem,
    MissingResult,
    ResultRecord,
    ResultStore,
    SerializationError,
    default_storage,
    load_result,
)

__all__ = [
    "LocalFileSystem",
    "MissingResult",
    "ResultRecord",
    "ResultStore",
    "SerializationError",
    "default_storage",
    "load_result",
]
