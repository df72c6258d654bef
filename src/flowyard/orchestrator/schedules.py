"""Schedule math: when a cron, interval or RRule schedule is next due. Pure; no I/O, no clock.

Every function takes the current time as ``after`` and returns timezone-aware UTC times.

Time zones and daylight saving time. Cron and RRule expressions are evaluated in the
schedule's local wall time (an IANA zone, UTC by default), then each wall time is turned
into an instant:

- **Skipped hour** (spring forward, e.g. Europe/Berlin 2026-03-29 02:00 → 03:00): a wall
  time that does not exist is moved forward by the length of the gap, so ``30 2 * * *``
  runs once that day, at 03:30 local. A moved time that lands on another due time is kept
  once (``*/15`` fires at 01:45, then 03:00, 03:15, …).
- **Repeated hour** (fall back, e.g. Europe/Berlin 2026-10-25 03:00 → 02:00): a wall time
  that occurs twice runs once, at its first occurrence (summer time). ``30 2 * * *`` runs
  once; an hourly ``0 * * * *`` fires at 02:00 summer time and next at 03:00 winter time.

Intervals are exact durations counted from the anchor (default 2020-01-01 00:00 in the
schedule's zone), except whole-day multiples, which are stepped in wall time so that a
daily interval anchored at 09:00 stays at 09:00 local across DST changes.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from dateutil.rrule import rrule, rruleset, rrulestr

from flowyard.errors import InvalidInput

Kind = Literal["cron", "interval", "rrule"]
KINDS: tuple[str, ...] = ("cron", "interval", "rrule")
DEFAULT_ANCHOR = datetime(2020, 1, 1)
DAY = 86_400
# A DST shift moves a wall time by at most this much; used to know when to stop looking.
MAX_SHIFT = timedelta(hours=3)


@dataclass(frozen=True)
class ScheduleSpec:
    """What a schedule says, independent of how it is stored."""

    kind: str
    expression: str
    timezone: str = "UTC"
    anchor: datetime | None = None


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; an unknown one raises ``InvalidInput``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"timezone: unknown IANA time zone {name!r}") from exc


@functools.lru_cache(maxsize=4096)
def validate(spec: ScheduleSpec) -> None:
    """Raise ``InvalidInput`` naming the field and value when ``spec`` cannot be evaluated.

    Cached: the scheduler asks again for every schedule on every pass (an invalid spec
    raises, which is not cached, so it is checked again each time)."""
    tz = zone(spec.timezone)
    if spec.kind == "cron":
        if not croniter.is_valid(spec.expression):
            raise InvalidInput(f"cron: invalid cron expression {spec.expression!r}")
    elif spec.kind == "interval":
        interval_seconds(spec.expression)
    elif spec.kind == "rrule":
        _rrule(spec.expression, _local_anchor(spec, tz).replace(tzinfo=tz))
    else:
        raise InvalidInput(f"kind: unknown schedule kind {spec.kind!r}; use one of {KINDS}")


_DURATION = re.compile(
    r"^(?:(?P<d>\d+(?:\.\d+)?)d)?(?:(?P<h>\d+(?:\.\d+)?)h)?"
    r"(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$"
)
_UNIT_SECONDS = {"d": DAY, "h": 3600, "m": 60, "s": 1}


def interval_seconds(expression: str) -> float:
    """The interval written in ``expression``: seconds (``"3600"``), a duration (``"1h30m"``,
    ``"2d"``) or an ISO 8601 duration (``"PT1H30M"``, ``"P1D"``); must be positive."""
    text = expression.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = _duration(text)
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInput(
            f"interval: must be a positive number of seconds or a duration like 1h30m, "
            f"not {expression!r}"
        )
    return seconds


def _duration(text: str) -> float:
    """Seconds in ``1h30m`` or ``PT1H30M`` / ``P1DT2H`` (no years or months: they vary);
    NaN when it is neither."""
    lowered = text.lower()
    if lowered.startswith("p"):
        days, _, clock = lowered[1:].partition("t")
        if (days and not days.endswith("d")) or (clock == "" and "t" in lowered[1:]):
            return math.nan
        lowered = days + clock
    match = _DURATION.fullmatch(lowered) if lowered else None
    if match is None or not any(match.groupdict().values()):
        return math.nan
    return sum(float(v) * _UNIT_SECONDS[unit] for unit, v in match.groupdict().items() if v)


def next_times(
    spec: ScheduleSpec, after: datetime, *, count: int, until: datetime | None = None
) -> list[datetime]:
    """Up to ``count`` due times strictly after ``after`` (and not after ``until``), in UTC."""
    validate(spec)
    tz = zone(spec.timezone)
    end = until or datetime.max.replace(tzinfo=UTC) - MAX_SHIFT * 2
    if spec.kind == "cron":
        found = _cron_times(spec.expression, tz, after, count, end)
    elif spec.kind == "interval":
        found = _interval_times(spec, tz, after, count, end)
    else:
        found = _rrule_times(spec, tz, after, count, end)
    return [t for t in found if t <= end]


def _instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time: gaps move forward, repeats take the first."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _local_anchor(spec: ScheduleSpec, tz: ZoneInfo) -> datetime:
    if spec.anchor is None:
        return DEFAULT_ANCHOR
    if spec.anchor.tzinfo is None:
        return spec.anchor
    return spec.anchor.astimezone(tz).replace(tzinfo=None)


def _cron_times(
    expression: str, tz: ZoneInfo, after: datetime, count: int, until: datetime
) -> list[datetime]:
    """Wall times come in order, their instants nearly so: only near a DST change can a wall
    time's instant move, by at most ``MAX_SHIFT``. There, look that much further back and
    ahead; elsewhere stop at once past ``until`` or past the ``count``-th time found."""
    start = after.astimezone(tz).replace(tzinfo=None) - _slack(tz, after)
    walls = _walls(expression, start)
    found: set[datetime] = set()
    stop = until + _slack(tz, until)
    while True:
        try:
            wall = walls.get_next(datetime)
        except CroniterBadDateError as exc:
            raise InvalidInput(f"cron: {expression!r} never matches a date") from exc
        instant = _instant(wall, tz)
        if instant > stop:
            return sorted(found)[:count]
        if instant > after:
            found.add(instant)
            if len(found) == count:
                kth = max(found)  # the count-th earliest so far; it can only go down
                stop = min(stop, kth + _slack(tz, kth))


_iterators = threading.local()


def _walls(expression: str, start: datetime) -> croniter:
    """A croniter at ``start``; parsing an expression costs more than the times it gives, so
    each thread keeps one iterator per expression and moves it."""
    cache: dict[str, croniter] = _iterators.__dict__.setdefault("by_expression", {})
    walls = cache.get(expression)
    if walls is None:
        if len(cache) > 1000:
            cache.clear()
        walls = cache[expression] = croniter(expression, start, ret_type=datetime)
    else:
        walls.set_current(start, force=True)
    return walls


def _slack(tz: ZoneInfo, at: datetime) -> timedelta:
    """``MAX_SHIFT`` when a UTC offset change of ``tz`` lies within it of ``at``, else zero."""
    if at.year >= 9999:
        return timedelta(0)
    before, after = (at - MAX_SHIFT).astimezone(tz), (at + MAX_SHIFT).astimezone(tz)
    return timedelta(0) if before.utcoffset() == after.utcoffset() else MAX_SHIFT


def _interval_times(
    spec: ScheduleSpec, tz: ZoneInfo, after: datetime, count: int, until: datetime
) -> list[datetime]:
    seconds = interval_seconds(spec.expression)
    anchor_wall = _local_anchor(spec, tz)
    if seconds % DAY == 0:
        step = timedelta(seconds=seconds)
        after_wall = after.astimezone(tz).replace(tzinfo=None)
        k = max(0, math.floor((after_wall - anchor_wall) / step) - 1)
        found: list[datetime] = []
        while len(found) < count:
            instant = _instant(anchor_wall + k * step, tz)
            if instant > until:
                break
            if instant > after:
                found.append(instant)
            k += 1
        return found
    anchor = _instant(anchor_wall, tz)
    k = max(0, math.floor((after - anchor).total_seconds() / seconds) + 1)
    if until < after:
        return []
    count = min(count, math.floor((until - after).total_seconds() / seconds) + 2)
    times = (anchor + timedelta(seconds=seconds * (k + i)) for i in range(count + 1))
    return [t for t in times if t > after][:count]


def _rrule(expression: str, dtstart: datetime) -> rrule | rruleset:
    try:
        return rrulestr(expression, dtstart=dtstart, forceset=True)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"rrule: invalid RRule {expression!r}: {exc}") from exc


def _rrule_times(
    spec: ScheduleSpec, tz: ZoneInfo, after: datetime, count: int, until: datetime
) -> list[datetime]:
    rule = _rrule(spec.expression, _local_anchor(spec, tz).replace(tzinfo=tz))
    first = next(iter(rule), None)
    if first is None:
        return []
    start = after.astimezone(tz) - MAX_SHIFT
    if first.tzinfo is None:  # a DTSTART without zone in the string: wall time in ``tz``
        start = start.replace(tzinfo=None)
    found: list[datetime] = []
    for occurrence in rule.xafter(start, inc=False):
        instant = _rrule_instant(occurrence, tz)
        if instant - MAX_SHIFT > until or (instant - MAX_SHIFT > after and len(found) >= count):
            break
        if instant > after and instant not in found:
            found.append(instant)
    return sorted(found)[:count]


def _rrule_instant(occurrence: datetime, tz: ZoneInfo) -> datetime:
    """Occurrences in the schedule's zone (or zoneless) are wall times; others are instants."""
    if occurrence.tzinfo is None or occurrence.tzinfo is tz:
        return _instant(occurrence.replace(tzinfo=None), tz)
    return occurrence.astimezone(UTC)
