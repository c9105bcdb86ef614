"""Working hours and slot arithmetic: pure functions, no database.

Hours are written as the API shows them (``"09:00-13:00"``) and mean wall-clock
time in the clinic's time zone; everything returned is an aware datetime.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db.models import Q

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_INTERVAL = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True)
class Interval:
    start: time
    end: time  # time(0, 0) is never an end; 24:00 is kept as time.max


def parse_interval(text: str) -> Interval:
    match = _INTERVAL.match(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not an interval like 09:00-13:00")
    start = time(int(match[1]), int(match[2]))
    end_hour, end_minute = int(match[3]), int(match[4])
    if end_hour == 24 and end_minute:
        raise ValueError(f"{text!r} ends after midnight")
    end = time.max if end_hour == 24 else time(end_hour, end_minute)
    if end <= start:
        raise ValueError(f"{text!r} ends before it starts")
    return Interval(start, end)


def parse_intervals(values: Iterable[str]) -> list[Interval]:
    if not isinstance(values, list | tuple):
        raise ValueError('hours must be a list like ["09:00-13:00", "14:00-18:00"]')
    intervals = sorted((parse_interval(v) for v in values), key=lambda i: i.start)
    for earlier, later in pairwise(intervals):
        if later.start < earlier.end:
            raise ValueError("intervals of one day must not overlap")
    return intervals


def validate_working_hours(value) -> None:
    """Model/serializer validator for ``{"monday": ["09:00-13:00"], ...}``."""
    if not isinstance(value, dict):
        raise ValidationError("Working hours must be an object keyed by weekday.")
    unknown = sorted(set(value) - set(WEEKDAYS))
    if unknown:
        raise ValidationError(f"Unknown weekday(s): {', '.join(unknown)}.")
    for day, hours in value.items():
        try:
            parse_intervals(hours)
        except ValueError as exc:
            raise ValidationError(f"{day}: {exc}") from None


def normalize_working_hours(value: dict) -> dict[str, list[str]]:
    """Every weekday present, intervals sorted, in the API's spelling."""
    normalized = {}
    for day in WEEKDAYS:
        intervals = parse_intervals(value.get(day, []))
        normalized[day] = [format_interval(i) for i in intervals]
    return normalized


def format_interval(interval: Interval) -> str:
    end = "24:00" if interval.end == time.max else interval.end.strftime("%H:%M")
    return f"{interval.start.strftime('%H:%M')}-{end}"


def at(day: date, moment: time, tz: ZoneInfo) -> datetime:
    if moment == time.max:
        return datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return datetime.combine(day, moment, tzinfo=tz)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where ``day`` begins and ends in the clinic's time zone."""
    return at(day, time.min, tz).astimezone(UTC), at(day, time.max, tz).astimezone(UTC)


def local_day_range(
    start: date | None, end: date | None, tz: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    """``(from, before)`` instants of the whole local days ``start`` to ``end`` inclusive
    (None where that side is open)."""
    return (
        day_bounds(start, tz)[0] if start is not None else None,
        day_bounds(end, tz)[1] if end is not None else None,
    )


def local_days(field: str, start: date | None, end: date | None, tz: ZoneInfo) -> Q:
    """Filter on an instant ``field`` for whole local days, ``start`` to ``end`` inclusive."""
    starts_from, before = local_day_range(start, end, tz)
    condition = Q()
    if starts_from is not None:
        condition &= Q(**{f"{field}__gte": starts_from})
    if before is not None:
        condition &= Q(**{f"{field}__lt": before})
    return condition


def open_periods(
    intervals: Sequence[Interval], day: date, tz: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    return [(at(day, i.start, tz), at(day, i.end, tz)) for i in intervals]


def fits_within(
    start: datetime, end: datetime, periods: Sequence[tuple[datetime, datetime]]
) -> bool:
    return any(open_start <= start and end <= open_end for open_start, open_end in periods)


def free_slots(
    periods: Sequence[tuple[datetime, datetime]],
    busy: Sequence[tuple[datetime, datetime]],
    duration: timedelta,
    not_before: datetime,
) -> list[tuple[datetime, datetime]]:
    """Slots of ``duration`` on a grid from each period's start, clear of ``busy``.

    ``busy`` must be sorted by start. Slots that begin before ``not_before``
    (now) are not offered: booking needs a start strictly in the future.

    One pass over slots and bookings together, in UTC: a week's schedule asks this
    for seven days of ~10 bookings each, and comparing every slot with every booking
    across time zones (each comparison converting both sides) was a fifth of its CPU.
    Stepping in UTC also keeps every slot exactly ``duration`` long on a day when the
    clocks change inside opening hours.
    """
    merged = _merged(busy)
    slots = []
    for open_start, open_end in periods:
        slot_start, open_end = open_start.astimezone(UTC), open_end.astimezone(UTC)
        index = 0  # the first merged booking that may still meet this or a later slot
        while (slot_end := slot_start + duration) <= open_end:
            while index < len(merged) and merged[index][1] <= slot_start:
                index += 1
            clear = index == len(merged) or merged[index][0] >= slot_end
            if clear and slot_start > not_before:
                slots.append((slot_start, slot_end))
            slot_start = slot_end
    return slots


def _merged(busy: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """``busy`` (sorted by start) in UTC, overlapping or touching periods joined."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in busy:
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
