"""The client's side of the version contract: it says which API it speaks, and it reads
a newer server's responses, whose fields it does not all know (a fake API on loopback)."""

from __future__ import annotations

from typing import Any

import pytest

from flowyard.api_version import API_VERSION
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from tests.helpers.http import serving_json

AT = "2026-12-07T10:00:00Z"
NEWER_RUN = {
    **dict.fromkeys(("deployment_id", "deployment_name", "pool_name", "queue_name"), None),
    **dict.fromkeys(("start_time", "end_time", "worker_name", "infrastructure_id"), None),
    "id": "r1",
    "name": "brisk-otter",
    "flow_id": "f1",
    "flow_name": "etl",
    "parameters": {},
    "job_variables": {},
    "state": {"type": "SCHEDULED", "name": "Scheduled", "timestamp": AT, "new_too": 1},
    "scheduled_time": AT,
    "created": AT,
    "a_field_from_a_newer_server": {"anything": [1, 2]},
}


def test_a_newer_servers_run_is_read_and_the_version_is_sent():
    seen: list[Any] = []

    def answer(method: str, path: str, body: Any) -> tuple[int, Any]:
        return 200, NEWER_RUN

    with serving_json(answer, record=seen) as url, FlowyardClient(url) as client:
        run = client.read_flow_run("r1")
    assert run.id == "r1" and run.state.type.value == "SCHEDULED"
    assert not hasattr(run, "a_field_from_a_newer_server")
    assert seen[0]["Flowyard-API-Version"] == API_VERSION


def test_a_server_that_does_not_serve_this_client_says_why():
    def answer(method: str, path: str, body: Any) -> tuple[int, Any]:
        return 426, {"detail": "this client speaks the Flowyard API 1.0, too old: upgrade"}

    with serving_json(answer) as url, FlowyardClient(url) as client:
        with pytest.raises(ApiError) as refused:
            client.read_flow_run("r1")
    assert refused.value.status_code == 426 and "upgrade" in str(refused.value)
