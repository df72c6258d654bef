"""``flowyard.results``: result storage and records (local files under ``FLOWYARD_HOME``).

``load_result(ref)`` reads a persisted result back from any process, given its reference
(``client.read_flow_run(id).result``, or the flow run or task run document itself), from
a storage the reader trusts (``storage=``, its default folder, or a saved block).
Pickled records are read only when signed with the result signing key.
"""

from flowyard.errors import MissingResult, SerializationError, UntrustedResult
from flowyard.sdk.result_refs import load_result
from flowyard.sdk.results import LocalFileSystem, ResultRecord, ResultStore, default_storage

__all__ = [
    "LocalFileSystem",
    "MissingResult",
    "ResultRecord",
    "ResultStore",
    "SerializationError",
    "UntrustedResult",
    "default_storage",
    "load_result",
]
