"""Single run creates written as a group: one transaction, each create its own outcome."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, event, func, select
from sqlalchemy.exc import OperationalError

from flowyard import schemas as s
from flowyard.errors import InvalidInput, NotFound
from flowyard.orchestrator.deployment_versions import DeploymentVersions
from flowyard.orchestrator.single_creates import Create, write_group
from flowyard.store import models as m


def _deployment(database) -> str:
    with database.session() as session:
        pool = m.WorkPool(name="local", type="process")
        queue = m.WorkQueue(name="default", priority=1)
        pool.queues.append(queue)
        dep = m.Deployment(
            flow=m.Flow(name="etl"),
            name="nightly",
            entrypoint="f.py:etl",
            queue=queue,
            parameter_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
        )
        session.add_all([pool, dep])
        session.flush()
        return dep.id


def _count(database, model) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _create(ref: str, **body) -> Create:
    return Create(ref, s.DeploymentRunRequest(**body))


def test_a_group_is_written_in_one_transaction_each_create_its_own_run(database):
    """Every create of the group gets its own Scheduled run with its own parameters and its
    own event, all written by one transaction (their events share its receipt time)."""
    dep_id = _deployment(database)
    creates = [_create(dep_id, parameters={"n": n}) for n in range(3)]
    creates.append(_create("etl/nightly", priority=5))  # by name: read once more, same run

    outcomes, effects = write_group(database, creates)

    assert [row["parameters"] for row in outcomes] == [{"n": 0}, {"n": 1}, {"n": 2}, {}]
    assert outcomes[3]["priority"] == 5
    assert len({row["id"] for row in outcomes}) == 4
    assert sorted(e.run_id for e in effects) == sorted(row["id"] for row in outcomes)
    with database.read() as session:
        received = session.scalars(
            select(m.Event.received).where(m.Event.event == "flowyard.flow-run.Scheduled")
        ).all()
    assert len(received) == 4 and len(set(received)) == 1


def test_a_refused_create_fails_alone(database):
    """A missing deployment or a bad parameter is that create's own error; the others of the
    group are written and queued."""
    dep_id = _deployment(database)
    creates = [
        _create(dep_id, parameters={"n": 1}),
        _create("no/such"),
        _create(dep_id, parameters={"n": "x"}),
        _create(dep_id, parameters={"n": 2}),
    ]

    outcomes, effects = write_group(database, creates)

    assert isinstance(outcomes[1], NotFound) and isinstance(outcomes[2], InvalidInput)
    written = [outcomes[0], outcomes[3]]
    assert [row["parameters"] for row in written] == [{"n": 1}, {"n": 2}]
    assert sorted(e.run_id for e in effects) == sorted(row["id"] for row in written)
    assert _count(database, m.FlowRun) == 2


def test_a_failed_shared_commit_fails_the_whole_group_and_writes_nothing(database):
    """When the group's commit fails, write_group raises (every caller of the group gets the
    error: GroupCommit hands a failed call's error to each), and no run, state or event is
    left in the store."""
    dep_id = _deployment(database)
    events_before = _count(database, m.Event)

    def fail(connection) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    event.listen(database.engine, "commit", fail)
    try:
        with pytest.raises(OperationalError):
            write_group(database, [_create(dep_id, parameters={"n": n}) for n in range(3)])
    finally:
        event.remove(database.engine, "commit", fail)

    assert _count(database, m.FlowRun) == 0
    assert _count(database, m.FlowRunState) == 0
    assert _count(database, m.Event) == events_before
    outcomes, _ = write_group(database, [_create(dep_id)])  # the store works on
    assert _count(database, m.FlowRun) == 1 and outcomes[0]["deployment_id"] == dep_id


def test_a_deployment_deleted_after_its_read_refuses_only_its_creates(database):
    """An integrity error in the shared transaction (the deployment went between the read
    and the write) sends each create through its own: the others are written."""
    dep_id = _deployment(database)
    with database.session() as session:
        pool = session.scalars(select(m.WorkPool)).one()
        other = m.Deployment(
            flow=m.Flow(name="gone"), name="soon", entrypoint="f.py:g", queue=pool.queues[0]
        )
        session.add(other)
        session.flush()
        other_id = other.id

    with database.read() as session:
        reader = session.get_bind()

    def delete_other(connection) -> None:  # as the group's read ends, before its write
        with database.session() as session:
            session.execute(delete(m.Deployment).where(m.Deployment.id == other_id))

    event.listen(reader, "commit", delete_other, once=True)
    outcomes, effects = write_group(database, [_create(dep_id), _create(other_id)])

    assert outcomes[0]["deployment_id"] == dep_id
    assert isinstance(outcomes[1], NotFound)
    assert [e.run_id for e in effects] == [outcomes[0]["id"]]
    assert _count(database, m.FlowRun) == 1


def test_a_deployment_loaded_before_serves_until_it_or_its_pool_changes(database):
    """Groups share the deployments they loaded, by version: a change to the deployment
    (tags, parameters' schema), to its pool's job template, or a rename of its queue, is
    seen by the next create, and a deleted deployment is not found."""
    dep_id = _deployment(database)
    versions = DeploymentVersions()
    first, _ = write_group(database, [_create(dep_id, parameters={"n": 1})], versions)
    assert first[0]["tags"] == [] and first[0]["queue_name"] == "default"
    again, _ = write_group(database, [_create("etl/nightly")], versions)
    assert again[0]["deployment_id"] == dep_id and len(versions._loaded) == 1

    with database.session() as session:
        dep = session.get(m.Deployment, dep_id)
        dep.tags = ["fresh"]
        dep.parameter_schema = {"type": "object", "properties": {"n": {"type": "string"}}}
        dep.queue.name = "renamed"
    [changed], effects = write_group(database, [_create(dep_id, parameters={"n": "x"})], versions)
    assert changed["tags"] == ["fresh"] and changed["queue_name"] == "renamed"
    assert [e.queue for e in effects] == ["renamed"]

    with database.session() as session:
        pool = session.scalars(select(m.WorkPool)).one()
        pool.base_job_template = {
            "variables": {"type": "object", "properties": {}, "required": ["image"]}
        }
    [refused], _ = write_group(database, [_create(dep_id, parameters={"n": "y"})], versions)
    assert isinstance(refused, InvalidInput) and "image" in str(refused)

    with database.session() as session:
        session.execute(delete(m.FlowRunState))
        session.execute(delete(m.FlowRun))
        session.execute(delete(m.Deployment))
    [gone], _ = write_group(database, [_create(dep_id)], versions)
    assert isinstance(gone, NotFound)
