"""Flowyard's errors, one small tree.

::

    FlowyardError
    ├── NotFound            – a pool, queue, deployment, flow run or worker does not exist
    ├── Conflict            – the request contradicts current state (name taken, illegal transition)
    ├── InvalidInput        – bad parameters, entrypoint, job variables or options
    │   └── EntrypointError – a flow entrypoint is malformed, leaves its folder, or cannot load
    ├── Forbidden           – the API key may not do this
    ├── QueueUnavailable    – Redis cannot be reached; the store still holds every run
    ├── ApiError            – the API answered with an error (client side)
    │   └── ApiUnavailable  – the API could not be reached at all
    ├── ForkServerError     – the process worker's fork server failed (runs fall back)
    ├── DockerError         – the Docker engine refused or failed a worker's operation
    └── NotificationError   – a notification service refused a message or could not be reached

Third-party errors are translated into these at the boundary that meets them.
"""

from __future__ import annotations


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


class NotificationError(FlowyardError):
    """Raised when a notification service refuses a message or cannot be reached in time.

    ``service`` names it (``Slack``, ``email``…) and ``status`` is its last answer (an HTTP
    status or an SMTP code), None when it never answered; the message holds no secret.
    """

    def __init__(self, service: str, status: int | None, message: str) -> None:
        super().__init__(message)
        self.service = service
        self.status = status
