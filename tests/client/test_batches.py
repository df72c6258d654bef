"""``BatchShipper``: coalescing by key, flush, and newer records surviving a failed batch."""

from __future__ import annotations

import threading
from typing import Any

from flowyard.client.batches import BatchShipper
from flowyard.errors import ApiError
from tests.waiting import wait_until


class Receiver:
    """The far side of a shipper: records batches; can hold one send or fail the next ones."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail_next = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def send(self, batch: list[dict[str, Any]]) -> None:
        self.entered.set()
        self.release.wait(10)
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ApiError(503, "away")
        self.batches.append(list(batch))

    def received(self) -> list[dict[str, Any]]:
        return [doc for batch in self.batches for doc in batch]


def shipper(receiver: Receiver, **options: Any) -> BatchShipper[dict[str, Any]]:
    options = {"flush_interval": 60, "retry_interval": 0.01, **options}
    return BatchShipper(receiver.send, name="test", key=lambda d: d["id"], **options)


class TestBatchShipper:
    def test_a_newer_document_replaces_a_waiting_one_in_place(self):
        """Start and end of one id become one document; order of first arrival is kept."""
        receiver = Receiver()
        ships = shipper(receiver).start()
        ships.put({"id": "a", "state": "RUNNING"})
        ships.put({"id": "b", "state": "RUNNING"})
        ships.put({"id": "a", "state": "COMPLETED"})
        assert ships.flush(timeout=10)
        assert receiver.received() == [
            {"id": "a", "state": "COMPLETED"},
            {"id": "b", "state": "RUNNING"},
        ]
        assert ships.close(timeout=10)

    def test_flush_ships_at_once_and_keeps_the_thread(self):
        """flush does not wait for the interval, and the shipper still takes documents after."""
        receiver = Receiver()
        ships = shipper(receiver).start()
        ships.put({"id": "a"})
        assert ships.flush(timeout=10)
        ships.put({"id": "b"})
        assert ships.flush(timeout=10)
        assert [d["id"] for d in receiver.received()] == ["a", "b"]
        assert ships.close(timeout=10)

    def test_a_newer_document_wins_over_its_failed_batch(self):
        """A batch retried after a 503 does not bring back a state replaced meanwhile."""
        receiver = Receiver()
        receiver.fail_next = 1
        receiver.release.clear()
        ships = shipper(receiver, flush_interval=0.01).start()
        ships.put({"id": "a", "state": "RUNNING"})
        assert receiver.entered.wait(10)  # the RUNNING document is in flight
        ships.put({"id": "a", "state": "COMPLETED"})
        receiver.release.set()
        assert ships.close(timeout=10)
        assert receiver.received() == [{"id": "a", "state": "COMPLETED"}]
        assert ships.failed_batches == 1

    def test_documents_without_a_key_are_all_kept(self):
        """With no key function nothing coalesces (log records)."""
        receiver = Receiver()
        ships = BatchShipper(receiver.send, name="test", flush_interval=0.01).start()
        for _ in range(3):
            ships.put({"id": "same"})
        wait_until(lambda: len(receiver.received()) == 3)
        assert ships.close(timeout=10)
