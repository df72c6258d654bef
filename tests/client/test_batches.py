"""``BatchShipper``: coalescing by key, flush, newer records surviving a failed batch, and
requests kept within the API's body limit."""

from __future__ import annotations

import threading
from typing import Any

from flowyard.client.batches import BatchShipper
from flowyard.client.bodies import json_bytes, json_size
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


def payload(i: int, size: int = 400) -> dict[str, Any]:
    return {"id": f"d{i}", "data": "x" * size}


class TooLargeReceiver(Receiver):
    """A receiver with a body limit: a batch larger than ``limit`` bytes as JSON gets 413."""

    def __init__(self, limit: int, names_limit: bool = True) -> None:
        super().__init__()
        self.limit = limit
        self.names_limit = names_limit
        self.refused = 0

    def send(self, batch: list[dict[str, Any]]) -> None:
        if json_size(batch) > self.limit:
            self.refused += 1
            detail = f"the request body is larger than {self.limit} bytes"
            raise ApiError(413, detail if self.names_limit else "too large")
        super().send(batch)


class TestBatchBytes:
    def test_a_batch_stays_within_the_byte_limit(self):
        """Documents are grouped so that every request, as a JSON array, fits max_bytes."""
        receiver = TooLargeReceiver(limit=2048)
        ships = shipper(receiver, max_bytes=2048).start()
        for i in range(20):
            ships.put(payload(i))
        assert ships.close(timeout=10)
        assert [d["id"] for d in receiver.received()] == [f"d{i}" for i in range(20)]
        assert receiver.refused == 0
        assert all(json_size(batch) <= 2048 for batch in receiver.batches)
        assert len(receiver.batches) > 1

    def test_a_413_splits_the_batch_and_learns_the_limit(self):
        """A batch the API finds too large is sent again in halves, in order, nothing lost;
        the limit named in the answer is used for the batches after it."""
        receiver = TooLargeReceiver(limit=3000)
        ships = shipper(receiver, max_bytes=1024 * 1024).start()
        for i in range(40):
            ships.put(payload(i))
        assert ships.close(timeout=10)
        assert [d["id"] for d in receiver.received()] == [f"d{i}" for i in range(40)]
        assert ships.max_bytes == 3000 and ships.shipped == 40
        assert receiver.refused >= 1

    def test_a_413_without_a_named_limit_still_delivers_everything(self):
        """When the answer names no limit the halves shrink until they pass."""
        receiver = TooLargeReceiver(limit=2500, names_limit=False)
        ships = shipper(receiver, max_bytes=1024 * 1024).start()
        for i in range(30):
            ships.put(payload(i))
        assert ships.close(timeout=10)
        assert [d["id"] for d in receiver.received()] == [f"d{i}" for i in range(30)]

    def test_a_document_too_large_alone_is_dropped_without_the_others(self):
        """With no way to make it smaller, the one document is dropped and counted; the
        documents around it are shipped."""
        receiver = TooLargeReceiver(limit=2048)
        ships = shipper(receiver, max_bytes=2048).start()
        ships.put(payload(0))
        ships.put(payload(1, size=5000))
        ships.put(payload(2))
        assert ships.close(timeout=10)
        assert [d["id"] for d in receiver.received()] == ["d0", "d2"]
        assert ships.too_large == 1

    def test_a_document_too_large_for_the_api_is_made_smaller(self):
        """After a 413 on a lone document, ``shrink`` makes one that fits; it is sent."""
        receiver = TooLargeReceiver(limit=2000)

        def shrink(document: dict[str, Any], limit: int) -> dict[str, Any] | None:
            data = document["data"][: max(0, limit - 100)]
            return {**document, "data": data} if len(data) < len(document["data"]) else None

        ships = shipper(receiver, max_bytes=1024 * 1024, shrink=shrink).start()
        ships.put(payload(0, size=10_000))
        assert ships.close(timeout=10)
        [received] = receiver.received()
        assert received["id"] == "d0" and 0 < len(received["data"]) < 2000

    def test_a_lone_surrogate_is_sent_not_dropped(self):
        """Text UTF-8 cannot carry (a lone surrogate) becomes ``?`` on the wire."""
        assert json_bytes({"m": "a\ud800b"}) == b'{"m":"a?b"}'
