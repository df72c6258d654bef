"""Catch-up policies, pure: which missed slots are written, which late runs run or are skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flowyard.orchestrator.catch_up import DueRun, Verdict, late_verdict, missed_slots

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SLOTS = [T0 + timedelta(minutes=10 * i) for i in range(1, 10)]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("all", SLOTS), ("latest", SLOTS[-1:]), ("skip", [])],
)
def test_missed_slots_per_policy(policy, expected):
    """All missed slots, only the most recent one, or none."""
    assert missed_slots(SLOTS, policy, cap=100) == expected


def test_missed_slots_are_capped_keeping_the_most_recent():
    """Under ``all``, a long outage writes at most ``cap`` slots: the latest ones."""
    assert missed_slots(SLOTS, "all", cap=3) == SLOTS[-3:]


def _due(run_id: str, minutes: int, policy: str, *, late=True, dep="d1", scheduled=True):
    when = T0 + timedelta(minutes=minutes)
    return DueRun(run_id, dep, scheduled, when, policy, late)


def test_all_names_every_late_run_late():
    """Under ``all`` every late run is kept and named Late; runs not yet late are left."""
    verdict = late_verdict([_due("a", 1, "all"), _due("b", 2, "all", late=False)])
    assert verdict.mark_late == ["a"] and verdict.skip == []


def test_skip_skips_every_late_scheduled_run_but_not_manual_ones():
    """``skip`` skips late runs of schedules; a manual run is only ever named Late."""
    verdict = late_verdict([_due("a", 1, "skip"), _due("m", 2, "skip", scheduled=False)])
    assert verdict.skip == ["a"] and verdict.mark_late == ["m"]


def test_latest_keeps_only_the_newest_due_run_of_each_deployment():
    """``latest`` skips late runs older than the deployment's newest due run, late or not."""
    verdict = late_verdict(
        [
            _due("old", 1, "latest"),
            _due("older", 0, "latest"),
            _due("newest", 5, "latest", late=False),
            _due("other", 2, "latest", dep="d2"),
        ]
    )
    assert sorted(verdict.skip) == ["old", "older"]
    assert verdict.mark_late == ["other"]


def test_a_run_already_named_late_is_not_named_again():
    """Late is written once; a later pass may still skip it under ``latest``."""
    named = DueRun("a", "d1", True, T0, "latest", late=True, named_late=True)
    assert late_verdict([named]) == Verdict(mark_late=[], skip=[])
    newer = _due("b", 5, "latest")
    assert late_verdict([named, newer]).skip == ["a"]
