"""Events end to end: a real server, real Redis and a real store (SQLite; PostgreSQL marked)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_client

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from flowyard.events.schemas import Event
from flowyard.pools import keys
from flowyard.states import StateType
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.helpers.cli import flowyard
from tests.waiting import wait_until

EMITTING = textwrap.dedent(
    """
    from flowyard import flow
    from flowyard.events import emit_event


    @flow(name="emits")
    def emits(order: str) -> str:
        sent = emit_event(
            event="shop.order.shipped",
            resource={
                "flowyard.resource.id": f"shop.order.{order}",
                "flowyard.resource.name": order,
            },
            payload={"items": 3},
        )
        return str(sent.id) if sent is not None else "none"
    """
)


def _id(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


def _event(name: str, about: str, **fields: Any) -> dict[str, Any]:
    return {"event": name, "resource": {"flowyard.resource.id": about}, **fields}


def _detail(response: httpx.Response) -> str:
    """The error's text, whether ``detail`` is a message or a list of them."""
    detail = response.json()["detail"]
    return detail if isinstance(detail, str) else " ".join(str(d.get("msg")) for d in detail)


def _role(ident: str, role: str) -> dict[str, str]:
    return {"flowyard.resource.id": ident, "flowyard.resource.role": role}


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _all(api: FlowyardClient, **filters: Any) -> list[Event]:
    found, cursor = [], None
    while True:
        page = api.list_events(cursor=cursor, **filters)
        found += page.events
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


@pytest.fixture(scope="module")
def emitting_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("emitting")
    (folder / "flows.py").write_text(EMITTING)
    return folder


def test_a_deployed_run_yields_its_state_events_in_order(api, server, pool, tmp_path, emitting_dir):
    """Scheduled → Pending → Running → Completed, each an event naming the run's flow,
    deployment, pool and queue; the flow's own emit_event is stored, related to its run."""
    dep = deploy_flow(api, pool, emitting_dir, "emits", tags=["nightly"])
    run = api.run_deployment(dep.id, s.DeploymentRunRequest(parameters={"order": "A-17"}))
    worker = WorkerProcess(server.url, pool, tmp_path, env=FAST)
    try:
        wait_until(
            lambda: api.read_flow_run(run.id).state.type is StateType.COMPLETED,
            timeout=120,
            interval=0.1,
            message="the run did not complete",
        )
    finally:
        worker.stop()
    about = f"flowyard.flow-run.{run.id}"
    states = _all(api, resource_id=[about], order="asc")
    assert [e.event for e in states] == [
        "flowyard.flow-run.Scheduled",
        "flowyard.flow-run.Pending",
        "flowyard.flow-run.Running",
        "flowyard.flow-run.Completed",
    ]
    history = [st.timestamp for st in api.read_flow_run_history(run.id).states]
    assert [e.occurred for e in states] == history  # one event per state row, at its time
    roles = {r["flowyard.resource.role"]: r["flowyard.resource.id"] for r in states[-1].related}
    assert roles["deployment"] == f"flowyard.deployment.{dep.id}"
    assert roles["flow"].startswith("flowyard.flow.")
    assert roles["work-pool"].startswith("flowyard.work-pool.")
    assert roles["work-queue"].startswith("flowyard.work-queue.")
    assert roles["tag"] == "flowyard.tag.nightly"
    assert states[-1].resource["flowyard.resource.name"] == run.name
    assert states[-1].payload["intended"] == {"from": "RUNNING", "to": "COMPLETED"}

    emitted = _all(api, event=["shop.order.*"], related_id=[about])
    assert [e.resource["flowyard.resource.id"] for e in emitted] == ["shop.order.A-17"]
    assert emitted[0].payload == {"items": 3}
    tasks = _all(api, event=["flowyard.task-run.*"], related_id=[about])
    assert tasks == []  # the flow ran no task
    worker_name = api.read_flow_run(run.id).worker_name
    online = _all(api, event=["flowyard.worker.online"], resource_name=[worker_name])
    assert [e.resource["flowyard.resource.id"] for e in online] == [
        f"flowyard.worker.{pool}.{worker_name}"
    ]


def test_task_run_records_are_events_once_per_state(api):
    """Bulk task-run records write an event when a task run's state changes, not for a
    record that repeats it, nor for one that would take a final state back."""
    run = api.create_flow_run(s.FlowRunCreate(flow_name="records"))
    task_id = str(uuid.uuid4())

    def record(state: str) -> None:
        body = {"id": task_id, "flow_run_id": run.id, "name": "t-0", "task_key": "t",
                "state": state, "tags": ["db"]}  # fmt: skip
        assert api.upsert_task_runs([body]).upserted == 1

    for state in ("RUNNING", "COMPLETED", "COMPLETED", "RUNNING"):
        record(state)
    found = _all(api, resource_id=[f"flowyard.task-run.{task_id}"], order="asc")
    assert [e.event for e in found] == ["flowyard.task-run.Running", "flowyard.task-run.Completed"]
    roles = {r["flowyard.resource.role"]: r["flowyard.resource.id"] for r in found[0].related}
    assert roles == {"flow-run": f"flowyard.flow-run.{run.id}", "tag": "flowyard.tag.db"}


def test_a_refused_state_change_leaves_no_event(api, deploy):
    """A transition the state machine refuses changes nothing and records no event."""
    dep = deploy("noop")
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    about = [f"flowyard.flow-run.{run.id}"]
    before = [e.id for e in _all(api, resource_id=about)]
    with pytest.raises(ApiError, match="not paused"):
        api.resume_flow_run(run.id)  # only a Paused run resumes
    assert [e.id for e in _all(api, resource_id=about)] == before
    assert api.read_flow_run(run.id).state.type is StateType.SCHEDULED


def test_filters_match_names_resources_related_and_time(api):
    """Exact, prefix and wildcard names; resource ids by prefix; related ids and roles; time."""
    tag = uuid.uuid4().hex[:8]
    old = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    related = {"flowyard.resource.id": f"crm.customer.{tag}", "flowyard.resource.role": "buyer"}
    batch = [
        _event(f"shop.{tag}.order.placed", f"shop.order.{tag}.1", related=[related]),
        _event(f"shop.{tag}.order.shipped", f"shop.order.{tag}.1"),
        _event(f"shop.{tag}.refund.issued", f"shop.refund.{tag}.9", occurred=old),
    ]
    assert api.emit_events([Event.model_validate(e) for e in batch]) == 3

    def names(**filters: Any) -> set[str]:
        return {
            e.event.rsplit(".", 2)[-2] + "." + e.event.rsplit(".", 1)[-1]
            for e in _all(api, **filters)
        }

    assert names(event=[f"shop.{tag}.order.placed"]) == {"order.placed"}
    assert names(event=[f"shop.{tag}.order.*"]) == {"order.placed", "order.shipped"}
    assert names(event=[f"shop.{tag}.*.issued"]) == {"refund.issued"}
    assert names(event=[f"shop.{tag}.*"], resource_id=[f"shop.refund.{tag}.*"]) == {"refund.issued"}
    assert names(related_id=[f"crm.customer.{tag}"], related_role=["buyer"]) == {"order.placed"}
    assert names(related_id=[f"crm.customer.{tag}"], related_role=["seller"]) == set()
    recent = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    assert names(event=[f"shop.{tag}.*"], since=recent) == {"order.placed", "order.shipped"}
    assert names(event=[f"shop.{tag}.*"], until=recent) == {"refund.issued"}
    assert names(event=[f"shop.{tag}_*"]) == set()  # _ and % are not wildcards


def test_pages_neither_repeat_nor_skip_while_events_arrive(api):
    """Keyset pages, newest first and oldest first, cover every event once while new ones
    keep arriving between pages."""
    prefix = _id("paging")
    first = [_event(f"{prefix}.e", f"thing.{i}", id=str(uuid.uuid4())) for i in range(130)]
    api.emit_events([Event.model_validate(e) for e in first])
    stop = threading.Event()
    arrived: list[str] = []

    def keep_emitting() -> None:
        with FlowyardClient(api.api_url) as other:
            while not stop.is_set():
                event = Event.model_validate(_event(f"{prefix}.e", "thing.new"))
                other.emit_events([event])
                arrived.append(str(event.id))

    emitter = threading.Thread(target=keep_emitting)
    emitter.start()
    try:
        newest = _paged(api, prefix, "desc")
        oldest = _paged(api, prefix, "asc")
    finally:
        stop.set()
        emitter.join(timeout=30)
    wanted = {e["id"] for e in first}
    assert len(newest) == len(set(newest)) and len(oldest) == len(set(oldest))
    assert wanted <= set(newest) and wanted <= set(oldest)
    assert set(newest) - wanted <= set(arrived) and set(oldest) - wanted <= set(arrived)
    assert arrived, "no event arrived while paging"


def _paged(api: FlowyardClient, prefix: str, order: str) -> list[str]:
    seen, cursor = [], None
    while True:
        page = api.list_events(cursor=cursor, event=[f"{prefix}.*"], order=order, limit=25)
        seen += [str(e.id) for e in page.events]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_an_event_read_by_id_and_a_resend_is_not_stored_twice(api):
    """GET /api/events/{id} returns the event; sending the same id again stores nothing."""
    event = Event.model_validate(_event(_id("resend"), "thing.1", payload={"n": 1}))
    assert api.emit_events([event]) == 1
    assert api.emit_events([event]) == 0
    assert api.read_event(str(event.id)) == event
    missing = httpx.get(f"{api.api_url}/api/events/{uuid.uuid4()}")
    assert missing.status_code == 404


def test_server_event_names_are_refused(api):
    """No caller may send an event in the server's ``flowyard.`` namespace (422)."""
    sent = httpx.post(
        f"{api.api_url}/api/events", json=[_event("flowyard.flow-run.Completed", "x.1")]
    )
    assert sent.status_code == 422
    assert "reserved for the server" in _detail(sent)
    assert _all(api, event=["flowyard.flow-run.Completed"], resource_id=["x.1"]) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"payload": {"blob": "x" * 1_600_000}}, "FLOWYARD_EVENTS_MAX_SIZE_BYTES"),
        ({"related": [_role(f"r.{i}", "r") for i in range(101)]}, "limit of 100"),
        ({"resource": {"flowyard.resource.id": "x", **{f"l{i}": "v" for i in range(501)}}},
         "limit of 500"),
        ({"payload": {"a": _nested(40)}}, "limit of 32"),
        ({"resource": {"name": "no id"}}, "flowyard.resource.id"),
        ({"related": [{"flowyard.resource.id": "r.1"}]}, "flowyard.resource.role"),
    ],
)  # fmt: skip
def test_limits_are_enforced_with_a_422_naming_the_limit(api, change, named):
    """An event over a limit is refused whole, and the answer names the limit."""
    body = {**_event(_id("big"), "thing.1"), **change}
    sent = httpx.post(f"{api.api_url}/api/events", json=[body])
    assert sent.status_code == 422
    assert named in _detail(sent)


def test_pool_and_deployment_changes_are_events(api, pool, deploy):
    """Pausing a pool, changing its limit, pausing a deployment: each an event, once."""
    api.update_work_pool(pool, s.WorkPoolUpdate(paused=True, concurrency_limit=3))
    api.update_work_pool(pool, s.WorkPoolUpdate(paused=True))  # no change: no event
    dep = deploy("noop", name=f"dep-{uuid.uuid4().hex[:8]}")
    assert deploy("noop", name=dep.name).id == dep.id  # the same again: no change, no event
    api.set_deployment_paused(dep.id, True)
    pool_id = api.read_work_pool(pool).id
    pool_events = _all(api, resource_id=[f"flowyard.work-pool.{pool_id}"], order="asc")
    assert [e.event for e in pool_events] == [
        "flowyard.work-pool.created",
        "flowyard.work-pool.paused",
        "flowyard.work-pool.limit-changed",
    ]
    assert pool_events[-1].payload == {"from": None, "to": 3}
    dep_events = _all(api, resource_id=[f"flowyard.deployment.{dep.id}"], order="asc")
    assert [e.event for e in dep_events] == [
        "flowyard.deployment.created",
        "flowyard.deployment.paused",
    ]


def test_events_stream_follows_new_events(server, api):
    """``flowyard events stream`` prints matching events as they are stored."""
    prefix = _id("live")
    env = {**os.environ, "FLOWYARD_API_URL": server.url}
    follower = subprocess.Popen(
        [sys.executable, "-m", "flowyard", "events", "stream", "--event", f"{prefix}.*",
         "--count", "2", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        api.emit_events([Event.model_validate(_event(f"{prefix}.warmup", "w"))])
        sent = [Event.model_validate(_event(f"{prefix}.n{i}", f"thing.{i}")) for i in range(2)]

        def sent_and_printed() -> bool:
            if follower.poll() is None:
                api.emit_events([Event.model_validate(_event(f"{prefix}.n", "again"))])
                return False
            return True

        api.emit_events(sent)
        wait_until(sent_and_printed, timeout=60, interval=0.5, message="the stream did not end")
        out, err = follower.communicate(timeout=10)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    printed = [Event.model_validate_json(line) for line in out.splitlines()]
    assert len(printed) == 2 and all(e.event.startswith(prefix) for e in printed)
    assert len({e.id for e in printed}) == 2


@pytest.fixture
def retention_server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        **FAST,
        "FLOWYARD_EVENTS_RETENTION_SECONDS": "3600",
        "FLOWYARD_EVENTS_RETENTION_INTERVAL_SECONDS": "0.2",
    }
    server = ServerProcess(tmp_path / "home", env=env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_retention_deletes_old_events_only(retention_server):
    """Events older than the retention period go; newer ones, and their related rows, stay."""
    with retention_server.client() as api:
        old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
        related = [{"flowyard.resource.id": "crm.c.1", "flowyard.resource.role": "buyer"}]
        aged = [_event("shop.old", f"o.{i}", occurred=old, related=related) for i in range(30)]
        fresh = [_event("shop.new", f"n.{i}", related=related) for i in range(5)]
        api.emit_events([Event.model_validate(e) for e in aged + fresh])
        wait_until(
            lambda: not _all(api, event=["shop.old"]),
            timeout=30,
            interval=0.1,
            message="old events were not deleted",
        )
        kept = _all(api, related_id=["crm.c.1"])
        assert sorted(e.event for e in kept) == ["shop.new"] * 5


def test_with_redis_down_events_are_still_recorded_and_listed(tmp_path, flows_dir):
    """A Redis outage costs the stream, not the record: state changes keep their events and
    ``flowyard events ls`` lists them from the store."""
    from tests.helpers.redis_outage import server_on_own_redis

    with (
        server_on_own_redis(tmp_path) as (server, redis, _),
        server.client(retry_seconds=0) as api,
    ):
        dep = deploy_flow(api, create_process_pool(api, "dark"), flows_dir, "noop")
        redis.stop()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        emitted = Event.model_validate(_event("shop.during-outage", "o.1"))
        assert api.emit_events([emitted]) == 1
        listed = flowyard(
            server.url, "events", "ls", "--resource-id", f"flowyard.flow-run.{run.id}", "--json"
        )
        assert listed.returncode == 0, listed.stderr
        assert "flowyard.flow-run.Scheduled" in listed.stdout
        followed = api.follow_events(0, wait=0, event=["shop.during-outage"])
        assert [e.id for e in followed.events] == [emitted.id]
        redis.start_empty()
        wait_until(
            lambda: httpx.get(f"{server.url}/api/health").status_code == 200,
            timeout=60,
            message="the API did not see Redis again",
        )
        after = Event.model_validate(_event("shop.after-outage", "o.2"))
        position = api.follow_events(None, wait=0).cursor
        api.emit_events([after])
        found = api.follow_events(position, wait=5, event=["shop.after-outage"])
        assert [e.id for e in found.events] == [after.id]
        stream = redis_client.Redis.from_url(redis.current.url, decode_responses=True)
        try:
            entries = wait_until(
                lambda: stream.xrange(keys.EVENTS_STREAM), timeout=10, message="no stream entry"
            )
        finally:
            stream.close()
        streamed = [fields["id"] for _, fields in entries]
        assert str(after.id) in streamed and str(emitted.id) not in streamed  # lost with Redis


@pytest.mark.postgres
def test_events_on_postgresql(postgres_server, tmp_path, flows_dir):
    """Migration 0014 on PostgreSQL: state events, filters, pages and following."""
    from tests.postgres import fresh_database

    url = fresh_database(postgres_server, "flowyard_events")
    server = ServerProcess(tmp_path / "home", env={**FAST, "FLOWYARD_DATABASE_URL": url})
    try:
        server.wait_ready()
        with server.client() as api:
            dep = deploy_flow(api, create_process_pool(api, "pg-events"), flows_dir, "noop")
            run = api.run_deployment(dep.id, s.DeploymentRunRequest())
            scheduled = _all(api, resource_id=[f"flowyard.flow-run.{run.id}"])
            assert [e.event for e in scheduled] == ["flowyard.flow-run.Scheduled"]
            position = api.follow_events(None, wait=0).cursor
            batch = [Event.model_validate(_event("pg.e", f"t.{i}")) for i in range(60)]
            api.emit_events(batch)
            assert len(_paged(api, "pg", "desc")) == 60
            followed = api.follow_events(position, wait=1, event=["pg.*"])
            assert [e.id for e in followed.events] == [e.id for e in batch]
    finally:
        server.stop()


WRITERS, EACH = 4, 40


def _follow_all(api: FlowyardClient, cursor: str, expected: int) -> list[Event]:
    """What a follower gets from ``cursor`` until it has ``expected`` events (or more)."""
    got: list[Event] = []

    def more() -> bool:
        nonlocal cursor
        answer = api.follow_events(cursor, wait=2, event=["race.*"])
        got.extend(answer.events)
        cursor = answer.cursor
        return len(got) >= expected

    wait_until(more, timeout=120, message="every event followed")
    return got + api.follow_events(cursor, wait=0, event=["race.*"]).events  # none twice


@pytest.mark.postgres
def test_concurrent_writers_are_followed_once_each_in_order_on_postgresql(
    postgres_server, tmp_path
):
    """Four writers emit events one request at a time while a follower follows (on
    PostgreSQL, whose transactions may commit in the other order than they took their
    positions, and whose followers read events before they settle): every event arrives
    once, and each writer's in the order it wrote them."""
    from tests.postgres import fresh_database

    url = fresh_database(postgres_server, "flowyard_follow_race")
    server = ServerProcess(tmp_path / "home", env={**FAST, "FLOWYARD_DATABASE_URL": url})
    try:
        server.wait_ready()
        with server.client() as api:
            start = api.follow_events(None, wait=0).cursor
            written: dict[str, list[str]] = {}

            def write(writer: str) -> None:
                with server.client() as own:
                    for i in range(EACH):
                        event = Event.model_validate(_event(f"race.{writer}", f"r.{writer}.{i}"))
                        own.emit_events([event])
                        written.setdefault(writer, []).append(str(event.id))

            threads = [threading.Thread(target=write, args=(f"w{n}",)) for n in range(WRITERS)]
            for thread in threads:
                thread.start()
            followed = _follow_all(api, start, WRITERS * EACH)
            for thread in threads:
                thread.join(timeout=60)
        ids = [str(event.id) for event in followed]
        assert len(ids) == len(set(ids)) == WRITERS * EACH
        for writer, mine in written.items():
            assert [i for i in ids if i in set(mine)] == mine, writer
    finally:
        server.stop()


def test_events_stream_since_prints_the_backlog_first(server, api):
    """``--since`` prints matching events stored before the stream started, then follows."""
    name = _id("backlog")
    earlier = Event.model_validate(_event(name, "thing.1"))
    api.emit_events([earlier])
    shown = flowyard(server.url, "events", "stream", "--event", name, "--since", "10m", "--count",
                 "1", "--json")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert [Event.model_validate_json(line).id for line in shown.stdout.splitlines()] == [
        earlier.id
    ]


def test_events_ls_prints_a_table_and_the_next_cursor(server, api):
    """``flowyard events ls`` shows one line per event, newest first, and how to go on."""
    name = _id("table")
    api.emit_events([Event.model_validate(_event(name, f"thing.{i}")) for i in range(3)])
    listed = flowyard(server.url, "events", "ls", "--event", name, "--limit", "2")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["OCCURRED", "EVENT", "RESOURCE", "NAME", "ID"]
    assert len(lines) == 3 and all(name in line for line in lines[1:])
    cursor = listed.stderr.strip().removeprefix("more: --cursor ")
    rest = flowyard(server.url, "events", "ls", "--event", name, "--limit", "2", "--cursor", cursor)
    assert rest.returncode == 0 and len(rest.stdout.splitlines()) == 2 and not rest.stderr


def test_a_follow_with_a_vanishing_wait_answers_at_once(server):
    """A wait that rounds to 0 ms must not become Redis' BLOCK 0 (which waits for ever):
    found by the API fuzzer, a follow with wait=1e-87 held its request past 30 s."""
    response = httpx.get(
        f"{server.url}/api/events/follow",
        params={"after": "39522342", "wait": "1.363666800696982e-87"},
        timeout=10,
    )
    assert response.status_code in (200, 422), response.text
