"""``flowyard.transactions``: commit or undo the side effects of task runs together (as
``prefect.transactions``)."""

from flowyard.sdk.transactions import (
    CommitMode,
    IsolationLevel,
    Transaction,
    TransactionState,
    get_transaction,
    transaction,
)

__all__ = [
    "CommitMode",
    "IsolationLevel",
    "Transaction",
    "TransactionState",
    "get_transaction",
    "transaction",
]
