"""The schedule options of ``flowyard deploy`` and ``deployment schedule create``."""

from __future__ import annotations

import pytest

from flowyard.cli.schedules import schedule_from_options
from flowyard.errors import InvalidInput


def test_no_option_means_no_schedule():
    """Without --cron/--interval/--rrule the deployment's schedules are left alone."""
    assert schedule_from_options(None, None, None, "UTC") is None


def test_interval_and_zone_become_one_schedule():
    """--interval 3600 --timezone Europe/Berlin is one interval schedule in that zone."""
    schedule = schedule_from_options(None, 3600.0, None, "Europe/Berlin")
    assert schedule is not None
    assert (schedule.kind, schedule.expression, schedule.timezone) == (
        "interval",
        "3600",
        "Europe/Berlin",
    )


def test_two_kinds_are_refused():
    """Giving both --cron and --rrule is an error."""
    with pytest.raises(InvalidInput, match="at most one"):
        schedule_from_options("0 * * * *", None, "FREQ=DAILY", "UTC")
