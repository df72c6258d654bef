"""Tag concurrency slots belong to who took them: a real server with API keys, real Redis.

Each test uses its own tag, so the module shares one server.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from click.testing import CliRunner

from flowyard import schemas as s
from flowyard.cli.main import cli
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import Forbidden
from flowyard.orchestrator.api.concurrency_limits import slot_owner
from flowyard.orchestrator.auth import KeyInfo, Role
from flowyard.states import StateType
from tests.e2e.conftest import create_process_pool
from tests.helpers.locked_server import ADMIN


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def server(locked_server: ServerProcess) -> ServerProcess:
    """This module's server requiring API keys (tests/orchestrator/conftest.py)."""
    return locked_server


@pytest.fixture(scope="module")
def keys(server: ServerProcess) -> dict[str, str]:
    """Bearers by who they are: the admin, two worker keys, and run tokens of two runs."""
    suffix = uuid.uuid4().hex[:6]
    with FlowyardClient(server.url, ADMIN) as admin:
        create_process_pool(admin, "slots")
        worker_a = admin.create_api_key(s.ApiKeyCreate(name=f"wa-{suffix}", pools=["slots"]))
        worker_b = admin.create_api_key(s.ApiKeyCreate(name=f"wb-{suffix}", pools=["slots"]))
        dep = admin.create_deployment(
            s.DeploymentCreate(name="d", flow_name="f", entrypoint="flows.py:f", pool_name="slots")
        )
        run_a = admin.run_deployment(dep.id, s.DeploymentRunRequest()).id
        run_b = admin.run_deployment(dep.id, s.DeploymentRunRequest()).id
        return {
            "admin": ADMIN,
            "worker_a": worker_a.key,
            "worker_a_name": worker_a.name,
            "worker_b": worker_b.key,
            "run_a": admin.create_run_token(run_a),
            "run_a_id": run_a,
            "run_b": admin.create_run_token(run_b),
            "deployment": dep.id,
        }


def _limit(server: ServerProcess, limit: int = 1) -> str:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    with FlowyardClient(server.url, ADMIN) as admin:
        admin.set_concurrency_limit(tag, limit, None, active=True)
    return tag


def _slots(
    server: ServerProcess, bearer: str, action: str, tag: str, holder: str, **extra: object
) -> httpx.Response:
    body = {"tags": [tag], "holder": holder, **extra}
    url = f"{server.url}/api/concurrency_limits/{action}"
    return httpx.post(url, json=body, headers=_bearer(bearer))


def _holders(server: ServerProcess, tag: str) -> list[tuple[str, str]]:
    with FlowyardClient(server.url, ADMIN) as admin:
        return [(h.owner, h.holder) for h in admin.concurrency_limit_holders(tag)]


class TestOwners:
    def test_each_kind_of_caller_owns_slots_under_its_own_name(self):
        """Run token → its run, worker key → its name, admin → admin, no keys → local;
        a key of another kind (a read-only one) takes no slots."""
        assert slot_owner(KeyInfo("t", Role.RUN, run_id="r1")) == "run:r1"
        assert slot_owner(KeyInfo("w1", Role.WORKER, ("p",))) == "worker:w1"
        assert slot_owner(KeyInfo("FLOWYARD_API_KEY", Role.ADMIN)) == "admin"
        assert slot_owner(None) == "local"
        viewer = KeyInfo("v", "viewer")  # type: ignore[arg-type]  # a role added later
        with pytest.raises(Forbidden, match="may not take concurrency slots"):
            slot_owner(viewer)


def test_a_worker_key_cannot_free_or_renew_another_keys_slot(server, keys):
    """Worker B naming worker A's holder gets 404 on release and renew, and cannot take it
    either; A's slot stays held until A gives it back."""
    tag = _limit(server)
    taken = _slots(server, keys["worker_a"], "acquire", tag, "h")
    assert taken.json()["acquired"] is True
    assert taken.json()["owner"] == f"worker:{keys['worker_a_name']}"
    for action in ("release", "renew"):
        refused = _slots(server, keys["worker_b"], action, tag, "h")
        assert refused.status_code == 404, refused.text
        assert "holds no slot" in refused.json()["detail"]
    assert _slots(server, keys["worker_b"], "acquire", tag, "h").json()["acquired"] is False
    assert _holders(server, tag) == [(f"worker:{keys['worker_a_name']}", "h")]
    assert _slots(server, keys["worker_a"], "renew", tag, "h").status_code == 200
    assert _slots(server, keys["worker_a"], "release", tag, "h").status_code == 200
    assert _slots(server, keys["worker_b"], "acquire", tag, "h").json()["acquired"] is True


def test_a_run_token_cannot_free_another_runs_slot(server, keys):
    """Run B's token cannot release or renew run A's task-run slot; the admin can free it."""
    tag = _limit(server)
    owner_a = f"run:{keys['run_a_id']}"
    taken = _slots(server, keys["run_a"], "acquire", tag, "task-1")
    assert taken.status_code == 200 and taken.json() | {"owner": owner_a} == taken.json()
    assert _slots(server, keys["run_b"], "release", tag, "task-1").status_code == 404
    assert _slots(server, keys["run_b"], "renew", tag, "task-1").status_code == 404
    assert _slots(server, keys["run_b"], "acquire", tag, "task-2").json()["acquired"] is False
    assert _holders(server, tag) == [(owner_a, "task-1")]
    with FlowyardClient(server.url, ADMIN) as admin:
        freed = admin.reset_concurrency_limit(tag, s.SlotsReset(owner=owner_a, holder="task-1"))
    assert freed == 1
    assert _slots(server, keys["run_b"], "acquire", tag, "task-2").json()["acquired"] is True


def test_only_an_admin_lists_and_resets_holders(server, keys):
    """Worker keys and run tokens get 403 on holders and reset; the admin's reset frees
    every holder's slots, through the API and the CLI."""
    tag = _limit(server, limit=3)
    for who in ("worker_a", "run_a", "admin"):
        assert _slots(server, keys[who], "acquire", tag, "x").json()["acquired"] is True
    assert len(_holders(server, tag)) == 3
    base = f"{server.url}/api/concurrency_limits/{tag}"
    for who in ("worker_a", "worker_b", "run_a", "run_b"):
        assert httpx.post(f"{base}/reset", json={}, headers=_bearer(keys[who])).status_code == 403
        assert httpx.get(f"{base}/holders", headers=_bearer(keys[who])).status_code == 403
    assert len(_holders(server, tag)) == 3
    runner = CliRunner(env={"FLOWYARD_API_KEY": ADMIN})
    listed = runner.invoke(cli, ["--api-url", server.url, "concurrency-limit", "holders", tag])
    assert listed.exit_code == 0 and "admin" in listed.output and "worker:wa-" in listed.output
    done = runner.invoke(
        cli, ["--api-url", server.url, "concurrency-limit", "reset", tag, "--owner", "admin"]
    )
    assert done.exit_code == 0 and "Freed 1 slot of" in done.output, done.output
    done = runner.invoke(cli, ["--api-url", server.url, "concurrency-limit", "reset", tag])
    assert done.exit_code == 0 and "Freed 2 slots of" in done.output, done.output
    assert _holders(server, tag) == []


def test_a_lease_longer_than_the_maximum_is_refused(server, keys):
    """An hour's lease (what a token once took) is a 422 naming the 300 s maximum; 300 is fine."""
    tag = _limit(server)
    refused = _slots(server, keys["worker_a"], "acquire", tag, "long", lease_seconds=3600)
    assert refused.status_code == 422
    assert "300" in refused.text and "lease_seconds" in refused.text
    assert _holders(server, tag) == []
    taken = _slots(server, keys["worker_a"], "acquire", tag, "long", lease_seconds=300)
    assert taken.json()["acquired"] is True


def test_a_finished_runs_token_takes_no_slot(server, keys):
    """Once its run is final a run token can neither take nor renew a slot (403)."""
    tag = _limit(server)
    with FlowyardClient(server.url, ADMIN) as admin:
        run = admin.run_deployment(keys["deployment"], s.DeploymentRunRequest()).id
        token = admin.create_run_token(run)
    assert _slots(server, token, "acquire", tag, "before").json()["acquired"] is True
    with FlowyardClient(server.url, ADMIN) as admin:
        admin.set_flow_run_state(run, s.StateChange(type=StateType.CANCELLED, force=True))
    refused = _slots(server, token, "acquire", tag, "after")
    assert refused.status_code == 403 and "may only read" in refused.json()["detail"]
    assert _slots(server, token, "renew", tag, "before").status_code == 403
    assert _holders(server, tag) == [(f"run:{run}", "before")]  # not renewed: it lapses
