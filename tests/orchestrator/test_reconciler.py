"""The reconciler's passes on a real app (store, Redis), driven with a given time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from flowyard.orchestrator.services.reconciler import (
    CANCELLED_UNCONFIRMED,
    SILENT,
    Cause,
    _settle,
    reconcile_once,
)
from tests.orchestrator.automation_harness import running_app
from tests.waiting import wait_until


def test_a_pass_judges_and_stamps_runs_with_the_time_it_is_given(
    tmp_path: Path, redis_url: str
) -> None:
    """Now, nothing is due; an hour later, a silent direct run is Crashed and an unconfirmed
    cancellation Cancelled, both stamped with that hour; a run gone from the store is
    skipped."""
    with running_app(tmp_path, redis_url) as api:
        orch = api.orch
        wait_until(lambda: orch.leases_trusted, timeout=30)
        silent = api.post("/api/flow_runs", {"flow_name": "direct", "heartbeat_seconds": 1})
        cancelling = api.post("/api/flow_runs", {"flow_name": "direct"})
        api.post(f"/api/flow_runs/{cancelling['id']}/cancel", {})
        assert api.get(f"/api/flow_runs/{cancelling['id']}")["state"]["type"] == "CANCELLING"
        assert api.client.portal.call(reconcile_once, orch, datetime.now(UTC)) == 0  # type: ignore[union-attr]
        later = datetime.now(UTC) + timedelta(hours=1)
        assert api.client.portal.call(reconcile_once, orch, later) == 2  # type: ignore[union-attr]
        crashed = api.get(f"/api/flow_runs/{silent['id']}")["state"]
        cancelled = api.get(f"/api/flow_runs/{cancelling['id']}")["state"]
        assert (crashed["type"], crashed["message"]) == ("CRASHED", SILENT)
        assert (cancelled["type"], cancelled["message"]) == ("CANCELLED", CANCELLED_UNCONFIRMED)
        stamps = {datetime.fromisoformat(s["timestamp"]) for s in (crashed, cancelled)}
        assert stamps == {later}
        for cause in Cause:
            assert _settle(orch, "no-such-run", cause, later, lambda run: True) == (None, None)
