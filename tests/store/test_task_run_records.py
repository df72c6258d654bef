"""Task-run records on SQLite and PostgreSQL: migration 0008 and the bulk upsert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect

from flowyard import schemas as s
from flowyard.orchestrator import runs
from flowyard.orchestrator.api.task_runs import upsert
from flowyard.states import StateType
from flowyard.store import models as m
from flowyard.store.models import Base


def _flow_run(database) -> str:
    with database.session() as session:
        run = runs.new_run(session, flow=m.Flow(name="f"), now=datetime.now(UTC))
        session.flush()
        return run.id


def _record(flow_run_id: str, state: StateType, **fields: object) -> s.TaskRunRecord:
    base = {"id": "tr-1", "flow_run_id": flow_run_id, "name": "t-0", "task_key": "mod.t"}
    return s.TaskRunRecord.model_validate({**base, "state": state, **fields})


def _upsert(database, records: list[s.TaskRunRecord]) -> s.TaskRunUpsertResult:
    with database.session() as session:
        return upsert(session, records)


def test_migrated_tables_have_exactly_the_models_columns(database):
    """Every table the migrations build has the columns its model declares, no more."""
    inspector = inspect(database.engine)
    for name, table in Base.metadata.tables.items():
        migrated = {column["name"] for column in inspector.get_columns(name)}
        assert migrated == {column.name for column in table.columns}, name
    indexes = {index["name"] for index in inspector.get_indexes("flow_runs")}
    assert "ix_flow_runs_parent_task_run_id" in indexes


def test_a_record_is_created_then_replaced_by_a_later_one(database):
    """The second record of an id updates every field it carries."""
    run_id = _flow_run(database)
    start = datetime.now(UTC)
    _upsert(database, [_record(run_id, StateType.RUNNING, start_time=start, tags=["a"])])
    inputs = {"x": [{"input_type": "task_run", "id": "tr-0"}]}
    ref = {"storage": {"type": "local-file-system", "basepath": "/r"}, "key": "k",
           "location": "/r/k", "serializer": "pickle"}  # fmt: skip
    done = _record(
        run_id, StateType.COMPLETED, start_time=start, end_time=start + timedelta(seconds=1),
        tags=["a", "b"], task_version="1.2", task_inputs=inputs, cache_key="ck", run_count=2,
        result=ref, state_name="Cached",
    )  # fmt: skip
    assert _upsert(database, [done]).upserted == 1
    with database.read() as session:
        row = session.get(m.TaskRun, "tr-1")
        assert row is not None
        assert (row.state_type, row.state_name, row.run_count) == (StateType.COMPLETED, "Cached", 2)
        assert (row.tags, row.task_version, row.cache_key) == (["a", "b"], "1.2", "ck")
        assert row.task_inputs == inputs and row.result_ref == ref
        assert row.end_time == start + timedelta(seconds=1)


def test_a_late_record_does_not_take_a_final_state_back(database):
    """A Running record arriving after the Completed one (retried after an outage) is ignored."""
    run_id = _flow_run(database)
    _upsert(database, [_record(run_id, StateType.COMPLETED, run_count=1)])
    _upsert(database, [_record(run_id, StateType.RUNNING, run_count=0)])
    with database.read() as session:
        row = session.get(m.TaskRun, "tr-1")
        assert row is not None and (row.state_type, row.run_count) == (StateType.COMPLETED, 1)


def test_records_of_unknown_flow_runs_are_left_out_and_named(database):
    """One record naming a missing flow run does not cost the others of its batch."""
    run_id = _flow_run(database)
    result = _upsert(
        database,
        [_record(run_id, StateType.RUNNING), _record("nope", StateType.RUNNING, id="tr-2")],
    )
    assert (result.upserted, result.unknown_flow_runs) == (1, ["nope"])
    with database.read() as session:
        assert session.get(m.TaskRun, "tr-2") is None
