"""Spoken dates and times ("kal subah 10 baje", "next Monday", "25 tarikh", "ten thirty").

Everything is relative to a given ``now`` in the clinic's time zone; nothing here
reads a clock or the database. The parser works on canonical tokens
(``language.tokenize``), so "कल सुबह 10 बजे", "kal subha 10 bje" and the English
recogniser's "kal subah ten o'clock" are one case.

Decisions a caller would make the same way a receptionist does:

- "kal" means yesterday or tomorrow; when booking it means tomorrow (``prefer_future``).
- A weekday ("Monday", "somvar", "next Monday", "agle somvar") is its next occurrence
  after today, 1-7 days ahead; "agle hafte somvar" / "Monday next week" adds a week
  when that occurrence is still in this (Monday-first) week. The agent always reads the
  date back, so a caller who meant otherwise corrects it at the confirmation.
- A day of the month ("25 tarikh", "the 25th", "25 January") that has passed this
  month is next month's.
- An hour without am/pm or a part of the day is a clinic hour: 1-7 is afternoon or
  evening (13:00-19:00), 8-11 is morning, 12 is noon.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo

from voice.agent.language import Token, tokenize

MORNING, AFTERNOON, EVENING, NIGHT = "morning", "afternoon", "evening", "night"
PERIODS = (MORNING, AFTERNOON, EVENING, NIGHT)
# [start, end) local hours of each part of the day.
PERIOD_HOURS = {MORNING: (5, 12), AFTERNOON: (12, 16), EVENING: (16, 20), NIGHT: (20, 24)}

_PERIOD_WORDS = {
    "subah": MORNING, "morning": MORNING, "mornings": MORNING,
    "dopahar": AFTERNOON, "afternoon": AFTERNOON, "noon": AFTERNOON, "lunch": AFTERNOON,
    "shaam": EVENING, "evening": EVENING, "evenings": EVENING,
    "raat": NIGHT, "night": NIGHT, "tonight": NIGHT,
}  # fmt: skip

WEEKDAY_WORDS = {
    "monday": 0, "mon": 0, "somvar": 0,
    "tuesday": 1, "tue": 1, "tues": 1, "mangalvar": 1, "mangal": 1,
    "wednesday": 2, "wed": 2, "budhvar": 2, "budh": 2,
    "thursday": 3, "thu": 3, "thurs": 3, "guruvar": 3,
    "friday": 4, "fri": 4, "shukravar": 4, "shukra": 4,
    "saturday": 5, "sat": 5, "shanivar": 5, "shani": 5,
    "sunday": 6, "sun": 6, "ravivar": 6,
}  # fmt: skip
# Short forms are weekdays only next to a day word ("on mon"), never alone ("sun", "sat").
_AMBIGUOUS_WEEKDAYS = {"mon", "tue", "wed", "thu", "fri", "sat", "sun", "mangal", "budh", "shani"}

MONTH_WORDS = {
    "january": 1, "jan": 1, "janvari": 1, "february": 2, "feb": 2, "farvari": 2,
    "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5, "mai": 5, "june": 6, "jun": 6,
    "joon": 6, "july": 7, "jul": 7, "julai": 7, "august": 8, "aug": 8, "agast": 8,
    "september": 9, "sep": 9, "sept": 9, "sitambar": 9, "october": 10, "oct": 10,
    "aktubar": 10, "november": 11, "nov": 11, "navambar": 11, "december": 12, "dec": 12,
    "disambar": 12,
}  # fmt: skip

ENGLISH_NUMBERS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
}  # fmt: skip
ENGLISH_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17,
    "eighteenth": 18, "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
HINDI_NUMBERS = {
    "ek": 1, "do": 2, "teen": 3, "char": 4, "paanch": 5, "chhe": 6, "saat": 7, "aath": 8,
    "nau": 9, "das": 10, "gyarah": 11, "barah": 12,
}  # fmt: skip

_TIME_SUFFIX = {"am", "pm", "baje", "bajkar", "oclock", "hrs", "hours"}
_TIME_PREFIX = {"at", "around", "about", "by", "lagbhag", "karib", "kareeb", "before", "after"}
_HH_MM = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class When:
    """What a caller said about when: any of a day, a clock time, a part of the day."""

    day: date | None = None
    time: time | None = None
    period: str | None = None

    @property
    def empty(self) -> bool:
        return self.day is None and self.time is None and self.period is None

    def to_dict(self) -> dict:
        return {
            "day": self.day.isoformat() if self.day else None,
            "time": self.time.strftime("%H:%M") if self.time else None,
            "period": self.period,
        }


def local_now(now: datetime, tz: tzinfo | None) -> datetime:
    return now.astimezone(tz) if tz is not None else now


def period_of(moment: time) -> str:
    for name in (MORNING, AFTERNOON, EVENING, NIGHT):
        start, end = PERIOD_HOURS[name]
        if start <= moment.hour < end:
            return name
    return NIGHT


def in_period(moment: datetime | time, period: str | None) -> bool:
    if period is None:
        return True
    hour = moment.hour
    start, end = PERIOD_HOURS[period]
    return start <= hour < end


def combine(day: date, moment: time, tz: tzinfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=tz)


# --- numbers ------------------------------------------------------------------------------


def _english_number(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """(value, tokens used) for "ten", "twenty five", "twenty fifth", "thirty first"."""
    word = tokens[i]
    if word in ENGLISH_NUMBERS:
        value = ENGLISH_NUMBERS[word]
        if value in (20, 30, 40, 50) and i + 1 < len(tokens):
            nxt = tokens[i + 1]
            unit = ENGLISH_NUMBERS.get(nxt) or ENGLISH_ORDINALS.get(nxt)
            if unit and unit < 10:
                return value + unit, 2
        return value, 1
    if word in ENGLISH_ORDINALS:
        return ENGLISH_ORDINALS[word], 1
    return None


def _number(tokens: Sequence[str], i: int, *, hindi: bool) -> tuple[int, int] | None:
    word = tokens[i]
    if word.isdigit():
        return int(word), 1
    found = _english_number(tokens, i)
    if found:
        return found
    if hindi and word in HINDI_NUMBERS:
        return HINDI_NUMBERS[word], 1
    return None


def spoken_number(text: str) -> int | None:
    """The number a short answer says ("2", "two", "do", "second"), else None."""
    words = [t.canon for t in tokenize(text)]
    for i in range(len(words)):
        found = _number(words, i, hindi=True)
        if found:
            return found[0]
    return None


# --- days ---------------------------------------------------------------------------------


def _next_weekday(today: date, weekday: int) -> date:
    ahead = (weekday - today.weekday()) % 7 or 7
    return today + timedelta(days=ahead)


def _day_of_month(today: date, day: int, month: int | None) -> date | None:
    if not 1 <= day <= 31:
        return None
    year = today.year
    if month is not None:
        for offset in range(0, 3):
            try:
                candidate = date(year + offset, month, day)
            except ValueError:
                continue
            if candidate >= today:
                return candidate
        return None
    month = today.month
    for _ in range(13):
        if day <= calendar.monthrange(year, month)[1]:
            candidate = date(year, month, day)
            if candidate >= today:
                return candidate
        month += 1
        if month > 12:
            month, year = 1, year + 1
    return None


def _find_days(words: list[str], today: date, *, prefer_future: bool) -> list[tuple[date, set]]:
    """Every day mentioned, in the order said, with the indexes of the tokens that said it.

    ("kal wala appointment parso kar do" names two: the appointment's and the new one.)
    """
    n = len(words)
    joined = " ".join(words)
    next_week = bool(re.search(r"\b(agle|agla|aane wale) (hafte|hafta)\b|\bnext week\b", joined))
    found: list[tuple[int, date, set]] = []
    used: set[int] = set()

    # explicit day of month: "25 tarikh", "25th", "25 january", "january 25", "twenty fifth"
    for i in range(n):
        number = _number(words, i, hindi=False)
        is_ordinal = words[i].endswith("th") and words[i][:-2].isdigit()
        if is_ordinal:
            number = (int(words[i][:-2]), 1)
        if not number or i in used:
            continue
        value, size = number
        after = words[i + size] if i + size < n else ""
        after2 = words[i + size + 1] if i + size + 1 < n else ""
        before = words[i - 1] if i > 0 else ""
        month = None
        span = set(range(i, i + size))
        if after in MONTH_WORDS:
            month, span = MONTH_WORDS[after], span | {i + size}
        elif after == "of" and after2 in MONTH_WORDS:
            month, span = MONTH_WORDS[after2], span | {i + size, i + size + 1}
        elif before in MONTH_WORDS:
            month, span = MONTH_WORDS[before], span | {i - 1}
        not_a_choice = after not in ("one", "slot", "option", "time", "wala", "wali", "number")
        ordinal_word = (words[i + size - 1] in ENGLISH_ORDINALS or is_ordinal) and not_a_choice
        if (
            month
            or after == "tarikh"
            or (is_ordinal and ordinal_word)
            or (ordinal_word and before in ("the", "on"))
        ):
            if after == "tarikh":
                span |= {i + size}
            day = _day_of_month(today, value, month)
            if day is not None:
                found.append((min(span), day, span))
                used |= span

    for i, word in enumerate(words):
        if i in used:
            continue
        prev = words[i - 1] if i > 0 else ""
        day, span = None, {i}
        if word in ("aaj", "today", "tonight"):
            day = today
        elif word in ("tomorrow", "kal"):
            past = word == "kal" and not prefer_future
            day = today + timedelta(days=-1 if past else 1)
        elif word == "parso":
            day = today + timedelta(days=2)
        elif word == "day" and words[i : i + 3] == ["day", "after", "tomorrow"]:
            day, span = today + timedelta(days=2), {i, i + 1, i + 2}
        elif word in WEEKDAY_WORDS:
            if word in _AMBIGUOUS_WEEKDAYS and prev not in ("on", "next", "this", "agle", "is"):
                continue
            day = _next_weekday(today, WEEKDAY_WORDS[word])
            this_week_end = today + timedelta(days=6 - today.weekday())
            if next_week and day <= this_week_end:
                day += timedelta(days=7)
        if day is not None:
            found.append((i, day, span))
            used |= span
    if not found and next_week:
        return [(_next_weekday(today, 0), set())]
    return [(day, span) for _, day, span in sorted(found, key=lambda item: item[0])]


def _find_day(words: list[str], today: date, *, prefer_future: bool) -> tuple[date | None, set]:
    """The first day mentioned, and the indexes of the tokens of every day mentioned."""
    days = _find_days(words, today, prefer_future=prefer_future)
    if not days:
        return None, set()
    return days[0][0], set().union(*(span for _, span in days))


def parse_days(
    text: str | Sequence[Token], now: datetime, tz: tzinfo | None = None, *, prefer_future=True
) -> list[date]:
    """All days mentioned, in order ("kal wala ... parso" -> [tomorrow, day after])."""
    tokens = tokenize(text) if isinstance(text, str) else list(text)
    today = local_now(now, tz).date()
    days = _find_days([t.canon for t in tokens], today, prefer_future=prefer_future)
    return [day for day, _ in days]


# --- times --------------------------------------------------------------------------------


def _to_24h(hour: int, minute: int, *, suffix: str | None, period: str | None) -> time | None:
    if hour > 24 or minute > 59:
        return None
    if hour > 12 or hour == 0:
        return time(hour % 24, minute)
    if suffix == "am":
        return time(hour % 12, minute)
    if suffix == "pm":
        return time(hour % 12 + 12, minute)
    if period == MORNING:
        return time(hour % 12, minute)
    if period == AFTERNOON:
        return time(hour if hour >= 11 else hour + 12, minute)
    if period in (EVENING, NIGHT):
        return time(hour % 12 + 12, minute)
    if hour == 12 or 8 <= hour <= 11:
        return time(hour, minute)
    return time(hour + 12, minute)  # 1-7 without am/pm: clinic afternoon/evening


def _find_period(words: list[str]) -> str | None:
    for i, word in enumerate(words):
        if word in _PERIOD_WORDS:
            if word == "noon" and i > 0 and words[i - 1] == "after":
                return AFTERNOON
            return _PERIOD_WORDS[word]
    return None


def _find_time(words: list[str], skip: set[int], period: str | None) -> time | None:
    n = len(words)
    i = 0
    while i < n:
        if i in skip:
            i += 1
            continue
        word = words[i]
        prev = words[i - 1] if i > 0 else ""
        prev2 = words[i - 2] if i > 1 else ""
        hour = minute = None
        anchored = False
        used = 1
        if word == "midday" or (word == "noon" and prev in ("at", "by", "around", "till")):
            return time(12, 0)
        if word in ("dedh", "dhai"):
            hour, minute, anchored = (1 if word == "dedh" else 2), 30, True
        elif word in ("saadhe", "sawa", "paune") and i + 1 < n:
            found = _number(words, i + 1, hindi=True)
            if found:
                base, size = found
                used = 1 + size
                anchored = True
                if word == "saadhe":
                    hour, minute = base, 30
                elif word == "sawa":
                    hour, minute = base, 15
                else:
                    hour, minute = (base - 1) or 12, 45
        elif word in ("half", "quarter") and i + 2 < n and words[i + 1] in ("past", "to"):
            found = _number(words, i + 2, hindi=False)
            if found:
                base, size = found
                used, anchored = 2 + size, True
                if word == "half":
                    hour, minute = base, 30
                elif words[i + 1] == "past":
                    hour, minute = base, 15
                else:
                    hour, minute = (base - 1) or 12, 45
        elif _HH_MM.match(word):
            match = _HH_MM.match(word)
            hour, minute, anchored = int(match[1]), int(match[2]), True
        else:
            found = _number(words, i, hindi=True)
            if found and not (words[i] in HINDI_NUMBERS and words[i] not in ENGLISH_NUMBERS):
                hour, used = found
                minute = 0
                # "ten thirty", "ten fifteen", "10 30 am"
                if i + used < n:
                    mins = _number(words, i + used, hindi=False)
                    if mins and mins[0] in (0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55):
                        after_mins = words[i + used + mins[1]] if i + used + mins[1] < n else ""
                        spoken = words[i + used] in ENGLISH_NUMBERS or words[i + used] == "oh"
                        if spoken or after_mins in _TIME_SUFFIX:
                            minute = mins[0]
                            used += mins[1]
                            anchored = anchored or words[i] in ENGLISH_NUMBERS  # "ten thirty"
                            if words[i + used - mins[1]] == "oh" and i + used < n:
                                extra = _number(words, i + used, hindi=False)
                                if extra:
                                    minute, used = extra[0], used + extra[1]
            elif found:  # Hindi number word: only as "das baje", "subah das"
                hour, used = found
                minute = 0
        if hour is not None:
            nxt = words[i + used] if i + used < n else ""
            suffix = nxt if nxt in ("am", "pm") else None
            if nxt in _TIME_SUFFIX:
                anchored = True
            if nxt == "bajkar" and i + used + 1 < n:
                mins = _number(words, i + used + 1, hindi=True)
                if mins and mins[0] < 60:
                    minute = mins[0]
            if prev in _TIME_PREFIX or prev in _PERIOD_WORDS or prev2 in _PERIOD_WORDS:
                anchored = anchored or prev not in ("before", "after")
            if nxt in _PERIOD_WORDS or words[i + used : i + used + 2] == ["in", "the"]:
                anchored = True
            if anchored:
                result = _to_24h(hour, minute or 0, suffix=suffix, period=period)
                if result is not None:
                    return result
        i += used
    return None


def parse_when(
    text: str | Sequence[Token], now: datetime, tz: tzinfo | None = None, *, prefer_future=True
) -> When:
    """The day, time and part of day in ``text``, relative to ``now`` in ``tz``.

    >>> parse_when("kal subah 10 baje", now, IST)  # doctest: +SKIP
    When(day=<tomorrow>, time=time(10, 0), period='morning')
    """
    tokens = tokenize(text) if isinstance(text, str) else list(text)
    words = [t.canon for t in tokens]
    today = local_now(now, tz).date()
    day, used = _find_day(words, today, prefer_future=prefer_future)
    period = _find_period(words)
    moment = _find_time(words, used, period)
    return When(day=day, time=moment, period=period)


def resolve(when: When, now: datetime, tz: tzinfo) -> When:
    """Fills the day of a bare time: today if still ahead, else tomorrow."""
    if when.day is not None or when.time is None:
        return when
    local = local_now(now, tz)
    today = local.date()
    day = today if combine(today, when.time, tz) > local else today + timedelta(days=1)
    return replace(when, day=day)
