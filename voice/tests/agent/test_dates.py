"""Spoken dates and times, relative to a fixed now (Wednesday 15 Jan 2031, 09:00 IST)."""

from datetime import date, time

import pytest

from voice.agent.dates import When, parse_when, resolve
from voice.tests.agent.conftest import IST, NOW

WED, THU, FRI, SAT = date(2031, 1, 15), date(2031, 1, 16), date(2031, 1, 17), date(2031, 1, 18)
MON = date(2031, 1, 20)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kal", When(day=THU)),
        ("कल", When(day=THU)),
        ("tomorrow", When(day=THU)),
        ("parso", When(day=FRI)),
        ("परसों", When(day=FRI)),
        ("day after tomorrow", When(day=FRI)),
        ("aaj", When(day=WED)),
        ("today", When(day=WED)),
        ("next Monday", When(day=MON)),
        ("somvar", When(day=MON)),
        ("सोमवार को", When(day=MON)),
        ("agle somvar", When(day=MON)),
        ("on friday", When(day=FRI)),
        ("Saturday", When(day=SAT)),
        ("agle hafte shukravar", When(day=date(2031, 1, 24))),  # Friday of next week
        ("wednesday", When(day=date(2031, 1, 22))),  # today is Wednesday: the next one
        ("tomorrow evening", When(day=THU, period="evening")),
        ("kal shaam", When(day=THU, period="evening")),
        ("dopahar", When(period="afternoon")),
        ("subah 10 baje", When(time=time(10), period="morning")),
        ("सुबह 10 बजे", When(time=time(10), period="morning")),
        ("shaam 5 baje", When(time=time(17), period="evening")),
        ("shaam 5:30", When(time=time(17, 30), period="evening")),
        ("dopahar 2 baje", When(time=time(14), period="afternoon")),
        ("raat 8 baje", When(time=time(20), period="night")),
        ("10:30", When(time=time(10, 30))),
        ("10.30", When(time=time(10, 30))),
        ("ten am", When(time=time(10))),
        ("at 4pm", When(time=time(16))),
        ("at 2", When(time=time(14))),  # a clinic hour: afternoon
        ("5 baje", When(time=time(17))),
        ("ten thirty", When(time=time(10, 30))),
        ("half past ten", When(time=time(10, 30))),
        ("quarter to eleven", When(time=time(10, 45))),
        ("saadhe das baje", When(time=time(10, 30))),
        ("साढ़े 10 बजे", When(time=time(10, 30))),
        ("sawa gyarah baje", When(time=time(11, 15))),
        ("paune 5 baje", When(time=time(16, 45))),
        ("dedh baje", When(time=time(13, 30))),
        ("dhai baje", When(time=time(14, 30))),
        ("10 bajkar 15 minute", When(time=time(10, 15))),
        ("das baje", When(time=time(10))),
        ("kal subah ten o'clock", When(day=THU, time=time(10), period="morning")),
        ("tomorrow at noon", When(day=THU, time=time(12), period="afternoon")),
        ("25 tarikh", When(day=date(2031, 1, 25))),
        ("25 तारीख को", When(day=date(2031, 1, 25))),
        ("10 tarikh", When(day=date(2031, 2, 10))),  # passed this month: next month's
        ("the 25th", When(day=date(2031, 1, 25))),
        ("25th", When(day=date(2031, 1, 25))),
        ("twenty fifth of january", When(day=date(2031, 1, 25))),
        ("3 March", When(day=date(2031, 3, 3))),
        ("march 3rd at 11 am", When(day=date(2031, 3, 3), time=time(11))),
        ("31 tarikh", When(day=date(2031, 1, 31))),
        ("30 february", When()),  # no such day
    ],
)
def test_parse_when(text, expected):
    assert parse_when(text, NOW, IST) == expected


@pytest.mark.parametrize(
    "text",
    ["the second one", "cancel kar do", "mera naam Ravi hai", "2", "I want 2 appointments", ""],
)
def test_no_date_or_time_where_there_is_none(text):
    assert parse_when(text, NOW, IST).empty


def test_full_booking_sentences():
    assert parse_when(
        "I want to book an appointment with Dr. Sharma tomorrow at 10 am", NOW, IST
    ) == When(day=THU, time=time(10))
    assert parse_when("मुझे कल सुबह 10 बजे डॉक्टर शर्मा से मिलना है", NOW, IST) == When(
        day=THU, time=time(10), period="morning"
    )
    assert parse_when("appointment parso shaam 5 baje kar do", NOW, IST) == When(
        day=FRI, time=time(17), period="evening"
    )


def test_kal_is_yesterday_only_when_asked_for_the_past():
    assert parse_when("kal", NOW, IST, prefer_future=False) == When(day=date(2031, 1, 14))


def test_now_is_read_in_the_clinic_time_zone():
    from datetime import UTC, datetime

    late_utc = datetime(2031, 1, 15, 20, 0, tzinfo=UTC)  # already the 16th in India
    assert parse_when("kal", late_utc, IST).day == date(2031, 1, 17)


def test_resolve_a_bare_time_to_today_or_tomorrow():
    assert resolve(When(time=time(11)), NOW, IST).day == WED
    assert resolve(When(time=time(8)), NOW, IST).day == THU  # 8 am has passed


def test_every_day_mentioned_in_order():
    from voice.agent.dates import parse_days

    assert parse_days("kal wala appointment parso kar do", NOW, IST) == [THU, FRI]
    assert parse_days("move it from friday to next monday", NOW, IST) == [FRI, MON]
    assert parse_days("day after tomorrow", NOW, IST) == [FRI]
