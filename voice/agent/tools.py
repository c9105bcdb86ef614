"""The agent's hands: the only module of ``voice.agent`` that touches the database.

Both brains use it: the rule-based dialog calls these methods directly, the LLM
agent exposes them as functions (``llm.TOOL_SPECS``). Every write goes through
``clinic.services`` (booking rules live there once); the domain errors it raises
(``vaani.common.exceptions.ApiError``) come back as an ``ActionResult`` with a
``problem`` code the dialog can explain in the caller's language, plus the next
free slots when a time was taken.

A caller can only act on records of their own phone number: patients on it and
their appointments. Neither brain can book for, move or cancel someone else's
appointment, whatever it is told.

Results are plain dataclasses (ids, names, aware UTC datetimes), never model
instances, so the dialog stays ORM-free and its state is serialisable.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta

import phonenumbers
from django.utils import timezone

from clinic import schedule, selectors, services
from clinic.models import (
    AppointmentStatus,
    BookingSource,
    Clinic,
    Doctor,
    Patient,
    ScheduleExceptionKind,
)
from vaani.common.exceptions import (
    ApiError,
    BookingValidationError,
    ConflictError,
    NotFoundError,
    UnprocessableError,
)
from voice.agent import dates, nlu
from voice.agent.language import tokenize

SEARCH_DAYS = 14  # how far ahead the agent looks for a free slot
# Slots starting sooner are not offered: nobody reaches the clinic in five minutes.
# (A caller who asks for such a time explicitly still gets it if the rules allow.)
OFFER_LEAD = timedelta(minutes=15)
OFFER_COUNT = 3  # how many times it reads out at once (a caller remembers three)

# Problem codes (the dialog and the LLM both get them).
NOT_ACCEPTING = "not_accepting"
LEAVE, HOLIDAY, DAY_OFF, PAST_DAY = "leave", "holiday", "off", "past_day"
TAKEN, OUTSIDE_HOURS, PAST_TIME = "taken", "outside_hours", "past_time"
NONE_IN_PERIOD, DAY_FULL, NO_SLOTS = "none_in_period", "day_full", "no_slots"
NOT_FOUND, NOT_CHANGEABLE, INVALID = "not_found", "not_changeable", "invalid"
CLOSED = (LEAVE, HOLIDAY, DAY_OFF)


@dataclass(frozen=True)
class PatientInfo:
    id: int
    name: str
    language: str


@dataclass(frozen=True)
class DoctorInfo:
    id: int
    name: str
    specialization: str = ""
    available: bool = True
    working_hours: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class AppointmentInfo:
    id: int
    patient_id: int
    patient_name: str
    doctor_id: int
    doctor_name: str
    start: datetime
    duration_minutes: int
    status: str


@dataclass
class SlotSearch:
    """Free time for a request: the exact time if free, or what to offer instead."""

    doctor: DoctorInfo
    day: date | None = None
    requested: datetime | None = None
    exact_free: bool = False
    problem: str | None = None  # why the request as said cannot be met
    slots: list[datetime] = field(default_factory=list)  # offers / alternatives, UTC


@dataclass
class ActionResult:
    ok: bool
    appointment: AppointmentInfo | None = None
    problem: str | None = None
    message: str = ""  # the service's own (English) explanation
    alternatives: list[datetime] = field(default_factory=list)


@dataclass
class ClinicInfo:
    name: str
    address: str
    hours: str | dict | None  # from Clinic.information["hours"] (text, or per language)
    open_days: list[int]  # derived from the doctors' weeks when "hours" is not given
    opens: time | None
    closes: time | None
    fees: str | dict | None
    facts: dict  # every other key of Clinic.information
    doctors: list[DoctorInfo]


def normalize_phone(value: str) -> str:
    """E.164 for a caller id; Indian numbers without +91 are completed."""
    raw = (value or "").strip()
    try:
        parsed = phonenumbers.parse(raw, None if raw.startswith("+") else "IN")
    except phonenumbers.NumberParseException:
        return raw[:20]
    if not phonenumbers.is_possible_number(parsed):
        return raw[:20]
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class ClinicTools:
    """What the agent can look up and do for one caller of one clinic.

    ``now`` fixes the clock (tests, replays); by default every call reads the real one.
    One instance serves one turn or one call; doctor and patient lists are cached on it.
    """

    def __init__(
        self,
        clinic: Clinic,
        caller_phone: str,
        *,
        call_sid: str = "",
        now: datetime | None = None,
        duration_minutes: int = services.DEFAULT_DURATION,
    ):
        self.clinic = clinic
        self.caller_phone = normalize_phone(caller_phone)
        self.call_sid = call_sid
        self.duration_minutes = duration_minutes
        self._now = now
        self._doctor_objects: list[Doctor] | None = None
        self._patients: list[Patient] | None = None

    # --- basics -------------------------------------------------------------------------

    @property
    def tz(self):
        return self.clinic.tzinfo

    def now(self) -> datetime:
        return self._now or timezone.now()

    # --- patients ---------------------------------------------------------------------

    def _patient_objects(self) -> list[Patient]:
        if self._patients is None:
            self._patients = (
                list(
                    Patient.objects.filter(clinic=self.clinic, phone=self.caller_phone).order_by(
                        "name", "id"
                    )
                )
                if self.caller_phone
                else []
            )
        return self._patients

    def caller_patients(self) -> list[PatientInfo]:
        """Patients registered on the caller's number (families share phones)."""
        return [_patient_info(p) for p in self._patient_objects()]

    def _own_patient(self, patient_id) -> Patient | None:
        return next((p for p in self._patient_objects() if p.pk == _int(patient_id)), None)

    def create_patient(self, name: str, language: str) -> PatientInfo:
        """Registers a new caller (or returns the same-named patient already on this phone)."""
        try:
            patient = services.create_patient(
                clinic=self.clinic,
                phone=self.caller_phone,
                name=name.strip()[:200],
                language_preference=language,
            )
        except ConflictError as exc:
            existing = exc.details.get("existing_patient_id")
            patient = Patient.objects.filter(clinic=self.clinic, pk=existing).first()
            if patient is None:  # lost a race with a twin; it is there now
                patient = Patient.objects.get(
                    clinic=self.clinic, phone=self.caller_phone, name__iexact=name.strip()
                )
        self._patients = None
        return _patient_info(patient)

    def set_language(self, patient_id: int, language: str) -> None:
        """Remembers the language the caller spoke, for the next call and for SMS."""
        patient = self._own_patient(patient_id)
        if patient is None or patient.language_preference == language:
            return
        with contextlib.suppress(ApiError):  # a language change cannot conflict
            services.update_patient(patient=patient, changes={"language_preference": language})

    # --- doctors ----------------------------------------------------------------------

    def _doctors(self) -> list[Doctor]:
        if self._doctor_objects is None:
            doctors = list(selectors.doctor_list(clinic=self.clinic))
            for doctor in doctors:
                doctor.clinic = self.clinic  # slot maths reads the time zone from here
            self._doctor_objects = doctors
        return self._doctor_objects

    def _doctor(self, doctor_id) -> Doctor | None:
        return next((d for d in self._doctors() if d.pk == _int(doctor_id)), None)

    def doctors(self) -> list[DoctorInfo]:
        return [_doctor_info(d) for d in self._doctors()]

    def doctor(self, doctor_id) -> DoctorInfo | None:
        doctor = self._doctor(doctor_id)
        return _doctor_info(doctor) if doctor else None

    def find_doctors(self, spoken: str) -> list[DoctorInfo]:
        """Doctors matching a spoken name or speciality ("Sharma", "डॉ शर्मा", "skin")."""
        infos = self.doctors()
        ids, _unknown = nlu.match_doctors(tokenize(spoken), infos)
        if not ids:  # a bare name without "doctor" in front, e.g. the LLM's "Sharma"
            ids, _unknown = nlu.match_doctors(tokenize(f"doctor {spoken}"), infos)
        return [d for d in infos if d.id in ids]

    def working_week(self, doctor_id) -> tuple[list[int], time | None, time | None]:
        """(weekdays 0-6 the doctor works, earliest start, latest end) of the usual week."""
        doctor = self._doctor(doctor_id)
        days: list[int] = []
        opens = closes = None
        for index, weekday in enumerate(schedule.WEEKDAYS):
            intervals = schedule.parse_intervals(
                ((doctor.working_hours if doctor else None) or {}).get(weekday, [])
            )
            if intervals:
                days.append(index)
                first, last = intervals[0].start, intervals[-1].end
                opens = first if opens is None or first < opens else opens
                closes = last if closes is None or last > closes else closes
        return days, opens, closes

    def transfer_number(self) -> str:
        """Where the telephony layer sends a caller who wants a person ("" = nobody)."""
        return self.clinic.front_desk_phone or ""

    # --- slots ------------------------------------------------------------------------

    def closure(self, doctor_id, day: date) -> str | None:
        """Why the doctor sees nobody on ``day``: leave, holiday, off; None if working."""
        doctor = self._doctor(doctor_id)
        if doctor is None:
            return DAY_OFF
        exception = services.exception_on(doctor, day)
        if exception is not None and exception.kind == ScheduleExceptionKind.LEAVE:
            return LEAVE
        if exception is not None and exception.kind == ScheduleExceptionKind.HOLIDAY:
            return HOLIDAY
        if not services.opening_periods(doctor, day, exception):
            return DAY_OFF
        return None

    def free_slots(self, doctor_id, day: date, *, duration: int | None = None) -> list[datetime]:
        """Free starts (UTC) on a local day, as ``clinic.services.available_slots`` offers them."""
        doctor = self._doctor(doctor_id)
        if doctor is None or not doctor.available:
            return []
        earliest = self.now() + OFFER_LEAD
        return [
            slot.start
            for slot in services.available_slots(
                doctor=doctor,
                day=day,
                duration_minutes=duration or self.duration_minutes,
                now=earliest,
            )
        ]

    def is_free(
        self,
        doctor_id,
        start: datetime,
        *,
        duration: int | None = None,
        ignore_appointment: int | None = None,
    ) -> str | None:
        """None if ``start`` can be booked, else why not (taken, outside hours, past...)."""
        doctor = self._doctor(doctor_id)
        if doctor is None:
            return NOT_FOUND
        if not doctor.available:
            return NOT_ACCEPTING
        if start <= self.now():
            return PAST_TIME
        end = start + timedelta(minutes=duration or self.duration_minutes)
        day = start.astimezone(self.tz).date()
        closed = self.closure(doctor_id, day)
        if closed:
            return closed
        periods = services.opening_periods(doctor, day, services.exception_on(doctor, day))
        if not schedule.fits_within(start, end, periods):
            return OUTSIDE_HOURS
        if services.busy_periods(doctor, start, end, exclude_id=ignore_appointment):
            return TAKEN
        return None

    def search_slots(
        self,
        doctor_id,
        *,
        day: date | None = None,
        at: time | None = None,
        period: str | None = None,
        limit: int = OFFER_COUNT,
        duration: int | None = None,
        ignore_appointment: int | None = None,
    ) -> SlotSearch:
        """Answers "Dr X, <day>, <time or part of day>?" with the slot or the nearest ones.

        - an exact time that is free: ``exact_free`` (a 10:15 between grid slots counts);
        - a taken / past / out-of-hours time: the free times nearest to it that day,
          else the first ones of the next working days;
        - a part of the day: its free times, else that day's others, else later days';
        - a day the doctor is away: ``problem`` says why, ``slots`` are the next ones.
        """
        doctor = self._doctor(doctor_id)
        if doctor is None:
            raise NotFoundError("doctor", doctor_id)
        info = _doctor_info(doctor)
        result = SlotSearch(doctor=info, day=day)
        if not doctor.available:
            result.problem = NOT_ACCEPTING
            return result
        local_now = self.now().astimezone(self.tz)
        today = local_now.date()
        if day is None and at is not None:
            # a bare "10 baje": today if still ahead, else tomorrow
            day = today if dates.combine(today, at, self.tz) > local_now else today + timedelta(1)
        if day is not None and day < today:
            result.problem, day = PAST_DAY, today
        result.day = day
        first_day = day or today
        if at is not None and day is not None:
            requested = dates.combine(day, at, self.tz)
            result.requested = requested
            reason = self.is_free(
                doctor_id, requested, duration=duration, ignore_appointment=ignore_appointment
            )
            if reason is None:
                result.exact_free = True
                return result
            result.problem = result.problem or reason
            same_day = self.free_slots(doctor_id, day, duration=duration)
            nearest = sorted(same_day, key=lambda s: (abs(s - requested), s))[:limit]
            result.slots = sorted(nearest) or self._later(
                doctor_id, day + timedelta(days=1), period, limit, duration, near=at
            )
        else:
            slots = self.free_slots(doctor_id, first_day, duration=duration)
            wanted = [s for s in slots if dates.in_period(s.astimezone(self.tz), period)]
            if wanted:
                result.slots = wanted[:limit]
            else:
                if day is not None or period is not None:
                    closed = self.closure(doctor_id, first_day)
                    if closed:
                        result.problem = result.problem or closed
                    elif slots and period:
                        result.problem = result.problem or NONE_IN_PERIOD
                    else:
                        result.problem = result.problem or DAY_FULL
                result.slots = (slots[:limit] if slots else []) or self._later(
                    doctor_id, first_day + timedelta(days=1), period, limit, duration
                )
        if not result.slots and result.problem is None:
            result.problem = NO_SLOTS
        return result

    def _later(self, doctor_id, start_day, period, limit, duration, near: time | None = None):
        """The first working day from ``start_day`` with room; same part of day preferred."""
        fallback: list[datetime] = []
        for offset in range(SEARCH_DAYS):
            day = start_day + timedelta(days=offset)
            slots = self.free_slots(doctor_id, day, duration=duration)
            if not slots:
                continue
            if near is not None:
                target = dates.combine(day, near, self.tz)
                return sorted(sorted(slots, key=lambda s: (abs(s - target), s))[:limit])
            wanted = [s for s in slots if dates.in_period(s.astimezone(self.tz), period)]
            if wanted:
                return wanted[:limit]
            fallback = fallback or slots[:limit]
        return fallback

    # --- appointments -----------------------------------------------------------------

    def upcoming_appointments(self, limit: int = 10) -> list[AppointmentInfo]:
        """Scheduled, future appointments of the patients on the caller's number."""
        ids = [p.pk for p in self._patient_objects()]
        if not ids:
            return []
        queryset = selectors.appointment_list(
            clinic=self.clinic, status=AppointmentStatus.SCHEDULED
        ).filter(patient_id__in=ids, scheduled_time__gt=self.now())
        return [_appointment_info(a) for a in queryset[:limit]]

    def _own_appointment(self, appointment_id):
        ids = [p.pk for p in self._patient_objects()]
        return (
            selectors.appointment_list(clinic=self.clinic)
            .filter(pk=_int(appointment_id), patient_id__in=ids)
            .first()
        )

    def book(
        self,
        patient_id,
        doctor_id,
        start: datetime,
        *,
        reason: str = "",
        duration: int | None = None,
    ) -> ActionResult:
        """Books through ``clinic.services.book_appointment`` (source voice, with call sid)."""
        patient = self._own_patient(patient_id)
        if patient is None:
            return ActionResult(
                False, problem=NOT_FOUND, message="No such patient on the caller's phone number"
            )
        duration = duration or self.duration_minutes
        try:
            appointment = services.book_appointment(
                clinic=self.clinic,
                patient_id=patient.pk,
                doctor_id=_int(doctor_id),
                scheduled_time=start,
                duration_minutes=duration,
                reason=reason[:500],
                call_sid=self.call_sid,
                source=BookingSource.VOICE,
                now=self.now(),
            )
        except ApiError as exc:
            return self._failure(exc, doctor_id, start, duration)
        appointment.patient, appointment.doctor = patient, self._doctor(doctor_id)
        return ActionResult(True, appointment=_appointment_info(appointment))

    def reschedule(
        self, appointment_id, start: datetime, *, doctor_id=None, duration: int | None = None
    ) -> ActionResult:
        """Moves an appointment through ``clinic.services.update_appointment``."""
        appointment = self._own_appointment(appointment_id)
        if appointment is None:
            return ActionResult(False, problem=NOT_FOUND, message="Appointment not found")
        changes: dict = {"scheduled_time": start}
        if doctor_id is not None and _int(doctor_id) != appointment.doctor_id:
            changes["doctor_id"] = _int(doctor_id)
        if duration:
            changes["duration_minutes"] = duration
        try:
            updated = services.update_appointment(
                appointment=appointment, changes=changes, now=self.now()
            )
        except ApiError as exc:
            return self._failure(
                exc,
                changes.get("doctor_id", appointment.doctor_id),
                start,
                duration or appointment.duration_minutes,
                ignore=appointment.pk,
            )
        updated.patient = appointment.patient
        updated.doctor = self._doctor(updated.doctor_id) or updated.doctor
        return ActionResult(True, appointment=_appointment_info(updated))

    def cancel(self, appointment_id, reason: str = "") -> ActionResult:
        """Cancels through ``clinic.services.cancel_appointment`` (the row is kept)."""
        appointment = self._own_appointment(appointment_id)
        if appointment is None:
            return ActionResult(False, problem=NOT_FOUND, message="Appointment not found")
        try:
            cancelled = services.cancel_appointment(
                appointment=appointment,
                reason=reason or "Cancelled by the caller on the phone",
                now=self.now(),
            )
        except ApiError as exc:
            return ActionResult(False, problem=_problem_of(exc), message=exc.message)
        cancelled.patient, cancelled.doctor = appointment.patient, appointment.doctor
        return ActionResult(True, appointment=_appointment_info(cancelled))

    def _failure(self, exc: ApiError, doctor_id, start, duration, ignore=None) -> ActionResult:
        problem = _problem_of(exc)
        result = ActionResult(False, problem=problem, message=exc.message)
        offer = isinstance(exc, BookingValidationError | ConflictError) and problem not in (
            NOT_ACCEPTING,
            NOT_FOUND,
        )
        if offer and self._doctor(doctor_id):
            local = start.astimezone(self.tz)
            search = self.search_slots(
                doctor_id,
                day=local.date(),
                at=local.time(),
                duration=duration,
                ignore_appointment=ignore,
            )
            result.alternatives = search.slots
            if problem == INVALID and search.problem:
                result.problem = search.problem
        return result

    # --- the clinic ---------------------------------------------------------------------

    def clinic_info(self) -> ClinicInfo:
        """Facts to answer from: ``Clinic.information`` JSON, the address, the doctors."""
        information = dict(self.clinic.information or {})
        hours = information.pop("hours", None) or information.pop("timings", None)
        fees = information.pop("fees", None) or information.pop("fee", None)
        address = information.pop("address", None) or self.clinic.address
        open_days: set[int] = set()
        opens: time | None = None
        closes: time | None = None
        for doctor in self._doctors():
            if not doctor.available:
                continue
            days, first, last = self.working_week(doctor.pk)
            open_days.update(days)
            if first is not None:
                opens = first if opens is None or first < opens else opens
                closes = last if closes is None or last > closes else closes
        return ClinicInfo(
            name=self.clinic.name,
            address=address if isinstance(address, str | dict) else str(address),
            hours=hours,
            open_days=sorted(open_days),
            opens=opens,
            closes=closes,
            fees=fees,
            facts=information,
            doctors=[d for d in self.doctors() if d.available],
        )

    def vocabulary(self) -> list[str]:
        """Words and phrases the speech recogniser should expect on this clinic's line.

        Doctor names (full, without title, each part, "doctor <surname>"), the caller's
        family names, specialities, the clinic's own words, weekdays and numbers in
        English and romanised Hindi, and the intent words the dialog listens for.
        Feed it to ``voice.pipeline.vocabulary.ClinicVocabulary(phrases=...)``.
        """
        phrases: set[str] = set(_BASE_WORDS.split()) | set(_BASE_PHRASES)
        for doctor in self._doctors():
            parts = [
                p for p in doctor.name.replace(".", " ").split() if p.lower() not in nlu.TITLES
            ]
            phrases.add(doctor.name)
            if parts:
                phrases.add(" ".join(parts))
                phrases.add(f"doctor {parts[-1]}")
                phrases.add(f"doctor {' '.join(parts)}")
                phrases.update(parts)
            if doctor.specialization:
                phrases.add(doctor.specialization)
        for patient in self._patient_objects():
            phrases.add(patient.name)
            phrases.update(patient.name.split())
        phrases.add(self.clinic.name)
        phrases.update(str(k).replace("_", " ") for k in (self.clinic.information or {}))
        return sorted(p for p in phrases if p)


_BASE_WORDS = (
    "monday tuesday wednesday thursday friday saturday sunday today tomorrow morning "
    "afternoon evening night am pm o'clock half past quarter thirty fifteen forty five "
    "one two three four five six seven eight nine ten eleven twelve first second third "
    "book appointment cancel reschedule change available fees timing address receptionist "
    "human person yes no okay thank you bye "
    "somvar mangalvar budhvar guruvar shukravar shanivar ravivar aaj kal parso subah "
    "dopahar shaam raat baje saadhe sawa paune dedh dhai tarikh agle hafte ek do teen char "
    "paanch chhe saat aath nau das gyarah barah pehla doosra teesra haan ji nahi theek hai "
    "bilkul dhanyavaad shukriya bas chahiye milna mera naam kar do radd badalna insaan baat"
)
_BASE_PHRASES = (
    "doctor",
    "kal subah",
    "kal shaam",
    "theek hai",
    "haan ji",
    "mera naam",
    "appointment chahiye",
    "cancel kar do",
    "that's all",
    "talk to a person",
    "insaan se baat",
    "day after tomorrow",
    "next week",
)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _patient_info(patient: Patient) -> PatientInfo:
    return PatientInfo(patient.pk, patient.name, patient.language_preference)


def _doctor_info(doctor: Doctor) -> DoctorInfo:
    return DoctorInfo(
        doctor.pk,
        doctor.name,
        doctor.specialization,
        doctor.available,
        dict(doctor.working_hours or {}),
    )


def _appointment_info(appointment) -> AppointmentInfo:
    return AppointmentInfo(
        id=appointment.pk,
        patient_id=appointment.patient_id,
        patient_name=appointment.patient.name,
        doctor_id=appointment.doctor_id,
        doctor_name=appointment.doctor.name,
        start=appointment.scheduled_time,
        duration_minutes=appointment.duration_minutes,
        status=appointment.status,
    )


def _problem_of(exc: ApiError) -> str:
    """The service's error as a problem code (its message goes along for the LLM)."""
    if isinstance(exc, ConflictError):
        return TAKEN
    if isinstance(exc, NotFoundError):
        return NOT_FOUND
    if isinstance(exc, UnprocessableError):
        return NOT_CHANGEABLE
    details = exc.details or {}
    if "doctor_id" in details and "accepting" in str(details["doctor_id"]):
        return NOT_ACCEPTING
    when = str(details.get("scheduled_time", ""))
    if "future" in when:
        return PAST_TIME
    if "not seeing patients" in when:
        return LEAVE if "(leave)" in when else HOLIDAY if "(holiday)" in when else DAY_OFF
    if "not available" in when:
        return OUTSIDE_HOURS
    return INVALID


def as_json(value):
    """Dataclass results as JSON-ready data (for the LLM's tool messages)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return as_json(asdict(value))
    return value


__all__ = [
    "ActionResult",
    "AppointmentInfo",
    "ClinicInfo",
    "ClinicTools",
    "DoctorInfo",
    "PatientInfo",
    "SlotSearch",
    "as_json",
]
