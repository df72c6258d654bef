"""The log shipper: batches, flushes on close, keeps records while the API is away."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from flowyard.client import FlowyardClient
from flowyard.client.log_shipper import LogShipper, cut_message, log_record
from flowyard.schemas import MAX_LOG_MESSAGE_LENGTH, LogCreate


def record(message: str) -> LogCreate:
    return LogCreate(flow_run_id="run-1", message=message, timestamp=datetime.now(UTC))


@pytest.fixture
def client(logs_api):
    _, url = logs_api
    with FlowyardClient(url, retry_seconds=0) as c:
        yield c


class TestLogShipper:
    def test_close_ships_everything_in_order(self, logs_api, client):
        """Records put just before close still arrive, in the order they were logged."""
        endpoint, _ = logs_api
        shipper = LogShipper(client, flush_interval=60).start()
        for i in range(250):
            shipper.put(record(f"line {i}"))
        assert shipper.close(timeout=10)
        assert endpoint.messages() == [f"line {i}" for i in range(250)]
        assert max(len(batch) for batch in endpoint.batches) <= 100

    def test_a_full_batch_leaves_without_waiting_for_the_interval(self, logs_api, client):
        """100 waiting records are shipped at once, long before the flush interval."""
        endpoint, _ = logs_api
        shipper = LogShipper(client, flush_interval=60, batch_size=100).start()
        for i in range(100):
            shipper.put(record(f"line {i}"))
        endpoint.wait_for(lambda: len(endpoint.batches) == 1)
        assert shipper.close(timeout=10)

    def test_records_leave_on_the_interval(self, logs_api, client):
        """A lone record is shipped by the periodic flush, without close."""
        endpoint, _ = logs_api
        shipper = LogShipper(client, flush_interval=0.05).start()
        shipper.put(record("alone"))
        endpoint.wait_for(lambda: endpoint.messages() == ["alone"])
        assert shipper.close(timeout=10)

    def test_transient_failures_are_retried_without_loss(self, logs_api, client):
        """503 answers keep the batch; it arrives once, in order, when the API is back."""
        endpoint, _ = logs_api
        endpoint.fail_next = 3
        shipper = LogShipper(client, flush_interval=0.01, retry_interval=0.01).start()
        for i in range(5):
            shipper.put(record(f"line {i}"))
        assert shipper.close(timeout=10)
        assert endpoint.failures == 3
        assert endpoint.messages() == [f"line {i}" for i in range(5)]

    def test_an_unreachable_api_never_raises(self):
        """With the API down, close gives up after its timeout and reports what is left."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with FlowyardClient(f"http://127.0.0.1:{port}", retry_seconds=0) as client:
            shipper = LogShipper(client, flush_interval=0.01, retry_interval=0.01).start()
            shipper.put(record("kept"))
            assert shipper.close(timeout=0.3) is False
            assert shipper.pending == 1

    def test_a_long_outage_drops_the_oldest_records_beyond_the_cap(self, client):
        """At most max_pending records are held; the oldest go first and are counted."""
        shipper = LogShipper(client, max_pending=2)
        for i in range(3):
            shipper.put(record(f"line {i}"))
        assert (shipper.pending, shipper.dropped) == (2, 1)


class TestCutLines:
    def test_an_over_long_line_is_cut_and_says_how_much(self):
        """A line beyond the API's length keeps its start and ends with the count cut."""
        line = "x" * (MAX_LOG_MESSAGE_LENGTH + 1)
        made = log_record(flow_run_id="run-1", message=line, timestamp=datetime.now(UTC))
        assert len(made.message) == MAX_LOG_MESSAGE_LENGTH
        kept, _, note = made.message.partition("…")
        cut = int(note.split()[1])
        assert note == f" [cut: {cut} more characters]" and len(kept) + cut == len(line)

    def test_a_line_within_the_bound_is_untouched(self):
        assert cut_message("short", 5) == "short"

    def test_cutting_again_counts_both_cuts_in_one_note(self):
        """A line cut for length and again for bytes carries one note with the total."""
        once = cut_message("y" * 1000, 500)
        twice = cut_message(once, 100)
        assert twice.count("[cut:") == 1 and len(twice) <= 100
        assert twice.count("y") + int(twice.split("[cut: ")[1].split()[0]) == 1000

    def test_a_limit_below_the_note_is_a_plain_cut(self):
        assert cut_message("z" * 50, 10) == "z" * 10

    def test_the_run_logger_cuts_instead_of_failing(self, logs_api, client):
        """A record logged through a flow run's logger with a line beyond the bound is
        shipped cut (the same cut as a worker's output)."""
        import logging

        from flowyard.sdk.logs import RunLogHandler

        endpoint, _ = logs_api
        shipper = LogShipper(client, flush_interval=60).start()
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "x" * 1_000_001, None, None)
        record.__dict__.update(flow_run_id="run-1", flowyard_shipper=shipper, flowyard_echo=False)
        handler = RunLogHandler()
        handler.handleError = lambda record: pytest.fail("the handler failed")  # type: ignore[method-assign]
        handler.emit(record)
        assert shipper.close(timeout=10)
        [message] = endpoint.messages()
        assert len(message) == MAX_LOG_MESSAGE_LENGTH and message.endswith(" more characters]")
