"""The key schema: every key of a pool carries the pool's hash tag."""

from __future__ import annotations

import pytest

from flowyard.errors import InvalidInput
from flowyard.pools import QueueConfig, keys
from flowyard.pools.queue import layout_from_config, queue_fields


def _hash_tag(key: str) -> str:
    start = key.index("{")
    return key[start + 1 : key.index("}", start)]


class TestKeys:
    """Key builders."""

    def test_every_key_carries_the_pool_hash_tag(self) -> None:
        """All keys and the wake channel of a pool share the ``{pool}`` hash tag."""
        built = [
            keys.config("p-1"),
            keys.pool_slots("p-1"),
            keys.leases("p-1"),
            keys.claims("p-1"),
            keys.ready("p-1", "q:odd{name}"),
            keys.queue_slots("p-1", "default"),
            keys.wake_channel("p-1"),
        ]
        assert all(key.startswith("fy:{p-1}:") for key in built)
        assert {_hash_tag(key) for key in built} == {"p-1"}
        assert len(set(built)) == len(built)

    def test_pool_names_with_braces_are_refused(self) -> None:
        """A brace in a pool name would break the hash tag, so it is refused."""
        with pytest.raises(InvalidInput):
            keys.config("a}b")
        with pytest.raises(InvalidInput):
            keys.ready("", "q")

    def test_wake_channel_round_trips_and_matches_the_pattern(self) -> None:
        """The listener finds the pool back from a wake channel name."""
        assert keys.pool_from_wake_channel(keys.wake_channel("etl")) == "etl"
        assert keys.pool_from_wake_channel("fy:{etl}:claims") is None
        assert keys.WAKE_PATTERN == "fy:{*}:wake"

    def test_queue_fields_round_trip_even_with_colons(self) -> None:
        """Queue config fields parse back to (queue, attribute)."""
        field = keys.queue_field("a:b", "priority")
        assert keys.parse_queue_field(field) == ("a:b", "priority")
        assert keys.parse_queue_field("paused") is None


class TestLayout:
    """The pure config-to-layout mapping."""

    def test_queues_ordered_by_priority_then_name(self) -> None:
        """Lower priority numbers come first; ties are broken by name."""
        config = {"version": "v1", "paused": "0"}
        for queue in [QueueConfig("b", 2), QueueConfig("a", 2), QueueConfig("z", 1, 3)]:
            config.update(queue_fields(queue))
        layout = layout_from_config(config)
        assert layout.version == "v1"
        assert layout.queues == ("z", "a", "b")

    def test_unlimited_queue_has_no_limit_field(self) -> None:
        """An absent limit field means unlimited."""
        assert keys.queue_field("q", "limit") not in queue_fields(QueueConfig("q"))
        with pytest.raises(ValueError):
            queue_fields(QueueConfig("q", concurrency_limit=-1))
