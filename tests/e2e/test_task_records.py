"""Flows called from a script against a real server: the task graph, task-run records,
flow results persisted and read back from another process, and the graph on the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowyard import flow, tags, task
from flowyard import schemas as s
from flowyard.cli.main import cli
from flowyard.errors import ApiError
from flowyard.results import load_result
from flowyard.runtime import flow_run
from flowyard.states import StateType


@pytest.fixture
def recorded(server, monkeypatch):
    """Direct flow calls in this test are recorded through the session's server."""
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    return server


# -- a dynamic flow ----------------------------------------------------------------------


@task
def numbers(n: int) -> list[str]:
    return [f"item-{i}" for i in range(n)]


@task
def is_big(values: list[str]) -> bool:
    return len(values) > 2


@task
def shout(item: str) -> str:
    return item.upper()


@task
def whisper(item: str) -> str:
    return item.lower()


@task
def join(parts: list[str], sep: str = ",") -> str:
    return sep.join(parts)


@task
def pair(values: list) -> str:
    return f"{values[0]}|{len(values[1])}"


@task
def show(text: str) -> str:
    return text


@task
def announce() -> str:
    return "done!"


@flow(name="graph-child", flow_run_name="child-run")
def child(values: list[str]) -> str:
    return join(values, sep=";")


@flow(name="graph-dynamic")
def dynamic(n: int) -> tuple[str, str]:
    data = numbers(n)
    loud = shout.map(data) if is_big(data) else whisper.map(data)  # decided at run time
    joined = join.submit(loud)
    both = pair([joined.result(), data])  # two results inside a list
    show(child(data))
    announce(wait_for=[joined])
    return flow_run.id, both


def test_the_graph_of_a_dynamic_flow_has_exactly_the_expected_edges(recorded, api):
    """Branch, map, a list of futures, values inside a list, a subflow and wait_for: each
    upstream that fed a run is one edge, with its parameter; nothing else is an edge."""
    run_id, both = dynamic(3)
    assert both == "ITEM-0,ITEM-1,ITEM-2|3"
    graph = api.read_flow_run_graph(run_id)
    names = {node.id: node.name for node in graph.nodes}
    assert sorted(names.values()) == sorted(
        ["numbers-0", "is_big-0", "shout-0", "shout-1", "shout-2", "join-0", "pair-0",
         "child-run", "show-0", "announce-0"]
    )  # fmt: skip
    edges = {(names[e.upstream], names[e.downstream], e.parameter) for e in graph.edges}
    assert edges == {
        ("numbers-0", "is_big-0", "values"),
        ("numbers-0", "shout-0", "item"),
        ("numbers-0", "shout-1", "item"),
        ("numbers-0", "shout-2", "item"),
        ("shout-0", "join-0", "parts"),
        ("shout-1", "join-0", "parts"),
        ("shout-2", "join-0", "parts"),
        ("join-0", "pair-0", "values"),
        ("numbers-0", "pair-0", "values"),
        ("numbers-0", "child-run", "values"),
        ("child-run", "show-0", "text"),
        ("join-0", "announce-0", "wait_for"),
    }
    kinds = {node.name: node.kind for node in graph.nodes}
    assert kinds["child-run"] == "flow-run" and kinds["join-0"] == "task-run"
    assert all(node.state_type is StateType.COMPLETED for node in graph.nodes)


def test_the_other_branch_gives_another_graph(recorded, api):
    """With a small input the flow takes the whisper branch: the graph follows the run."""
    run_id, _ = dynamic(2)
    names = {node.name for node in api.read_flow_run_graph(run_id).nodes}
    assert {"whisper-0", "whisper-1"} <= names and not any(n.startswith("shout") for n in names)


def test_the_cli_prints_the_graph_with_upstreams(recorded):
    """``flowyard flow-run graph ID`` lists runs with what fed them; --json is the API's."""
    run_id, _ = dynamic(3)
    runner = CliRunner()
    text = runner.invoke(cli, ["--api-url", recorded.url, "flow-run", "graph", run_id[:8]])
    assert text.exit_code == 0, text.output
    rows = {line.split()[0]: line for line in text.output.splitlines()[2:]}
    assert "numbers-0 (values)" in rows["child-run"] and "flow" in rows["child-run"].split()
    assert "join-0 (wait_for)" in rows["announce-0"]
    as_json = runner.invoke(cli, ["--api-url", recorded.url, "flow-run", "graph", run_id, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert len(json.loads(as_json.output)["edges"]) == 12


# -- task-run records ----------------------------------------------------------------------

attempts: list[int] = []


@task(tags=["etl"], version="2.1", cache_key_fn=lambda _ctx, params: f"sq-{params['n']}",
      persist_result=True, retries=1)  # fmt: skip
def square(n: int) -> int:
    attempts.append(n)
    if len(attempts) == 1:
        raise RuntimeError("first attempt fails")
    return n * n


@flow(name="records")
def records_flow(n: int, storage: str) -> str:
    with tags("nightly"):
        square.with_options(result_storage=storage)(n)
    return flow_run.id


def test_task_runs_record_tags_version_cache_key_attempts_and_result(recorded, api, tmp_path):
    """The task-run read API returns what the SDK knew: tags (task's and tags()), version,
    cache key, attempts, and where the persisted result is (readable from it)."""
    attempts.clear()
    run_id = records_flow(12, str(tmp_path / "results"))
    [summary] = api.list_task_runs(run_id)
    task_run = api.read_task_run(summary.id)
    assert task_run.tags == ["etl", "nightly"]
    assert (task_run.task_version, task_run.cache_key, task_run.run_count) == ("2.1", "sq-12", 2)
    assert task_run.state_type is StateType.COMPLETED and task_run.end_time is not None
    assert task_run.result is not None and task_run.result.serializer == "json"  # plain data
    assert task_run.result.location.startswith(str(tmp_path / "results"))
    assert load_result(task_run, storage=str(tmp_path / "results")) == 144
    shown = CliRunner().invoke(cli, ["--api-url", recorded.url, "flow-run", "inspect", run_id])
    assert shown.exit_code == 0, shown.output
    [row] = [line for line in shown.output.splitlines() if line.startswith("square-0")]
    assert row.split()[-3:] == ["2", "etl,", "nightly"]  # attempts, tags


# -- flow results ----------------------------------------------------------------------------


@flow(name="persisted", persist_result=True, result_serializer="json")
def persisted(storage_note: str) -> dict[str, object]:
    return {"run": flow_run.id, "note": storage_note}


def test_a_flow_result_is_persisted_and_read_back_by_another_process(recorded, api, tmp_path):
    """persist_result=True writes the return value; the flow run's reference reads it back
    in a fresh interpreter, through the API."""
    storage = tmp_path / "flow-results"
    state = persisted.with_options(result_storage=str(storage))("kept", return_state=True)
    value = state.result()
    run = api.read_flow_run(str(value["run"]))
    assert run.result is not None and run.result.serializer == "json"
    assert Path(run.result.location).parent == storage
    script = (
        "import sys; from flowyard.client import FlowyardClient; "
        "from flowyard.results import load_result; "
        "run = FlowyardClient(sys.argv[1]).read_flow_run(sys.argv[2]); "
        "print(load_result(run, storage=sys.argv[3]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, recorded.url, run.id, str(storage)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str({"run": run.id, "note": "kept"})


def test_a_result_that_cannot_be_persisted_fails_the_flow(recorded, tmp_path):
    """A value the serializer refuses fails the flow run, as in Prefect."""

    @flow(persist_result=True, result_serializer="json", result_storage=str(tmp_path))
    def unserializable() -> object:
        return object()

    state = unserializable(return_state=True)
    assert state.is_failed() and "could not persist its result" in (state.message or "")


def test_reading_a_run_without_a_persisted_result_says_so(recorded, api):
    """load_result on a run that persisted nothing raises MissingResult."""
    from flowyard.results import MissingResult

    run_id, _ = dynamic(2)
    with pytest.raises(MissingResult, match="no persisted result"):
        load_result(api.read_flow_run(run_id))


def test_the_flow_call_returns_with_every_record_visible(recorded, api):
    """Records are shipped in the background, but flushed before the flow call returns."""

    @task
    def tiny(i: int) -> int:
        return i

    @flow
    def many() -> str:
        for i in range(300):
            tiny(i)
        return flow_run.id

    run_id = many()
    task_runs = api.list_task_runs(run_id)
    assert len(task_runs) == 300
    assert {t.state_type for t in task_runs} == {StateType.COMPLETED}


def _running(api, run_id: str, **fields) -> str:
    """A Running task run of ``run_id``, recorded as the SDK records one; its id."""
    record = {"id": str(uuid.uuid4()), "flow_run_id": run_id, "name": "manual-0",
              "task_key": "manual", "state": "RUNNING", **fields}  # fmt: skip
    assert api.upsert_task_runs([record]).upserted == 1
    return record["id"]


def test_the_state_route_keeps_the_recorded_fields(recorded, api):
    """POST /api/task_runs/{id}/state records attempts and cache key and keeps the tags,
    version and inputs of the task run's record."""
    run_id, _ = dynamic(2)
    upstream = api.list_task_runs(run_id)[0].id
    inputs = {"a": [{"input_type": "task_run", "id": upstream}]}
    task_run_id = _running(api, run_id, tags=["x"], task_version="3", task_inputs=inputs)
    api.set_task_run_state(
        task_run_id, s.TaskRunUpdate(state=StateType.COMPLETED, run_count=3, cache_key="ck")
    )
    read = api.read_task_run(task_run_id)
    assert (read.tags, read.task_version, read.run_count, read.cache_key) == (["x"], "3", 3, "ck")
    assert [i.id for i in read.task_inputs["a"]] == [upstream]
    assert read.end_time is not None


@pytest.mark.parametrize("final", [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED])
def test_a_final_task_run_is_not_taken_back_to_a_non_final_state(recorded, api, final):
    """A flow run's task run that is final refuses Running, Scheduled or Pending (409 naming
    both states) and stays as it was; another final state still replaces it."""
    run_id = api.create_flow_run(s.FlowRunCreate(flow_name="final-task-runs")).id
    task_run_id = _running(api, run_id)
    done = api.set_task_run_state(task_run_id, s.TaskRunUpdate(state=final, message="done"))
    for back in (StateType.RUNNING, StateType.SCHEDULED, StateType.PENDING):
        with pytest.raises(ApiError) as refused:
            api.set_task_run_state(task_run_id, s.TaskRunUpdate(state=back))
        assert refused.value.status_code == 409
        assert final.display_name in str(refused.value) and back.display_name in str(refused.value)
    kept = api.read_task_run(task_run_id)
    assert (kept.state_type, kept.message, kept.end_time) == (final, "done", done.end_time)
    other = StateType.CANCELLED
    assert api.set_task_run_state(task_run_id, s.TaskRunUpdate(state=other)).state_type is other


def test_futures_carry_their_task_run_id_before_the_run_starts(recorded, api):
    """``future.task_run_id`` is the recorded id from ``submit`` on, while the run still
    waits for its upstream; two runs with the same explicit name still link apart."""
    import threading

    gate = threading.Event()

    @task(task_run_name="same")
    def hold(tag: str) -> str:
        assert gate.wait(30)
        return tag

    @task
    def take(value: str) -> str:
        return value

    @flow
    def twins() -> tuple[str, dict[str, str | None], dict[str, str]]:
        first, second = hold.submit("a"), hold.submit("b")
        after_second = take.submit(second)
        ids = {"first": first.task_run_id, "second": second.task_run_id,
               "after": after_second.task_run_id}  # fmt: skip
        gate.set()
        assert after_second.result() == "b"
        return flow_run.id, ids, {"done": first.result() + second.result()}

    run_id, ids, _ = twins()
    records = {t.id: t for t in api.list_task_runs(run_id)}
    assert set(ids.values()) == set(records) and None not in ids.values()
    assert records[ids["first"]].name == records[ids["second"]].name == "same"
    assert [i.id for i in records[ids["after"]].task_inputs["value"]] == [ids["second"]]


def test_a_flow_called_from_a_script_shows_up_in_flow_run_ls(server, api, tmp_path):
    """A plain script with ``FLOWYARD_API_URL`` set: its flow run is listed by ``flowyard
    flow-run ls``, Completed, under the name the script gave it; its logs are in the API
    and printed on the script's terminal too."""
    import os
    import textwrap

    script = tmp_path / "nightly.py"
    script.write_text(
        textwrap.dedent(
            """
            from flowyard import flow, get_run_logger, task
            from flowyard.runtime import flow_run

            @task
            def add(a: int, b: int) -> int:
                return a + b

            @flow(flow_run_name="nightly-{day}")
            def nightly(day: str) -> int:
                print(flow_run.id)
                get_run_logger().info("adding up")
                return add(1, 2)

            nightly("2026-11-26")
            """
        )
    )
    env = {**os.environ, "FLOWYARD_API_URL": server.url}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[0]
    listed = CliRunner().invoke(cli, ["--api-url", server.url, "flow-run", "ls", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = [r for r in json.loads(listed.output) if r["id"] == run_id]
    assert (row["name"], row["state"]["type"]) == ("nightly-2026-11-26", "COMPLETED")
    table = CliRunner().invoke(cli, ["--api-url", server.url, "flow-run", "ls"])
    assert "nightly-2026-11-26" in table.output
    assert "Flow run 'nightly-2026-11-26' - adding up" in done.stderr
    assert "Task run 'add-0' - Finished in state Completed()" in done.stderr
    assert "adding up" in [log.message for log in api.read_logs(run_id)]


# -- labels the API would refuse -------------------------------------------------------------

ODD_LABELS = """
from flowyard import flow, task
from flowyard.states import Completed


@task(name="spaced", task_run_name=" padded ", tags=["trailing ", "fine", " "])
def spaced(n: int) -> int:
    return n + 1


@task(name="nul\\x00and\\u202ebidi")
def controls(n: int) -> int:
    return n * 10


@task(name="n" * 500)
def long_name(n: int) -> int:
    return n


@task
def named_state(n: int):
    return Completed(data=n, name="Done " * 20)


@flow(name="odd-labels")
def odd_labels() -> int:
    return spaced(1) + controls(2) + long_name(3) + long_name(4) + named_state(5)


print(odd_labels())
"""


def test_task_labels_the_api_refuses_are_recorded_storable(recorded, api, tmp_path):
    """Task names with edge spaces, NUL or bidi overrides, or 500 characters, tags with
    spaces, a 100-character state name: the tasks run as usual, their runs are recorded
    with the labels made storable, and each change is warned about once."""
    script = tmp_path / "odd.py"
    script.write_text(ODD_LABELS)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "FLOWYARD_API_URL": recorded.url}, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "34"  # 2 + 20 + 3 + 4 + 5
    output = done.stdout + done.stderr
    assert "task_run_not_recorded" not in output and "flow_run_not_recorded" not in output
    [run] = [r for r in api.list_flow_runs(limit=50) if r.flow_name == "odd-labels"]
    task_runs = {t.name: t for t in api.list_task_runs(run.id)}
    long_names = [name for name in task_runs if name.startswith("nnn")]
    assert sorted(name[-2:] for name in long_names) == ["-0", "-1"]
    assert all(len(name) == s.MAX_LABEL_LENGTH for name in long_names)
    assert "padded" in task_runs and task_runs["padded"].tags == ["fine", "trailing"]
    assert "nul\ufffdand\ufffdbidi-0" in task_runs
    [state_named] = [t for t in task_runs.values() if t.name.startswith("named_state")]
    assert state_named.state_name is not None and len(state_named.state_name) <= 50
    assert all(t.state_type is StateType.COMPLETED for t in task_runs.values())
    # once per task and field: the long name is warned about once for its two runs
    assert output.count("task_run_label_changed") == 5, output


ODD_SUBFLOW = """
from flowyard import flow


@flow(name="odd child ")
def odd_child() -> int:
    return 7


@flow(name="odd-parent")
def odd_parent() -> int:
    return odd_child() * 6


print(odd_parent())
"""


def test_a_subflow_whose_name_the_api_refuses_is_recorded_in_its_parent(recorded, api, tmp_path):
    """The parent's task run standing for the call is recorded with a storable key; the
    child runs unrecorded (as a flow with such a name does), and the parent completes."""
    script = tmp_path / "odd_subflow.py"
    script.write_text(ODD_SUBFLOW)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "FLOWYARD_API_URL": recorded.url}, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "42"
    [run] = [r for r in api.list_flow_runs(limit=50) if r.flow_name == "odd-parent"]
    assert api.read_flow_run(run.id).state.type is StateType.COMPLETED
    [call] = api.list_task_runs(run.id)
    assert (call.name, call.task_key) == ("odd child -0", "flow:odd child")
    assert call.state_type is StateType.COMPLETED
    assert (done.stdout + done.stderr).count("task_run_label_changed") == 1
