"""What the client retries, when a request may be sent again, and for how long.

``is_transient`` is the client package's one idea of a passing failure: the API could not
be reached (connection refused, reset or cut off; a timeout) or answered that it cannot
serve now (429 Too Many Requests, 502, 503, 504). A 500 is not transient: the API answers
its own passing troubles (Redis away, the store locked) with 503, so a 500 is a fault that
the same request meets again, and retrying it would only delay the error.

``may_replay`` says whether a request that failed so may be sent again. A request that
surely took no effect may always be: no connection was made (refused, connect timeout,
no free connection), or the API turned it away (429, and 503: the API answers 503 before
anything is committed, and carries committed changes to Redis later when Redis is away).
A request that may have taken effect (the connection broke after it was sent, the answer
timed out, a proxy's 502 or 504) is sent again only when sending it twice does what
sending it once does: GET, PUT and DELETE, the calls the client marks idempotent
(heartbeats, upserts), and calls carrying an ``Idempotency-Key``.

``RetryPolicy`` values say for how long, and whether a refused connection is waited out;
each client has one (``FlowyardClient(retry=…)``):

- ``INTERACTIVE``: a person is waiting (the CLI). A refused connection (nothing listens)
  fails at once with a hint; other transient failures are retried for 10 s.
- ``STANDARD``: engines, the SDK, blocks. Everything transient, a server restarting
  included, is retried for 10 s.
- ``WORKER``: workers and ``serve``, which run for days: retried for 30 s, then their own
  loops carry on.
- ``ONCE``: one attempt (probes, a stopping worker's goodbye, tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from flowyard.errors import ApiError, ApiUnavailable

TRANSIENT_STATUS = frozenset({0, 429, 502, 503, 504})  # 0: no answer (unreachable, timed out)
TURNED_AWAY = frozenset({429, 503})  # answered before doing anything
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
IDEMPOTENCY_KEY = "Idempotency-Key"
# raised before a request left: nothing reached the API
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def is_transient(exc: BaseException) -> bool:
    """True when the same request may succeed if sent again a little later."""
    return isinstance(exc, ApiError) and exc.status_code in TRANSIENT_STATUS


def refused(exc: BaseException) -> bool:
    """True when nothing listens at the API's address (the connection was refused)."""
    return isinstance(exc, ApiUnavailable) and exc.refused


def took_no_effect(exc: BaseException) -> bool:
    """True when the failed request surely changed nothing: it never reached the API, or
    the API turned it away."""
    if isinstance(exc, ApiError) and exc.status_code in TURNED_AWAY:
        return True
    return isinstance(exc.__cause__, _NOT_SENT)


def may_replay(exc: BaseException, *, idempotent: bool) -> bool:
    """True when a request that failed with ``exc`` may be sent again as it is."""
    return is_transient(exc) and (idempotent or took_no_effect(exc))


@dataclass(frozen=True)
class RetryPolicy:
    """How long transient failures are retried, and whether a refused connection is."""

    name: str
    seconds: float
    wait_refused: bool = True
    first_wait: float = 0.1
    max_wait: float = 2.0

    def retries(self, exc: BaseException, *, idempotent: bool) -> bool:
        """True when this policy sends the request that failed with ``exc`` again."""
        if refused(exc) and not self.wait_refused:
            return False
        return may_replay(exc, idempotent=idempotent)


INTERACTIVE = RetryPolicy("interactive", seconds=10.0, wait_refused=False)
STANDARD = RetryPolicy("standard", seconds=10.0)
WORKER = RetryPolicy("worker", seconds=30.0)
ONCE = RetryPolicy("once", seconds=0.0)
