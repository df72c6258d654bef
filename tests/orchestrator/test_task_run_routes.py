"""Who may write task-run records and result references: engines, for their own run only."""

from __future__ import annotations

import httpx

from flowyard.client import FlowyardClient
from tests.helpers.locked_server import ADMIN


def _record(run_id: str, task_run_id: str) -> dict[str, object]:
    return {"id": task_run_id, "flow_run_id": run_id, "name": "t-0", "task_key": "t",
            "state": "COMPLETED"}  # fmt: skip


def test_a_run_token_writes_records_of_its_own_run_only(locked_server, two_runs):
    """Bulk records and the result reference of the token's run pass; another run's is 403."""
    mine, other, _ = two_runs
    with FlowyardClient(locked_server.url, ADMIN) as admin:
        token = admin.create_run_token(mine)
    ref = {"storage": {"type": "local-file-system", "basepath": "/r"}, "key": "k",
           "location": "/r/k", "serializer": "pickle"}  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=locked_server.url, headers=headers) as http:
        ok = http.post("/api/task_runs/bulk", json=[_record(mine, "tr-mine")])
        assert ok.status_code == 200 and ok.json()["upserted"] == 1
        assert http.put(f"/api/flow_runs/{mine}/result", json=ref).status_code == 204
        mixed = [_record(mine, "tr-2"), _record(other, "tr-3")]
        assert http.post("/api/task_runs/bulk", json=mixed).status_code == 403
        assert http.put(f"/api/flow_runs/{other}/result", json=ref).status_code == 403
    with FlowyardClient(locked_server.url, ADMIN) as admin:
        assert admin.read_flow_run(mine).result is not None
        assert admin.read_flow_run(other).result is None
        assert [t.id for t in admin.list_task_runs(mine)] == ["tr-mine"]
