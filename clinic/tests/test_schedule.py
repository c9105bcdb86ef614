"""Pure slot arithmetic of ``clinic.schedule``: no database, no clock."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from clinic import schedule
from clinic.schedule import Interval

IST = ZoneInfo("Asia/Kolkata")
DAY = date(2026, 1, 25)  # a Sunday
MIN30 = timedelta(minutes=30)
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def ist(clock: str, day: date = DAY) -> datetime:
    hour, minute = map(int, clock.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=IST)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def periods(*texts: str, day: date = DAY):
    return schedule.open_periods(schedule.parse_intervals(list(texts)), day, IST)


def starts(slots) -> list[str]:
    return [start.astimezone(IST).strftime("%H:%M") for start, _ in slots]


# --- Parsing -------------------------------------------------------------------------


def test_parse_interval_reads_clock_times():
    assert schedule.parse_interval("09:00-13:00") == Interval(time(9), time(13))
    assert schedule.parse_interval(" 14:30-18:15 ") == Interval(time(14, 30), time(18, 15))


def test_parse_interval_keeps_24_00_as_end_of_day():
    assert schedule.parse_interval("18:00-24:00") == Interval(time(18), time.max)


@pytest.mark.parametrize(
    "text",
    [
        "9:00-13:00",  # hours need two digits
        "09:00-13",
        "09:00 - 13:00",
        "25:00-26:00",
        "09:60-10:00",
        "24:00-24:00",  # 24:00 is only an end
        "23:00-24:30",  # past midnight
        "13:00-09:00",  # ends before it starts
        "10:00-10:00",  # empty
        "",
    ],
)
def test_parse_interval_refuses_malformed_text(text):
    with pytest.raises(ValueError):
        schedule.parse_interval(text)


def test_parse_intervals_sorts_and_allows_touching_intervals():
    intervals = schedule.parse_intervals(["14:00-18:00", "09:00-13:00", "13:00-14:00"])
    assert [schedule.format_interval(i) for i in intervals] == [
        "09:00-13:00",
        "13:00-14:00",
        "14:00-18:00",
    ]


def test_parse_intervals_refuses_overlap_within_a_day():
    with pytest.raises(ValueError, match="overlap"):
        schedule.parse_intervals(["09:00-13:00", "12:59-14:00"])


@pytest.mark.parametrize("value", ["09:00-13:00", None, {"a": 1}, 9])
def test_parse_intervals_needs_a_list(value):
    with pytest.raises(ValueError):
        schedule.parse_intervals(value)


def test_format_interval_round_trips_24_00():
    assert schedule.format_interval(schedule.parse_interval("18:00-24:00")) == "18:00-24:00"
    assert schedule.format_interval(Interval(time(9, 5), time(9, 50))) == "09:05-09:50"


def test_validate_working_hours_accepts_the_documented_shape():
    schedule.validate_working_hours(
        {"monday": ["09:00-13:00", "14:00-18:00"], "wednesday": ["09:00-13:00"], "sunday": []}
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["09:00-13:00"], "object keyed by weekday"),
        ({"mon": ["09:00-13:00"]}, "Unknown weekday"),
        ({"monday": ["09:00-08:00"]}, "monday"),
        ({"tuesday": "09:00-13:00"}, "tuesday"),
    ],
)
def test_validate_working_hours_refuses_bad_shapes(value, message):
    with pytest.raises(ValidationError, match=message):
        schedule.validate_working_hours(value)


def test_normalize_working_hours_names_every_weekday_in_order():
    normalized = schedule.normalize_working_hours({"friday": ["14:00-18:00", "09:00-13:00"]})
    assert list(normalized) == list(schedule.WEEKDAYS)
    assert normalized["friday"] == ["09:00-13:00", "14:00-18:00"]
    assert normalized["monday"] == []


# --- Local days and instants ----------------------------------------------------------


def test_at_turns_24_00_into_next_midnight():
    assert schedule.at(DAY, time.max, IST) == datetime(2026, 1, 26, 0, 0, tzinfo=IST)
    assert schedule.at(DAY, time(9), IST) == datetime(2026, 1, 25, 9, 0, tzinfo=IST)


def test_day_bounds_are_the_local_day_in_utc():
    start, end = schedule.day_bounds(DAY, IST)
    assert start == utc("2026-01-24T18:30:00Z")
    assert end == utc("2026-01-25T18:30:00Z")
    assert start.tzinfo is UTC and end.tzinfo is UTC


def test_open_periods_are_local_wall_clock_times():
    (morning, afternoon) = periods("09:00-13:00", "14:00-18:00")
    assert morning == (utc("2026-01-25T03:30:00Z"), utc("2026-01-25T07:30:00Z"))
    assert afternoon == (utc("2026-01-25T08:30:00Z"), utc("2026-01-25T12:30:00Z"))


@pytest.mark.parametrize(
    ("start", "minutes", "fits"),
    [
        ("09:00", 30, True),  # starts at opening
        ("12:30", 30, True),  # ends exactly at closing
        ("12:31", 30, False),  # one minute over
        ("08:59", 30, False),  # one minute early
        ("12:45", 30, False),  # into the lunch break
        ("12:30", 60, False),  # spans the break into the afternoon
        ("13:15", 15, False),  # inside the break
        ("17:00", 60, True),
        ("17:01", 60, False),
    ],
)
def test_fits_within_one_period(start, minutes, fits):
    begin = ist(start)
    hours = periods("09:00-13:00", "14:00-18:00")
    assert schedule.fits_within(begin, begin + timedelta(minutes=minutes), hours) is fits


# --- Free slots ------------------------------------------------------------------------


def test_free_slots_grid_from_each_interval_start():
    slots = schedule.free_slots(periods("09:00-11:00", "14:10-15:10"), [], MIN30, LONG_AGO)
    assert starts(slots) == ["09:00", "09:30", "10:00", "10:30", "14:10", "14:40"]
    assert all(end - start == MIN30 for start, end in slots)


def test_free_slots_are_in_utc():
    (first, *_) = schedule.free_slots(periods("09:00-13:00"), [], MIN30, LONG_AGO)
    assert first == (utc("2026-01-25T03:30:00Z"), utc("2026-01-25T04:00:00Z"))
    assert first[0].tzinfo is UTC and first[1].tzinfo is UTC


def test_45_minute_slots_do_not_cross_an_interval_end():
    slots = schedule.free_slots(
        periods("09:00-13:00", "14:00-18:00"), [], timedelta(minutes=45), LONG_AGO
    )
    assert starts(slots) == [
        *["09:00", "09:45", "10:30", "11:15", "12:00"],  # 12:45 would end 13:30
        *["14:00", "14:45", "15:30", "16:15", "17:00"],  # 17:45 would end 18:30
    ]
    morning_end = ist("13:00")
    assert all(not (start < morning_end < end) for start, end in slots)


def test_busy_time_removes_every_slot_it_touches():
    busy = [(ist("09:15"), ist("09:45"))]  # off the grid: blocks 09:00 and 09:30
    slots = schedule.free_slots(periods("09:00-11:00"), busy, MIN30, LONG_AGO)
    assert starts(slots) == ["10:00", "10:30"]


def test_back_to_back_busy_time_leaves_neighbours_free():
    busy = [(ist("09:30"), ist("10:00"))]
    slots = schedule.free_slots(periods("09:00-11:00"), busy, MIN30, LONG_AGO)
    assert starts(slots) == ["09:00", "10:00", "10:30"]


def test_busy_time_in_another_timezone_is_compared_as_an_instant():
    busy = [(utc("2026-01-25T04:00:00Z"), utc("2026-01-25T04:30:00Z"))]  # 09:30-10:00 IST
    slots = schedule.free_slots(periods("09:00-11:00"), busy, MIN30, LONG_AGO)
    assert starts(slots) == ["09:00", "10:00", "10:30"]


def test_a_long_booking_around_a_short_one_blocks_all_it_covers():
    # Sorted by start, the short one ends first: the long one still blocks 10:00.
    busy = [(ist("09:00"), ist("10:30")), (ist("09:15"), ist("09:45"))]
    slots = schedule.free_slots(periods("09:00-11:00"), busy, MIN30, LONG_AGO)
    assert starts(slots) == ["10:30"]


def test_slots_keep_their_length_when_the_clocks_change_during_opening_hours():
    new_york = ZoneInfo("America/New_York")  # 2026-03-08 02:00 EST -> 03:00 EDT
    day = date(2026, 3, 8)
    hours = schedule.open_periods([Interval(time(1, 0), time(4, 0))], day, new_york)
    slots = schedule.free_slots(hours, [], MIN30, LONG_AGO)
    # 01:00 EST to 04:00 EDT is two hours: four half-hour slots, each 30 minutes.
    assert [start for start, _ in slots] == [
        utc(f"2026-03-08T{clock}:00Z") for clock in ("06:00", "06:30", "07:00", "07:30")
    ]
    assert all(end - start == MIN30 for start, end in slots)


def test_slots_that_begin_before_now_are_not_offered():
    hours = periods("09:00-11:00")
    assert starts(schedule.free_slots(hours, [], MIN30, ist("09:40"))) == ["10:00", "10:30"]
    # A slot starting exactly now is not offered: booking needs a start in the future.
    assert starts(schedule.free_slots(hours, [], MIN30, ist("10:00"))) == ["10:30"]
    assert schedule.free_slots(hours, [], MIN30, ist("10:31")) == []


def test_interval_until_midnight_offers_its_last_slot():
    slots = schedule.free_slots(periods("23:00-24:00"), [], MIN30, LONG_AGO)
    assert starts(slots) == ["23:00", "23:30"]
    assert slots[-1][1] == datetime(2026, 1, 26, 0, 0, tzinfo=IST)


def test_no_periods_no_slots():
    assert schedule.free_slots([], [], MIN30, LONG_AGO) == []
