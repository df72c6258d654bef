"""The API's version at the door: which clients a server serves, and what it tells the
ones it does not (a real server on loopback); responses read leniently."""

from __future__ import annotations

import httpx
import pytest

from flowyard import schemas as s
from flowyard.api_version import API_VERSION, HEADER, VersionRefused, check_client
from tests.servers import running_server


@pytest.mark.parametrize("client", ["1.4", "1.3"])
def test_a_server_serves_its_own_minor_version_and_the_one_before(client):
    check_client(client, server="1.4")


@pytest.mark.parametrize(
    ("client", "status", "says"),
    [
        ("1.2", 426, "upgrade the client"),
        ("0.9", 426, "upgrade the client"),
        ("1.5", 400, "upgrade the server first"),
        ("2.0", 400, "upgrade the server first"),
        ("1", 400, "MAJOR.MINOR"),
        ("1.4.0", 400, "MAJOR.MINOR"),
        ("99999999999.0", 400, "MAJOR.MINOR"),
        ("x" * 10_000, 400, "MAJOR.MINOR"),
    ],
)
def test_a_client_it_does_not_serve_is_told_what_to_upgrade(client, status, says):
    with pytest.raises(VersionRefused) as refused:
        check_client(client, server="1.4")
    assert refused.value.status == status
    assert says in str(refused.value)
    assert len(str(refused.value)) < 400  # a huge header is not echoed back


def test_the_server_checks_the_header_and_stamps_its_own(tmp_path):
    with running_server(tmp_path / "home") as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            plain = http.get("/api/health")  # curl, a browser, the UI: no header, served
            assert plain.status_code == 200
            assert plain.headers[HEADER] == API_VERSION

            same = http.get("/api/work_pools", headers={HEADER: API_VERSION})
            assert same.status_code == 200, same.text

            major = int(API_VERSION.split(".")[0])
            old = http.get("/api/work_pools", headers={HEADER: f"{major - 1}.0"})
            assert old.status_code == 426
            assert "upgrade the client" in old.json()["detail"]
            assert old.headers[HEADER] == API_VERSION

            new = http.post("/api/work_pools", json={"name": "p"}, headers={HEADER: "999.0"})
            assert new.status_code == 400
            assert "upgrade the server first" in new.json()["detail"]
            assert http.get("/api/work_pools").json() == []  # the refused request did nothing

            garbled = http.get("/api/health", headers={HEADER: b"\xff\xfe1.0"})
            assert garbled.status_code == 400


def test_a_response_field_this_version_does_not_know_is_ignored_when_read():
    """What a newer server may add to any response; requests stay strict."""
    doc = {
        "id": "p1",
        "name": "etl",
        "type": "process",
        "description": None,
        "paused": False,
        "concurrency_limit": None,
        "base_job_template": {},
        "status": "READY",
        "created": "2026-12-07T00:00:00Z",
        "a_field_from_a_newer_server": {"nested": True},
    }
    pool = s.read(s.WorkPool, doc)
    assert pool.name == "etl"
    assert s.read_list(s.WorkPool, [doc]) == [pool]
    with pytest.raises(ValueError, match="a_field_from_a_newer_server"):
        s.WorkPoolCreate.model_validate({"name": "etl", "a_field_from_a_newer_server": 1})
