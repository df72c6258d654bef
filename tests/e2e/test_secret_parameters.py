"""Secrets passed as flow or task arguments are masked in what the server stores, while
the flow and its tasks receive the real values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretBytes, SecretStr

from flowyard import flow, task
from flowyard import schemas as s
from flowyard.blocks import Secret
from flowyard.runtime import flow_run
from flowyard.sdk.redaction import OBFUSCATED

CLEAR = "s3cr3t-value-42"
received: dict[str, object] = {}


@pytest.fixture
def recorded(server, monkeypatch):
    """Direct flow calls in this test are recorded through the session's server."""
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    return server


@task
def use(token: SecretStr, raw: bytes, block: Secret, nested: dict, hinted: SecretStr | None):
    received.update(
        token=token.get_secret_value(), block=block.get(), nested=nested["inner"][0],
        hinted=hinted, raw=raw,
    )  # fmt: skip
    return len(token.get_secret_value())


@flow(name="secret-arguments")
def secretive(password: SecretStr, user: str) -> str:
    received["password"] = password.get_secret_value()
    use(
        SecretStr(CLEAR), SecretBytes(CLEAR.encode()), Secret(value=CLEAR),
        {"inner": [SecretStr(CLEAR)], "user": user}, CLEAR,  # a plain str, annotated secret
    )  # fmt: skip
    return flow_run.id


def _stored_bytes(home: Path) -> bytes:
    """Every byte of the server's SQLite database (and its WAL)."""
    return b"".join(p.read_bytes() for p in home.glob("flowyard.db*"))


def test_secret_arguments_are_masked_in_the_stored_parameters(recorded, api):
    """Flow and task run parameters hold "********" for every secret (by value or by
    annotation), the database holds the secret nowhere, and the code got real values."""
    received.clear()
    run_id = secretive(password=CLEAR, user="ann")
    assert received == {
        "password": CLEAR, "token": CLEAR, "block": CLEAR, "nested": SecretStr(CLEAR),
        "hinted": CLEAR, "raw": SecretBytes(CLEAR.encode()),
    }  # fmt: skip
    assert CLEAR.encode() not in _stored_bytes(Path(recorded.home))
    assert api.read_flow_run(run_id).parameters == {"password": OBFUSCATED, "user": "ann"}
    [task_run] = api.list_task_runs(run_id)
    stored = api.read_task_run(task_run.id).parameters
    assert stored["token"] == stored["raw"] == stored["block"] == stored["hinted"] == OBFUSCATED
    assert OBFUSCATED in str(stored["nested"]) and "ann" in str(stored["nested"])


def test_a_background_run_records_masked_parameters(recorded, api, monkeypatch):
    """delay() with a secret records "********" on the server; the worker's copy of the
    arguments is the signed parameters record, not the API."""
    monkeypatch.setenv("FLOWYARD_HOME", str(recorded.home))
    future = use.delay(SecretStr(CLEAR), b"", Secret(value=CLEAR), {}, None)
    run = api.read_task_run(future.task_run_id)
    assert run.parameters["token"] == run.parameters["block"] == OBFUSCATED
    assert run.parameters["hinted"] is None
    assert CLEAR not in str(run.model_dump())
    assert isinstance(run, s.TaskRun)
