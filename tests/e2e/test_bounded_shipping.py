"""What user code produces reaches a real server within its bounds, or is cut and says so:
over-long printed lines, logs and task-run records that together exceed the request-size
limit (4 MiB), a limit lower than the client was told (413), a record too large alone."""

from __future__ import annotations

import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.client import FlowyardClient
from flowyard.client.log_shipper import LogShipper, log_record
from flowyard.client.task_run_shipper import TaskRunShipper
from flowyard.settings import MIB
from flowyard.states import StateType
from tests.e2e.conftest import deploy_flow
from tests.waiting import wait_until

BIG_FLOWS = textwrap.dedent(
    """
    from flowyard import flow, get_run_logger


    @flow(name="long-line")
    def long_line() -> None:
        print("x" * 1_000_001)
        print("after the long line")


    @flow(name="big-logs")
    def big_logs() -> None:
        logger = get_run_logger()
        for i in range(5):
            logger.info(str(i) + "x" * 900_000)
    """
)

CUT_NOTE = " more characters]"


@pytest.fixture
def big_flows(tmp_path: Path) -> Path:
    folder = tmp_path / "big-flows"
    folder.mkdir()
    (folder / "flows.py").write_text(BIG_FLOWS)
    return folder


@pytest.fixture
def run_id(api: FlowyardClient) -> str:
    """A flow run to ship logs and task-run records of."""
    return api.create_flow_run(s.FlowRunCreate(flow_name="shipping")).id


def messages(api: FlowyardClient, run_id: str) -> list[str]:
    return [log.message for log in api.read_logs(run_id)]


def line(run_id: str, message: str) -> s.LogCreate:
    return log_record(flow_run_id=run_id, message=message, timestamp=datetime.now(UTC))


def finished(api: FlowyardClient, run_id: str) -> StateType:
    return wait_until(
        lambda: (state := api.read_flow_run(run_id).state.type).is_terminal and state,
        timeout=90,
        interval=0.2,
    )


class TestDeployedRuns:
    def test_a_printed_line_beyond_the_bound_is_cut_and_the_output_goes_on(
        self, api, pool, big_flows, start_worker
    ):
        """A flow printing 1,000,001 characters on one line under a process worker: the
        line is a log cut to the API's bound that says so, and the next line follows."""
        deployment = deploy_flow(api, pool, big_flows, "long_line")
        run = api.run_deployment(deployment.id, s.DeploymentRunRequest())
        start_worker()
        assert finished(api, run.id) is StateType.COMPLETED
        wait_until(lambda: "after the long line" in messages(api, run.id), timeout=30)
        [cut] = [m for m in messages(api, run.id) if m.startswith("xxx")]
        assert len(cut) == s.MAX_LOG_MESSAGE_LENGTH and cut.endswith(CUT_NOTE)

    def test_logs_larger_together_than_a_request_all_arrive(
        self, api, pool, big_flows, start_worker
    ):
        """Five 900,000-character log records logged at once (4.5 MB together) all reach
        the API whole: the shipper sends them in requests under the limit."""
        deployment = deploy_flow(api, pool, big_flows, "big_logs")
        run = api.run_deployment(deployment.id, s.DeploymentRunRequest())
        start_worker()
        assert finished(api, run.id) is StateType.COMPLETED
        big = [m for m in messages(api, run.id) if len(m) > 100_000]
        assert sorted(m[0] for m in big) == list("01234")
        assert all(len(m) == 900_001 for m in big)


class TestLogShipper:
    def test_a_batch_over_the_limit_is_split(self, server, run_id, api):
        """Logs put at once whose batch would exceed 4 MiB leave in several requests."""
        with FlowyardClient(server.url) as client:
            shipper = LogShipper(client, flush_interval=60).start()
            for i in range(5):
                shipper.put(line(run_id, str(i) + "x" * 900_000))
            assert shipper.close(timeout=60)
        assert [m[0] for m in messages(api, run_id)] == list("01234")
        assert shipper.too_large == 0

    def test_a_413_splits_the_batch_and_learns_the_limit(self, server, run_id, api):
        """A client told a larger limit than the server's gets 413: the batch is split and
        sent again, nothing lost, and the server's limit is used from then on."""
        with FlowyardClient(server.url, max_request_bytes=64 * MIB) as client:
            shipper = LogShipper(client, flush_interval=60).start()
            for i in range(10):
                shipper.put(line(run_id, str(i) + "x" * 900_000))
            assert shipper.close(timeout=60)
        assert [m[0] for m in messages(api, run_id)] == list("0123456789")
        assert shipper.max_bytes == 4 * MIB

    def test_a_record_too_large_alone_is_cut_and_the_others_kept(self, server, run_id, api):
        """A line of 1,000,000 escape characters (6 MB as JSON) is cut to fit a request;
        the records around it arrive as they were."""
        with FlowyardClient(server.url) as client:
            shipper = LogShipper(client, flush_interval=60).start()
            shipper.put(line(run_id, "before"))
            shipper.put(line(run_id, "\x1b" * 1_000_000))
            shipper.put(line(run_id, "after"))
            assert shipper.close(timeout=60)
        before, cut, after = messages(api, run_id)
        assert (before, after) == ("before", "after")
        assert 100_000 < len(cut) < 1_000_000 and cut.endswith(CUT_NOTE)


class TestTaskRunShipper:
    def record(self, run_id: str, i: int, size: int = 10_000) -> dict[str, object]:
        return {
            "id": str(uuid.uuid4()), "flow_run_id": run_id, "name": f"t-{i}",
            "task_key": "shipping.t", "state": "COMPLETED", "parameters": {"p": "y" * size},
        }  # fmt: skip

    def test_records_larger_together_than_a_request_are_all_stored(self, server, run_id, api):
        """600 records of 10 KB (6 MB together, more than one 500-record batch may hold)."""
        with FlowyardClient(server.url) as client:
            shipper = TaskRunShipper(client, flush_interval=60).start()
            for i in range(600):
                shipper.put(self.record(run_id, i))
            assert shipper.close(timeout=60)
        assert len(api.list_task_runs(run_id)) == 600

    def test_a_record_too_large_alone_is_dropped_alone(self, server, run_id, api):
        """A record larger than any request is reported and dropped; the others are stored."""
        with FlowyardClient(server.url, max_request_bytes=64 * MIB) as client:
            shipper = TaskRunShipper(client, flush_interval=60).start()
            shipper.put(self.record(run_id, 0))
            shipper.put(self.record(run_id, 1, size=5 * MIB))
            shipper.put(self.record(run_id, 2))
            assert shipper.close(timeout=60)
        assert sorted(run.name for run in api.list_task_runs(run_id)) == ["t-0", "t-2"]
        assert shipper.too_large == 1
