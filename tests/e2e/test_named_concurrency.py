"""``flowyard.concurrency``: blocks holding slots of named limits on a real server (the
same limits as task tags), as Prefect's ``concurrency`` context manager does."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
from click.testing import CliRunner

from flowyard import flow, task
from flowyard.cli.main import cli
from flowyard.concurrency import ConcurrencySlotAcquisitionError
from flowyard.concurrency import asyncio as async_concurrency
from flowyard.concurrency.sync import concurrency, rate_limit
from flowyard.errors import FlowyardError
from flowyard.sdk.logs import RUN_LOGGER_NAME


@pytest.fixture
def limit(server, api, monkeypatch):
    """``limit(name, n)`` creates a limit through the CLI (deleted after the test); the
    API is the script's."""
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    created: list[str] = []

    def create(name: str, n: int, *options: str) -> str:
        result = CliRunner().invoke(
            cli, ["--api-url", server.url, "concurrency-limit", "create", name, str(n), *options]
        )
        assert result.exit_code == 0, result.output
        created.append(name)
        return name

    yield create
    for name in created:
        api.delete_concurrency_limit(name)


def test_blocks_occupying_two_slots_of_three_never_overlap(limit):
    """Four threads each occupying 2 of 3 slots: one inside at a time, and all got in.
    Each holder waits a moment inside for another to show up; none may."""
    name = limit("gpu", 3)
    lock = threading.Lock()
    inside, peak, done = [0], [0], [0]
    overlap = threading.Event()

    def work() -> None:
        with concurrency(name, occupy=2):
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
                if inside[0] > 1:
                    overlap.set()
            overlap.wait(0.2)  # a second holder would show itself here
            with lock:
                inside[0] -= 1
                done[0] += 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert (done[0], peak[0]) == (4, 1)


def test_a_long_lease_duration_is_shortened_to_the_servers_maximum(limit, api):
    """``lease_duration=3600`` still holds the slot, on a lease of at most 300 s (renewed),
    owned by the caller (``local`` on a server without API keys)."""
    name = limit("long-lease", 1)
    with concurrency(name, lease_duration=3600):
        (held,) = api.concurrency_limit_holders(name)
        left = held.lease_expires.timestamp() - time.time()
        assert held.owner == "local" and held.slots == 1 and 200 < left <= 300
    assert api.concurrency_limit_holders(name) == []


def test_a_full_limit_times_out_and_frees_nothing_it_did_not_take(limit, api):
    name = limit("one-at-a-time", 1)
    with concurrency(name):
        with pytest.raises(TimeoutError, match="one-at-a-time"):
            with concurrency(name, timeout_seconds=0.3):
                pass
        assert api.read_concurrency_limit(name).active_slots == 1
    assert api.read_concurrency_limit(name).active_slots == 0


def test_strict_names_without_a_limit_and_occupy_beyond_the_limit_fail_clearly(limit):
    with concurrency("never-created"):  # not strict: nothing to hold
        pass
    with pytest.raises(ConcurrencySlotAcquisitionError, match="never-created"):
        with concurrency(["never-created"], strict=True):
            pass
    name = limit("small", 2)
    with pytest.raises(FlowyardError, match="cannot occupy 3 slots of 'small': its limit is 2"):
        with concurrency(name, occupy=3):
            pass


def test_a_block_and_a_tagged_task_share_the_limits_slots(limit):
    """While a block holds the only slot of a limit, a task tagged with its name waits
    (its run says so in its log), and runs once the block ends."""
    name = limit("warehouse-shared", 1)
    order: list[str] = []
    waiting = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waits for a slot" in record.getMessage():
                waiting.set()

    @task(tags=[name])
    def tagged() -> None:
        order.append("task")

    @flow
    def pipeline() -> None:
        tagged()

    watch = Watch()
    logging.getLogger(RUN_LOGGER_NAME).addHandler(watch)
    try:
        with concurrency(name):
            runner = threading.Thread(target=pipeline)
            runner.start()
            assert waiting.wait(30)
            order.append("block ends")
        runner.join(timeout=60)
    finally:
        logging.getLogger(RUN_LOGGER_NAME).removeHandler(watch)
    assert order == ["block ends", "task"]


def test_the_async_form_holds_slots_without_blocking_the_loop(limit, api):
    name = limit("async-limit", 1)

    async def main() -> list[int]:
        async with async_concurrency.concurrency(name):
            held = api.read_concurrency_limit(name).active_slots
            await asyncio.sleep(0)  # noqa: TID251 - a yield while the slot is held
        return [held, api.read_concurrency_limit(name).active_slots]

    assert asyncio.run(main()) == [1, 0]


def test_without_an_api_nothing_is_limited_unless_strict(monkeypatch):
    monkeypatch.delenv("FLOWYARD_API_URL", raising=False)
    with concurrency("anything", occupy=5):
        pass
    with pytest.raises(ConcurrencySlotAcquisitionError, match="no Flowyard API"):
        with concurrency("anything", strict=True):
            pass


def test_rate_limit_lets_a_burst_through_then_paces_calls_at_the_decay_rate(limit, api):
    """Limit 2, decaying 5 slots a second: from 3 threads making 8 calls, the first two
    pass at once, and the n-th call (n > 2) not before (n - 2) / 5 s after the first.
    (A lower bound: a loaded machine can only make calls later, never earlier.)"""
    name = limit("paced-api", 2, "--slot-decay-per-second", "5")
    passed: list[float] = []
    lock = threading.Lock()

    def caller(calls: int) -> None:
        for _ in range(calls):
            rate_limit(name)
            with lock:
                passed.append(time.monotonic())

    threads = [threading.Thread(target=caller, args=(n,)) for n in (3, 3, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(passed) == 8
    passed.sort()
    early = [n for n, at in enumerate(passed[2:], start=1) if at - passed[0] < n / 5 - 0.02]
    assert early == []
    assert api.read_concurrency_limit(name).slot_decay_per_second == 5.0


def test_rate_limit_needs_a_decaying_limit_and_times_out_clearly(limit):
    steady = limit("steady", 1)
    with pytest.raises(FlowyardError, match="'steady' has no slot decay"):
        rate_limit(steady)
    slow = limit("slow", 1, "--slot-decay-per-second", "0.01")
    rate_limit(slow)
    with pytest.raises(TimeoutError, match="'slow' within 0.3 s"):
        rate_limit(slow, timeout_seconds=0.3)
    asyncio.run(async_concurrency.rate_limit("never-created"))  # no limit: passes
    with pytest.raises(ConcurrencySlotAcquisitionError, match="never-created"):
        rate_limit("never-created", strict=True)


def test_an_inactive_limit_limits_nothing_until_enabled(limit, server, api):
    """`concurrency-limit update --disable / --enable` switch a limit off and on, keeping
    its decay; `ls` shows both."""
    name = limit("switchable", 0, "--slot-decay-per-second", "2")
    update = ["--api-url", server.url, "concurrency-limit", "update", name]
    assert CliRunner().invoke(cli, [*update, "--disable"]).exit_code == 0
    with concurrency(name, timeout_seconds=5):  # limit 0, but inactive
        pass
    listed = CliRunner().invoke(cli, ["--api-url", server.url, "concurrency-limit", "ls"])
    assert any(line.split()[:4] == [name, "0", "2", "no"] for line in listed.output.splitlines()), (
        listed.output
    )
    result = CliRunner().invoke(cli, [*update, "--enable", "--limit", "1"])
    assert result.exit_code == 0, result.output
    found = api.read_concurrency_limit(name)
    assert (found.limit, found.slot_decay_per_second, found.active) == (1, 2.0, True)
    with concurrency(name):
        with pytest.raises(TimeoutError):
            with concurrency(name, timeout_seconds=0.2):
                pass
