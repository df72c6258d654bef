"""The client's one transient-error predicate, its replay rule and its named policies: pure
decisions first, then the transport against real loopback servers."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from flowyard.cli.processes import free_port
from flowyard.client import INTERACTIVE, ONCE, STANDARD, WORKER, RetryPolicy, is_transient
from flowyard.client.retries import may_replay
from flowyard.client.transport import ApiTransport
from flowyard.errors import ApiError, ApiUnavailable


def _from(cause: BaseException, error: ApiError) -> ApiError:
    """``error`` as the transport raises it: translated from ``cause``."""
    error.__cause__ = cause
    return error


REFUSED = _from(httpx.ConnectError("refused"), ApiUnavailable("refused", refused=True))
CUT_OFF = _from(httpx.RemoteProtocolError("disconnected"), ApiUnavailable("cut off"))
READ_TIMEOUT = _from(httpx.ReadTimeout("slow"), ApiError(0, "timed out"))


class TestIsTransient:
    def test_unreachable_timed_out_and_busy_are_transient(self):
        """No answer, 429, 502, 503 and 504 may pass if the request is sent again."""
        errors = [REFUSED, CUT_OFF, READ_TIMEOUT, *(ApiError(c, "") for c in (429, 502, 503, 504))]
        assert all(is_transient(error) for error in errors)

    def test_a_500_and_the_callers_mistakes_are_not(self):
        """A 500 is a fault the same request meets again; 4xx are the request's own."""
        codes = (400, 401, 403, 404, 409, 413, 422, 500)
        assert not any(is_transient(ApiError(code, "")) for code in codes)
        assert not is_transient(ValueError("not the API's"))


class TestMayReplay:
    def test_a_request_that_took_no_effect_may_always_be_sent_again(self):
        """Refused (never sent), 429 and 503 (turned away): even a claim is sent again."""
        for error in (REFUSED, ApiError(429, ""), ApiError(503, "")):
            assert may_replay(error, idempotent=False)

    def test_a_request_that_may_have_taken_effect_only_when_idempotent(self):
        """Cut off after sending, an answer that timed out, a proxy's 502/504: only an
        idempotent request (or one with an idempotency key) is sent again."""
        for error in (CUT_OFF, READ_TIMEOUT, ApiError(502, ""), ApiError(504, "")):
            assert not may_replay(error, idempotent=False)
            assert may_replay(error, idempotent=True)

    def test_what_is_not_transient_is_never_sent_again(self):
        """A 404 stays a 404."""
        assert not may_replay(ApiError(404, ""), idempotent=True)


class TestPolicies:
    def test_only_a_person_waiting_gives_up_on_a_refused_connection(self):
        """INTERACTIVE fails at once when nothing listens; the others wait a restart out."""
        assert not INTERACTIVE.retries(REFUSED, idempotent=True)
        assert all(p.retries(REFUSED, idempotent=True) for p in (STANDARD, WORKER))
        assert INTERACTIVE.retries(ApiError(503, ""), idempotent=False)

    def test_workers_wait_longest_and_once_means_one_attempt(self):
        """The named bounds: 10 s for people and engines, 30 s for workers, none for ONCE."""
        assert (INTERACTIVE.seconds, STANDARD.seconds, WORKER.seconds) == (10.0, 10.0, 30.0)
        with ApiTransport("http://127.0.0.1:1", retry=ONCE) as api:
            assert api.retry_seconds == 0


class CuttingHandler(BaseHTTPRequestHandler):
    """Closes the connection without answering the first ``cuts`` requests of each path,
    then answers ``{"n": <requests so far>}``; counts what it received."""

    seen: Counter[str]
    cuts: int

    def _handle(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.seen[self.path] += 1
        if self.seen[self.path] <= self.cuts:
            self.close_connection = True  # nothing written: the client sees the cut
            return
        body = b'{"n": %d}' % self.seen[self.path]
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _handle

    def log_message(self, *args: object) -> None:
        """Quiet."""


@contextmanager
def cutting_server(cuts: int = 1) -> Iterator[tuple[str, Counter[str]]]:
    seen: Counter[str] = Counter()
    handler = type("Handler", (CuttingHandler,), {"seen": seen, "cuts": cuts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


QUICK = RetryPolicy("quick", seconds=5.0, first_wait=0.01)


class TestTransport:
    def test_a_post_cut_off_after_sending_is_not_sent_again(self):
        """The connection broke after the request left: it may have taken effect, so a
        plain POST (a claim, a run created) fails instead of being sent twice."""
        with cutting_server() as (url, seen), ApiTransport(url, retry=QUICK) as api:
            with pytest.raises(ApiUnavailable, match="lost the connection"):
                api.request("POST", "/api/claim", json={})
        assert seen["/api/claim"] == 1

    def test_idempotent_calls_are_sent_again_after_a_cut(self):
        """GET, a POST marked idempotent, and a POST with an idempotency key are sent again
        and succeed on the second attempt."""
        with cutting_server() as (url, seen), ApiTransport(url, retry=QUICK) as api:
            assert api.get("runs") == {"n": 2}
            assert api.request("POST", "/api/beat", json={}, idempotent=True) == {"n": 2}
            keyed = {"Idempotency-Key": "k-1"}
            assert api.request("POST", "/api/claim", json={}, headers=keyed) == {"n": 2}
        assert seen == {"/api/runs": 2, "/api/beat": 2, "/api/claim": 2}

    def test_an_interactive_client_fails_at_once_with_the_hint_when_nothing_listens(self):
        """Connection refused under INTERACTIVE: one attempt, well under a second, and the
        error says how to start the API (a worker's policy would wait 30 s)."""
        url = f"http://127.0.0.1:{free_port()}"
        with ApiTransport(url, retry=INTERACTIVE) as api:
            started = time.monotonic()
            with pytest.raises(ApiUnavailable) as info:
                api.get("work_pools")
            elapsed = time.monotonic() - started
        assert elapsed < 1.0
        assert info.value.refused
        assert str(info.value) == (
            f"cannot reach the Flowyard API at {url} (connection refused)"
            " — start it with: flowyard server start"
        )
