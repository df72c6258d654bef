"""``flowyard.exceptions``: the errors Flowyard code may raise into a flow (as
``prefect.exceptions``), importable from one place."""

from flowyard.errors import (
    CancelledRun,
    CrashedRun,
    FailedRun,
    FlowPauseTimeout,
    FlowRunTimeoutError,
    FlowyardError,
    MappingLengthMismatch,
    MappingMissingIterable,
    MissingContextError,
    MissingResult,
    ParameterTypeError,
    Pause,
    PausedRun,
    SerializationError,
    TaskRunTimeoutError,
    UnfinishedRun,
    UntrustedResult,
    UpstreamTaskError,
)

__all__ = [
    "CancelledRun",
    "CrashedRun",
    "FailedRun",
    "FlowPauseTimeout",
    "FlowRunTimeoutError",
    "FlowyardError",
    "MappingLengthMismatch",
    "MappingMissingIterable",
    "MissingContextError",
    "MissingResult",
    "ParameterTypeError",
    "Pause",
    "PausedRun",
    "SerializationError",
    "TaskRunTimeoutError",
    "UnfinishedRun",
    "UntrustedResult",
    "UpstreamTaskError",
]
