"""``flowyard.exceptions``: the errors Flowyard code may raise into a flow (as
``prefect.exceptions``), importable from one place."""

from flowyard.errors import FlowyardError
from flowyard.sdk.context import MissingContextError
from flowyard.sdk.futures import UpstreamTaskError
from flowyard.sdk.parameters import ParameterTypeError
from flowyard.sdk.pause import FlowPauseTimeout
from flowyard.sdk.results import MissingResult, SerializationError
from flowyard.sdk.signing import UntrustedResult
from flowyard.sdk.tasks import MappingLengthMismatch, MappingMissingIterable
from flowyard.sdk.timeouts import FlowRunTimeoutError, TaskRunTimeoutError
from flowyard.states import CancelledRun, CrashedRun, FailedRun, PausedRun, UnfinishedRun

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
    "PausedRun",
    "SerializationError",
    "TaskRunTimeoutError",
    "UnfinishedRun",
    "UntrustedResult",
    "UpstreamTaskError",
]
