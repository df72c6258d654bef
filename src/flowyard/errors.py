"""Flowyard's errors, one small tree: every error that crosses a room, or reaches a user or
a flow, is defined here (``flowyard.exceptions`` is Prefect's path to the ones a flow meets).

::

    FlowyardError
    ├── NotFound            – a pool, queue, deployment, flow run or worker does not exist
    ├── Conflict            – the request contradicts current state (name taken, illegal transition)
    ├── InvalidInput        – bad parameters, entrypoint, job variables or options
    │   ├── EntrypointError – a flow entrypoint is malformed, leaves its folder, or cannot load
    │   └── ParameterTypeError – a flow parameter does not match its type hint
    ├── Forbidden           – the API key may not do this
    ├── QueueUnavailable    – Redis cannot be reached; the store still holds every run
    ├── ApiError            – the API answered with an error (client side)
    │   └── ApiUnavailable  – the API could not be reached at all
    ├── ForkServerError     – the process worker's fork server failed (runs fall back)
    ├── DockerError         – the Docker engine refused or failed a worker's operation
    ├── KubernetesError     – the Kubernetes API refused a request or could not be reached
    ├── LambdaError         – AWS Lambda refused or failed an invocation
    ├── NotificationError   – a notification service refused a message or could not be reached
    ├── ActionFailed        – an automation action's attempt failed (its row says why)
    │   in flows and tasks (the SDK, as Prefect's exceptions):
    ├── FailedRun, CrashedRun, CancelledRun, PausedRun, UnfinishedRun – State.result()
    │   of a run that did not complete
    ├── UpstreamTaskError   – an upstream task run did not complete
    ├── MappingLengthMismatch, MappingMissingIterable – Task.map's arguments (also ValueError)
    ├── SerializationError, MissingResult – a result cannot be written or read back
    ├── UntrustedResult     – a result from an untrusted storage, or unsigned
    ├── FlowPauseTimeout    – a paused flow was not resumed in time
    ├── MissingContextError – run-only code called outside any run
    ├── ConfigurationError  – a transaction's isolation level needs a lock manager
    └── ConcurrencySlotAcquisitionError – a strict concurrency name has no limit

    ValueError
    └── EventTooLarge       – an event is larger than the server stores (emit_event)

    BaseException (as Prefect's signals)
    └── Pause               – suspend_flow_run stops the flow it suspends

    TimeoutError (as Prefect's)
    ├── TaskRunTimeoutError – a task run exceeded its timeout_seconds
    └── FlowRunTimeoutError – a flow run exceeded its timeout_seconds

Third-party errors are translated into these at the boundary that meets them. Exceptions
that never leave the module that raises them (a stop signal between two functions, a
refusal turned into a response at once) stay beside their code.
"""

from __future__ import annotations

from typing import Any


class FlowyardError(Exception):
    """Base of every error Flowyard raises on purpose."""


class NotFound(FlowyardError):
    """Raised when a named object does not exist."""


class Conflict(FlowyardError):
    """Raised when a request contradicts the current state of an object."""


class InvalidInput(FlowyardError):
    """Raised when user input (parameters, options, entrypoints) is malformed."""


class Forbidden(FlowyardError):
    """Raised when the caller's API key does not allow the request."""


class QueueUnavailable(FlowyardError):
    """Raised when the Redis queue backend cannot be reached."""


class EntrypointError(InvalidInput):
    """Raised when an entrypoint is malformed, leaves its working directory, or cannot be
    loaded."""


class ApiError(FlowyardError):
    """Raised by the client when the API answers with an error status."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class ApiUnavailable(ApiError):
    """Raised by the client when the API cannot be reached after retries; ``refused`` when
    nothing listens at its address (the connection was refused)."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(0, message)
        self.refused = refused


class ForkServerError(FlowyardError):
    """Raised when the fork server cannot start, refuses a spawn, or died before answering."""


class DockerError(FlowyardError):
    """Raised when the Docker engine refuses or fails an operation of the worker."""


class KubernetesError(FlowyardError):
    """Raised when the Kubernetes API server refuses a request or cannot be reached."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class LambdaError(FlowyardError):
    """Raised when Lambda refused or failed an invocation the worker made."""


class NotificationError(FlowyardError):
    """Raised when a notification service refuses a message or cannot be reached in time.

    ``service`` names it (``Slack``, ``email``…) and ``status`` is its last answer (an HTTP
    status or an SMTP code), None when it never answered; the message holds no secret.
    """

    def __init__(self, service: str, status: int | None, message: str) -> None:
        super().__init__(message)
        self.service = service
        self.status = status


class EventTooLarge(ValueError):
    """Raised when an event is larger than the server stores."""

    def __init__(self, size: int, maximum: int) -> None:
        super().__init__(f"event is {size} bytes, more than the limit of {maximum} bytes")
        self.size, self.maximum = size, maximum


# -- in flows and tasks (the SDK) ----------------------------------------------------------


class ParameterTypeError(InvalidInput):
    """A flow parameter does not match its type hint (Prefect's ``ParameterTypeError``)."""


class ActionFailed(FlowyardError):
    """Raised by the job when an attempt failed: the action row holds the error, and RQ
    keeps the job in its failed registry once no retry is left."""


class FailedRun(FlowyardError):
    """Raised by ``State.result()`` when a Failed state carries no exception of its own."""


class CrashedRun(FlowyardError):
    """Raised by ``State.result()`` for a Crashed state without an exception."""


class CancelledRun(FlowyardError):
    """Raised by ``State.result()`` for a Cancelled state."""


class PausedRun(FlowyardError):
    """Raised by ``State.result()`` for a Paused state: a paused run has no result yet."""


class UnfinishedRun(FlowyardError):
    """Raised by ``State.result()`` when the run has not reached a final state."""


class UpstreamTaskError(FlowyardError):
    """Raised when a task cannot run because an upstream task run did not complete."""


class MappingLengthMismatch(FlowyardError, ValueError):
    """Raised by ``Task.map`` when its iterable arguments differ in length (Prefect's name;
    still a ``ValueError``, as Flowyard raised before)."""


class MappingMissingIterable(FlowyardError, ValueError):
    """Raised by ``Task.map`` when none of its arguments is iterable."""


class SerializationError(FlowyardError):
    """Raised when a result cannot be serialized (or read back) for persistence."""


class MissingResult(FlowyardError):
    """Raised when a persisted result cannot be read back (never persisted, gone, expired
    or unreadable)."""


class UntrustedResult(FlowyardError):
    """Raised when a result would be read from a storage this process does not trust, or
    unpickled although it is unsigned or its signature does not match the signing key."""


class FlowPauseTimeout(FlowyardError):
    """Raised in a paused flow that was not resumed within its ``timeout``."""


class Pause(BaseException):  # noqa: N818 - Prefect's name for it
    """Raised by ``suspend_flow_run`` in the flow it suspends: the flow run stops where it
    is, its process exits, and it starts again from the top once resumed. A
    ``BaseException``, as in Prefect: ``except Exception`` in the flow does not stop it."""

    def __init__(self, message: str = "The flow run was suspended.", state: Any = None) -> None:
        super().__init__(message)
        self.state = state


class MissingContextError(FlowyardError):
    """Raised when code that needs a run is called outside any flow run or task run."""


class ConfigurationError(FlowyardError):
    """Raised when a transaction asks for an isolation level its result store cannot
    give (``SERIALIZABLE`` without a lock manager), as Prefect's."""


class ConcurrencySlotAcquisitionError(FlowyardError):
    """Raised by ``strict`` when a name has no concurrency limit (or no API is configured)."""


class TaskRunTimeoutError(TimeoutError):
    """Raised when a task run exceeds its ``timeout_seconds``."""


class FlowRunTimeoutError(TimeoutError):
    """Raised when a flow run exceeds its ``timeout_seconds``."""
