"""Schedule math: cron, interval and RRule due times, across DST changes; no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from flowyard.errors import InvalidInput
from flowyard.orchestrator.schedules import ScheduleSpec, interval_seconds, next_times, validate

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def local(spec: ScheduleSpec, after: datetime, count: int) -> list[str]:
    tz = ZoneInfo(spec.timezone)
    times = next_times(spec, after, count=count)
    return [t.astimezone(tz).strftime("%m-%d %H:%M%z") for t in times]


class TestCron:
    def test_times_are_strictly_after_now_and_in_utc(self):
        """An hourly cron gives the next hours, never ``now`` itself, as UTC instants."""
        now = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
        times = next_times(ScheduleSpec("cron", "0 * * * *"), now, count=2)
        assert times == [datetime(2026, 5, 1, 11, tzinfo=UTC), datetime(2026, 5, 1, 12, tzinfo=UTC)]
        assert all(t.tzinfo is UTC for t in times)

    def test_skipped_hour_moves_forward(self):
        """On Berlin's spring-forward day, 02:30 does not exist and runs once at 03:30."""
        spec = ScheduleSpec("cron", "30 2 * * *", "Europe/Berlin")
        after = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
        assert local(spec, after, 3) == [
            "03-29 03:30+0200",
            "03-30 02:30+0200",
            "03-31 02:30+0200",
        ]

    def test_every_15_minutes_across_spring_forward(self):
        """``*/15`` skips the missing hour without running a slot twice."""
        spec = ScheduleSpec("cron", "*/15 * * * *", "Europe/Berlin")
        after = datetime(2026, 3, 29, 1, 40, tzinfo=BERLIN)
        assert local(spec, after, 3) == ["03-29 01:45+0100", "03-29 03:00+0200", "03-29 03:15+0200"]

    def test_repeated_hour_runs_once(self):
        """On Berlin's fall-back day, 02:30 occurs twice and runs once, the first time."""
        spec = ScheduleSpec("cron", "30 2 * * *", "Europe/Berlin")
        after = datetime(2026, 10, 24, 12, tzinfo=BERLIN)
        assert local(spec, after, 2) == ["10-25 02:30+0200", "10-26 02:30+0100"]

    def test_hourly_across_fall_back(self):
        """An hourly cron fires at 02:00 summer time, then 03:00 winter time."""
        spec = ScheduleSpec("cron", "0 * * * *", "Europe/Berlin")
        after = datetime(2026, 10, 25, 1, 30, tzinfo=BERLIN)
        assert local(spec, after, 2) == ["10-25 02:00+0200", "10-25 03:00+0100"]

    def test_new_york_keeps_local_time_across_spring_forward(self):
        """A 09:00 New York cron stays 09:00 local when the offset changes."""
        spec = ScheduleSpec("cron", "0 9 * * *", "America/New_York")
        after = datetime(2026, 3, 7, 12, tzinfo=NEW_YORK)
        assert local(spec, after, 2) == ["03-08 09:00-0400", "03-09 09:00-0400"]

    def test_until_bounds_the_horizon(self):
        """Times after ``until`` are left out."""
        now = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
        until = datetime(2026, 5, 1, 11, 30, tzinfo=UTC)
        times = next_times(ScheduleSpec("cron", "0 * * * *"), now, count=5, until=until)
        assert times == [datetime(2026, 5, 1, 11, tzinfo=UTC)]


class TestInterval:
    def test_anchored_steps(self):
        """Interval times are the anchor plus whole steps, strictly after now."""
        anchor = datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)
        spec = ScheduleSpec("interval", "10", anchor=anchor)
        now = datetime(2026, 1, 1, 0, 0, 13, tzinfo=UTC)
        assert next_times(spec, now, count=2) == [
            datetime(2026, 1, 1, 0, 0, 23, tzinfo=UTC),
            datetime(2026, 1, 1, 0, 0, 33, tzinfo=UTC),
        ]

    def test_daily_interval_keeps_local_time(self):
        """A one-day interval anchored at 09:00 Berlin stays 09:00 across spring forward."""
        spec = ScheduleSpec("interval", "86400", "Europe/Berlin", anchor=datetime(2026, 3, 1, 9))
        after = datetime(2026, 3, 27, 10, tzinfo=BERLIN)
        assert local(spec, after, 3) == ["03-28 09:00+0100", "03-29 09:00+0200", "03-30 09:00+0200"]

    def test_hourly_interval_is_an_exact_duration(self):
        """A sub-day interval counts real seconds, so it does not jump at DST."""
        spec = ScheduleSpec("interval", "3600", "Europe/Berlin", anchor=datetime(2026, 3, 29))
        after = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)
        assert local(spec, after, 2) == ["03-29 03:00+0200", "03-29 04:00+0200"]


class TestRRule:
    def test_byday_in_a_zone(self):
        """BYDAY/BYHOUR are read in the schedule's zone."""
        spec = ScheduleSpec("rrule", "FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=9;BYMINUTE=0", "Europe/Berlin")
        after = datetime(2026, 3, 27, 10, tzinfo=BERLIN)
        assert local(spec, after, 3) == ["03-30 09:00+0200", "04-03 09:00+0200", "04-06 09:00+0200"]

    def test_bymonthday_and_count(self):
        """COUNT ends the rule: fewer times than asked come back."""
        spec = ScheduleSpec(
            "rrule", "DTSTART:20260101T000000\nRRULE:FREQ=MONTHLY;BYMONTHDAY=15;COUNT=4"
        )
        after = datetime(2026, 2, 1, tzinfo=UTC)
        assert local(spec, after, 6) == ["02-15 00:00+0000", "03-15 00:00+0000", "04-15 00:00+0000"]

    def test_until(self):
        """UNTIL ends the rule."""
        spec = ScheduleSpec(
            "rrule",
            "DTSTART:20260101T000000Z\nRRULE:FREQ=MONTHLY;BYMONTHDAY=15;UNTIL=20260316T000000Z",
        )
        after = datetime(2026, 2, 1, tzinfo=UTC)
        assert local(spec, after, 6) == ["02-15 00:00+0000", "03-15 00:00+0000"]

    def test_skipped_hour_moves_forward(self):
        """A daily 02:30 RRule behaves like the cron on the spring-forward day."""
        spec = ScheduleSpec("rrule", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30;BYSECOND=0", "Europe/Berlin")
        after = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
        assert local(spec, after, 2) == ["03-29 03:30+0200", "03-30 02:30+0200"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (ScheduleSpec("cron", "61 * * * *"), "cron"),
        (ScheduleSpec("cron", "0 0 30 2 *"), "cron"),
        (ScheduleSpec("interval", "-3"), "interval"),
        (ScheduleSpec("interval", "soon"), "interval"),
        (ScheduleSpec("rrule", "FREQ=SOMETIMES"), "rrule"),
        (ScheduleSpec("cron", "* * * * *", "Mars/Olympus"), "timezone"),
        (ScheduleSpec("weekly", "x"), "kind"),
    ],
)
def test_bad_input_names_the_field(spec, field):
    """Invalid expressions, zones and kinds raise InvalidInput naming the field and value."""
    with pytest.raises(InvalidInput, match=f"^{field}: "):
        next_times(spec, datetime(2026, 1, 1, tzinfo=UTC), count=1)


def test_valid_specs_pass_validation():
    """Each kind accepts a well-formed expression."""
    for spec in (
        ScheduleSpec("cron", "0 9 * * 1-5", "Europe/Berlin"),
        ScheduleSpec("interval", "2.5"),
        ScheduleSpec("rrule", "FREQ=HOURLY;BYMINUTE=0"),
    ):
        validate(spec)


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("3600", 3600), ("1h30m", 5400), ("2d", 172_800), ("PT1H30M", 5400), ("P1DT2H", 93_600)],
)
def test_intervals_are_seconds_or_durations(expression, seconds):
    """An interval is a number of seconds, a duration like 1h30m, or an ISO 8601 duration."""
    assert interval_seconds(expression) == seconds


@pytest.mark.parametrize("expression", ["0", "-5", "1x", "P1M", "P1Y", "PT", "soon"])
def test_bad_intervals_are_refused_naming_the_value(expression):
    """Months and years vary in length, so they are refused like any unreadable interval."""
    with pytest.raises(InvalidInput, match=f"interval: .*{expression!r}"):
        interval_seconds(expression)
