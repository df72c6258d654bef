"""The event record's limits, and the SDK's emit_event without a server."""

from __future__ import annotations

import pytest

from flowyard.cli.events import parse_since
from flowyard.errors import InvalidInput
from flowyard.events import emit_event
from flowyard.events.schemas import Event, limit_violation
from flowyard.orchestrator.event_queries import decode_cursor


def _event(**fields) -> Event:
    return Event.model_validate(
        {"event": "a.b", "resource": {"flowyard.resource.id": "x"}, **fields}
    )


def test_an_event_within_every_limit_passes():
    """A plain event breaks no limit."""
    assert limit_violation(_event(payload={"a": [1, {"b": 2}]})) is None


def test_a_payload_nested_too_deep_is_named():
    """Depth is counted without recursion, and the limit is named."""
    value: object = 1
    for _ in range(10_000):
        value = [value]
    assert "limit of 32" in (limit_violation(_event(payload={"a": value})) or "")


def test_the_size_limit_names_its_setting():
    """An event over the size limit names FLOWYARD_EVENTS_MAX_SIZE_BYTES."""
    why = limit_violation(_event(payload={"x": "y" * 5000}), max_bytes=2048)
    assert why is not None and "FLOWYARD_EVENTS_MAX_SIZE_BYTES" in why


def test_emit_event_without_a_server_does_nothing(monkeypatch):
    """Outside any server-recorded run and with no FLOWYARD_API_URL, as Prefect: None."""
    monkeypatch.delenv("FLOWYARD_API_URL", raising=False)
    assert emit_event(event="a.b", resource={"flowyard.resource.id": "x"}) is None


def test_a_cursor_for_another_order_is_refused():
    """A cursor is only valid for the order it was made for; garbage is a clear 422."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from flowyard.orchestrator.event_queries import encode_cursor

    cursor = encode_cursor(SimpleNamespace(occurred=datetime.now(UTC), seq=3), "desc")  # type: ignore[arg-type]
    assert decode_cursor(cursor, "desc")[1] == 3
    with pytest.raises(InvalidInput, match="order=desc"):
        decode_cursor(cursor, "asc")
    with pytest.raises(InvalidInput, match="not one this API gave out"):
        decode_cursor("not-a-cursor", "desc")


def test_since_takes_spans_and_iso_times():
    """``--since 10m`` is ten minutes back; an ISO time without a zone is UTC."""
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse_since("10m", now=now) == now - timedelta(minutes=10)
    assert parse_since("2026-01-01T11:00:00", now=now) == datetime(2026, 1, 1, 11, tzinfo=UTC)
