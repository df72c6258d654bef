"""Bounded input: what a request may bring, and that the server always answers (real server)."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from flowyard.orchestrator.limits import BodyRefused, inspect_json
from tests.servers import running_server

LIMIT = 256 * 1024  # a small body limit, so that the tests send little


def nested(levels: int) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for _ in range(levels):
        document = {"a": document}
    return document


def errors(response: httpx.Response) -> list[dict[str, Any]]:
    """The 422's detail, checked to have the published shape: a list of {loc, msg, type}."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    for error in detail:
        assert {"loc", "msg", "type"} <= error.keys() and isinstance(error["loc"], list)
    return detail


def post(http: httpx.Client, path: str, body: Any) -> httpx.Response:
    """POST ``body`` as ASCII JSON (so that lone surrogates travel as escapes)."""
    headers = {"content-type": "application/json"}
    return http.post(path, content=json.dumps(body).encode(), headers=headers)


def refused(response: httpx.Response, field: str, words: str) -> None:
    """A 422 naming ``field`` (the last part of an error's location) and saying ``words``."""
    found = [(e["loc"], e["msg"]) for e in errors(response)]
    assert any(str(loc[-1]) == field and words in msg for loc, msg in found), found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"FLOWYARD_MAX_REQUEST_BYTES": str(LIMIT)}
    with running_server(tmp_path_factory.mktemp("limits-server"), env) as process:
        yield process


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def api(server: ServerProcess) -> Iterator[FlowyardClient]:
    with FlowyardClient(server.url, retry_seconds=0) as client:
        yield client


class TestJsonDepth:
    def test_deep_parameters_are_refused_naming_the_field_and_the_limit(
        self, http: httpx.Client
    ) -> None:
        """300 levels of parameters: 422 on parameters, and the run list still answers."""
        response = http.post(
            "/api/flow_runs", json={"flow_name": "deep", "parameters": nested(300)}
        )
        refused(response, "parameters", "nests deeper than 64 levels (FLOWYARD_MAX_BODY_DEPTH)")
        response = http.post("/api/flow_runs", json={"flow_name": "deep", "parameters": nested(40)})
        refused(response, "parameters", f"nested deeper than {s.MAX_JSON_DEPTH} levels")
        assert http.get("/api/flow_runs").status_code == 200

    def test_deep_task_run_parameters_are_refused_in_bulk(
        self, http: httpx.Client, api: FlowyardClient
    ) -> None:
        """The bulk task-run route refuses a record nested too deep, naming it."""
        run = api.create_flow_run(s.FlowRunCreate(flow_name="bulk"))
        record = {
            "id": str(uuid.uuid4()),
            "flow_run_id": run.id,
            "name": "t-0",
            "task_key": "t",
            "state": "COMPLETED",
            "parameters": nested(40),
        }
        response = http.post("/api/task_runs/bulk", json=[record])
        refused(response, "parameters", "nested deeper than 32 levels")
        assert http.get(f"/api/flow_runs/{run.id}/task_runs").json() == []

    def test_rows_stored_before_the_limit_do_not_break_reads(
        self, server: ServerProcess, api: FlowyardClient
    ) -> None:
        """A run whose stored parameters nest 300 deep is listed (cut), by the API and the CLI."""
        run = api.create_flow_run(s.FlowRunCreate(flow_name="old", parameters={"x": 1}))
        with sqlite3.connect(server.home / "flowyard.db") as db:
            db.execute(
                "UPDATE flow_runs SET parameters = ? WHERE id = ?",
                (json.dumps(nested(300)), run.id),
            )
        listed = {r.id: r for r in api.list_flow_runs(limit=10_000)}
        cut = listed[run.id].parameters
        for _ in range(s.MAX_JSON_DEPTH - 1):
            cut = cut["a"]
        assert cut == {"a": f"<cut: nested deeper than {s.MAX_JSON_DEPTH} levels>"}
        env = {"FLOWYARD_API_URL": server.url, "PYTHONPATH": ":".join(sys.path)}
        done = subprocess.run(
            [sys.executable, "-m", "flowyard", "flow-run", "ls"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and run.id[:8] in done.stdout, done.stderr

    def test_stored_non_finite_numbers_do_not_break_reads(
        self, server: ServerProcess, api: FlowyardClient
    ) -> None:
        """A NaN stored before the door refused it reads back as its name, not a 500."""
        run = api.create_flow_run(s.FlowRunCreate(flow_name="nan", parameters={"x": 1}))
        with sqlite3.connect(server.home / "flowyard.db") as db:
            db.execute("UPDATE flow_runs SET parameters = ? WHERE id = ?", ('{"x": NaN}', run.id))
        assert api.read_flow_run(run.id).parameters == {"x": "nan"}

    def test_the_client_names_the_field_in_its_error(self, api: FlowyardClient) -> None:
        """A 422's list reads as 'field: message' in the client's (and so the CLI's) errors."""
        with pytest.raises(ApiError) as caught:
            api.request("POST", "/api/flow_runs", json={"flow_name": "x", "parameters": nested(40)})
        assert caught.value.status_code == 422
        assert caught.value.message == "parameters: nested deeper than 32 levels"


class TestBodySize:
    def test_a_body_over_the_limit_is_refused_with_413(self, http: httpx.Client) -> None:
        """Announced by its Content-Length: refused before it is read."""
        log = {"flow_run_id": "x", "message": "m" * LIMIT, "timestamp": "2026-01-01T00:00:00Z"}
        response = http.post("/api/logs", json=[log])
        assert response.status_code == 413
        assert "FLOWYARD_MAX_REQUEST_BYTES" in response.json()["detail"]

    def test_a_streamed_body_without_length_is_cut_at_the_limit(self, http: httpx.Client) -> None:
        """Chunked, with no Content-Length: refused once it outgrows the limit."""

        def chunks() -> Iterator[bytes]:
            yield b'[{"flow_run_id": "x", "timestamp": "2026-01-01T00:00:00Z", "message": "'
            for _ in range(64):
                yield b"m" * 16 * 1024
            yield b'"}]'

        response = http.post("/api/logs", content=chunks())
        assert response.status_code == 413

    def test_too_many_items_are_refused(self, http: httpx.Client) -> None:
        """More than MAX_LIST_ITEMS logs in one request: 422."""
        log = {"flow_run_id": "x", "message": "", "timestamp": "2026-01-01T00:00:00Z"}
        response = http.post("/api/logs", json=[log] * (s.MAX_LIST_ITEMS + 1))
        assert errors(response)[0]["type"] == "too_long"

    def test_the_server_answers_while_a_body_is_still_arriving(self, server: ServerProcess) -> None:
        """A client that sends half a body and stalls holds no one else up."""
        with socket.create_connection(("127.0.0.1", server.port)) as slow:
            slow.sendall(
                b"POST /api/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 200000\r\n\r\n[" + b" " * 100_000
            )
            with httpx.Client(base_url=server.url, timeout=5) as other:
                assert other.get("/api/health").status_code == 200


class TestValues:
    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            ("/api/work_pools", {"name": "p", "concurrency_limit": 2**70}, "concurrency_limit"),
            ("/api/work_pools", {"name": "p", "paused": 0}, "paused"),
            ("/api/flow_runs", {"flow_name": "x\ud800"}, "flow_name"),
            ("/api/flow_runs", {"flow_name": "x\u202e"}, "flow_name"),
            ("/api/flow_runs", {"flow_name": "x\x00"}, "flow_name"),
            ("/api/flow_runs", {"flow_name": "x "}, "flow_name"),
            ("/api/flow_runs", {"flow_name": "x" * 201}, "flow_name"),
            ("/api/work_pools", {"name": "p\n"}, "name"),
            ("/api/api_keys", {"name": " key"}, "name"),
            ("/api/concurrency_limits", {"tag": "t", "limit": 2**64}, "limit"),
        ],
    )
    def test_out_of_range_or_invalid_values_are_refused(
        self, http: httpx.Client, path: str, body: dict[str, Any], field: str
    ) -> None:
        """Integers beyond their range, non-booleans, bad Unicode, control characters: 422."""
        refused(post(http, path, body), field, "")

    def test_free_text_is_made_storable_not_refused(self, http: httpx.Client) -> None:
        """A NUL in a description or state message becomes U+FFFD; over-long text is cut."""
        body = {"name": f"p-{uuid.uuid4().hex[:8]}", "description": "a\x00b" + "c" * 200_000}
        response = post(http, "/api/work_pools", body)
        assert response.status_code == 201, response.text
        description = response.json()["description"]
        assert description.startswith("a\ufffdbc") and len(description) == s.MAX_TEXT_LENGTH

    def test_log_level_and_timestamps_are_checked(self, http: httpx.Client) -> None:
        """A 2**64 log level and a numeric timestamp are refused, not stored or overflowed."""
        log = {"flow_run_id": "x", "message": "m", "timestamp": "2026-01-01T00:00:00Z"}
        refused(http.post("/api/logs", json=[{**log, "level": 2**64}]), "level", "")
        refused(http.post("/api/logs", json=[{**log, "timestamp": 0}]), "timestamp", "ISO 8601")

    def test_task_run_counts_are_bounded(self, http: httpx.Client, api: FlowyardClient) -> None:
        """run_count beyond its range is refused on the task-run state route."""
        run = api.create_flow_run(s.FlowRunCreate(flow_name="counts"))
        task = {"id": str(uuid.uuid4()), "flow_run_id": run.id, "name": "t", "task_key": "t",
                "state": "RUNNING"}  # fmt: skip
        assert api.upsert_task_runs([task]).upserted == 1
        body = {"state": "COMPLETED", "run_count": 2**64}
        refused(http.post(f"/api/task_runs/{task['id']}/state", json=body), "run_count", "")

    def test_query_integers_are_bounded(self, http: httpx.Client, api: FlowyardClient) -> None:
        """?after_id= beyond 64 bits: 422, not an OverflowError."""
        run = api.create_flow_run(s.FlowRunCreate(flow_name="query"))
        response = http.get(f"/api/flow_runs/{run.id}/logs", params={"after_id": 2**70})
        refused(response, "after_id", "")

    @pytest.mark.parametrize("url", ["/api/work_pools/a%00b", "/api/flow_runs?pool=%00"])
    def test_nul_in_a_path_or_query_is_refused(self, http: httpx.Client, url: str) -> None:
        """PostgreSQL cannot compare a string holding NUL: such a lookup is a 422, not a 500."""
        assert "U+0000" in errors(http.get(url))[0]["msg"]

    @pytest.mark.parametrize(
        "raw",
        [
            b'{"flow_name": "x", "parameters": {"a": "\\ud800"}}',
            b'{"flow_name": "x", "parameters": {"\\udc00": 1}}',
            b'{"flow_name": "x", "parameters": {"a": NaN}}',
            b'{"flow_name": "x", "parameters": {"a": -Infinity}}',
        ],
    )
    def test_user_json_must_be_valid_unicode_and_finite(
        self, http: httpx.Client, raw: bytes
    ) -> None:
        """A lone surrogate or a NaN inside user JSON is refused at the door (422 on body)."""
        response = http.post(
            "/api/flow_runs", content=raw, headers={"content-type": "application/json"}
        )
        assert errors(response)[0]["loc"][0] == "body"


class TestSpec:
    def test_error_responses_are_documented_on_every_route(self, http: httpx.Client) -> None:
        """Each operation documents 400/401/403/404/409/413/422/503 and their shapes."""
        spec = http.get("/openapi.json").json()
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                documented = set(operation["responses"])
                missing = {"400", "401", "403", "404", "409", "413", "503"} - documented
                assert not missing, (method, path, missing)

    def test_an_unsupported_method_answers_405_with_every_allowed_method(
        self, http: httpx.Client
    ) -> None:
        """OPTIONS on /api/blocks/{slug}/{name}: 405 and Allow lists GET, PUT and DELETE."""
        response = http.options("/api/blocks/secret/x")
        assert response.status_code == 405
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert {"GET", "PUT", "DELETE"} <= allowed

    def test_malformed_json_is_a_documented_400(self, http: httpx.Client) -> None:
        """Bytes that are not JSON: 400 with a string detail, as documented."""
        response = http.post(
            "/api/flow_runs", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert response.status_code in (400, 422)
        if response.status_code == 422:
            errors(response)


class TestInspectJson:
    def test_depth_is_counted_without_recursion(self) -> None:
        """A 100,000-level array is refused as too deep, not a RecursionError."""
        with pytest.raises(BodyRefused, match="deeper than 64 levels"):
            inspect_json(b"[" * 100_000 + b"]" * 100_000, 64)

    def test_bounds_are_inclusive(self) -> None:
        """Exactly ``max_depth`` levels pass; one more is refused."""
        inspect_json(json.dumps(nested(63)).encode(), 64)
        with pytest.raises(BodyRefused):
            inspect_json(json.dumps(nested(64)).encode(), 64)

    def test_surrogate_pairs_are_valid(self) -> None:
        """An escaped pair (an emoji) passes; only lone halves are refused."""
        inspect_json(b'{"a": "\\ud83d\\ude00"}', 64)
        with pytest.raises(BodyRefused, match="lone surrogate"):
            inspect_json(b'["\\ude00\\ud83d"]', 64)

    def test_malformed_json_is_left_to_the_route(self) -> None:
        """Not JSON at all: passes the door (the route answers 400)."""
        inspect_json(b"{nope", 64)
