"""A schedule named by a prefix of its id: the one match, or a clear error; no I/O."""

from __future__ import annotations

import pytest

from flowyard.errors import Conflict, NotFound
from flowyard.orchestrator.api.schedules import by_prefix
from flowyard.store import models as m

SCHEDULES = [
    m.DeploymentSchedule(id="abcd1234-0000-4000-8000-000000000001"),
    m.DeploymentSchedule(id="abcd5678-0000-4000-8000-000000000002"),
]


def test_a_unique_prefix_names_its_schedule():
    """Eight characters, as listings show them, pick one schedule."""
    assert by_prefix(SCHEDULES, "abcd5678", "f/d") is SCHEDULES[1]


def test_an_ambiguous_prefix_is_a_conflict_listing_the_matches():
    """ "abcd" fits both: 409, naming both ids, asking for more characters."""
    with pytest.raises(Conflict, match="ambiguous") as caught:
        by_prefix(SCHEDULES, "abcd", "f/d")
    assert all(sch.id in str(caught.value) for sch in SCHEDULES)


@pytest.mark.parametrize("prefix", ["abc", "ffff", ""])
def test_too_short_or_unknown_prefixes_are_not_found(prefix):
    """Under four characters, or no match: 404 naming the prefix and the deployment."""
    with pytest.raises(NotFound, match="of deployment 'f/d' not found"):
        by_prefix(SCHEDULES, prefix, "f/d")
