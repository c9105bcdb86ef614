"""The demo clinic of ``manage.py seed_demo``: idempotent, so it can run on every start.

Future appointments are booked through ``clinic.services`` like any other booking;
past ones (which no service would accept) are written directly as history.
"""

import random
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from clinic import services
from clinic.models import (
    Appointment,
    AppointmentStatus,
    BookingSource,
    Clinic,
    ClinicPhoneNumber,
    Doctor,
    DoctorScheduleException,
    Patient,
    ScheduleExceptionKind,
)
from clinic.signals import unannounced
from vaani.common.exceptions import ApiError
from voice.models import CallLog, CallStatus, Sentiment

CLINIC_NUMBER = "+911234567890"
ADMIN_EMAIL = "admin@clinic.com"

_WEEKDAY_HOURS = ["09:00-13:00", "14:00-18:00"]
DOCTORS = [
    {
        "name": "Dr. Priya Sharma",
        "specialization": "General Physician",
        "phone": "+919811000001",
        "email": "priya.sharma@clinic.com",
        "working_hours": {
            "monday": _WEEKDAY_HOURS,
            "tuesday": _WEEKDAY_HOURS,
            "wednesday": ["09:00-13:00"],
            "thursday": _WEEKDAY_HOURS,
            "friday": _WEEKDAY_HOURS,
            "saturday": ["09:00-13:00"],
            "sunday": [],
        },
    },
    {
        "name": "Dr. Rajesh Gupta",
        "specialization": "Cardiologist",
        "phone": "+919811000002",
        "email": "rajesh.gupta@clinic.com",
        "working_hours": {d: ["10:00-14:00"] for d in ("monday", "wednesday", "friday")},
    },
    {
        "name": "Dr. Anjali Mehta",
        "specialization": "Pediatrician",
        "phone": "+919811000003",
        "email": "anjali.mehta@clinic.com",
        "working_hours": {
            **{
                d: ["09:30-12:30", "16:00-19:00"]
                for d in ("monday", "tuesday", "thursday", "friday")
            },
            "saturday": ["10:00-13:00"],
        },
    },
    {
        "name": "Dr. Suresh Rao",
        "specialization": "Dermatologist",
        "phone": "+919811000004",
        "email": "suresh.rao@clinic.com",
        "working_hours": {
            d: ["15:00-19:00"] for d in ("tuesday", "wednesday", "thursday", "saturday")
        },
    },
    {
        "name": "Dr. Kavita Iyer",
        "specialization": "Gynecologist",
        "phone": "+919811000005",
        "email": "kavita.iyer@clinic.com",
        "working_hours": {
            d: ["09:00-13:00"] for d in ("monday", "tuesday", "wednesday", "thursday", "friday")
        },
    },
]

# (name, phone, date of birth, language). Two families share a phone.
PATIENTS = [
    ("Rajesh Kumar", "+919876543210", "1985-05-15", "hi"),
    ("Sunita Kumar", "+919876543210", "1988-02-11", "hi"),
    ("Aarav Kumar", "+919876543210", "2016-09-03", "hi"),
    ("Priya Patel", "+919876500001", "1992-07-21", "en"),
    ("Amit Singh", "+919876500002", "1979-12-02", "hi-en"),
    ("Neha Verma", "+919876500003", "1995-03-30", "hi-en"),
    ("Vikram Reddy", "+919876500004", "1968-10-10", "en"),
    ("Pooja Nair", "+919876500005", "2001-01-17", "en"),
    ("Rohit Joshi", "+919876500006", "1990-06-06", "hi"),
    ("Meera Joshi", "+919876500006", "1993-08-25", "hi"),
    ("Sanjay Yadav", "+919876500007", "1957-04-04", "hi"),
    ("Kavya Menon", "+919876500008", "1999-11-19", "en"),
    ("Arjun Malhotra", "+919876500009", "1983-02-28", "hi-en"),
    ("Fatima Khan", "+919876500010", "1975-09-09", "hi"),
    ("Deepak Chauhan", "+919876500011", "1964-05-05", "hi"),
    ("Ananya Das", "+919876500012", "2005-12-12", "hi-en"),
]

REASONS = [
    "Annual checkup",
    "Fever and cough",
    "Follow-up",
    "Blood pressure review",
    "Skin rash",
    "Vaccination",
    "Back pain",
    "Diabetes review",
]


def _password(explicit: str | None) -> tuple[str, bool]:
    if explicit:
        return explicit, False
    return secrets.token_urlsafe(12), True


def _user(
    email: str,
    clinic: Clinic,
    role: str,
    password: str,
    *,
    first: str,
    last: str,
    operator: bool = False,
) -> User:
    user = User.objects.filter(email=email).first() or User(username=email, email=email)
    user.clinic, user.role = clinic, role
    user.first_name, user.last_name = first, last
    user.is_staff = user.is_superuser = operator
    user.is_active = True
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def seed_demo(*, password: str | None = None, now: datetime | None = None) -> dict:
    """Creates (or refreshes) the demo clinic. Returns the logins to print."""
    now = now or timezone.now()
    clinic, _ = Clinic.objects.update_or_create(
        slug="demo",
        defaults={
            "name": "Vaani Demo Clinic",
            "time_zone": "Asia/Kolkata",
            "address": "12 MG Road, Bengaluru 560001",
            "front_desk_phone": "+918041234567",
            "email": "frontdesk@clinic.com",
            "information": {
                "hours": "Monday to Saturday, 9 am to 7 pm. Closed on Sundays.",
                "address": "12 MG Road, Bengaluru 560001, next to Metro pillar 42.",
                "fees": {"consultation": "500 rupees", "follow_up": "300 rupees within 7 days"},
                "parking": "Free parking in the basement.",
            },
        },
    )
    ClinicPhoneNumber.objects.update_or_create(
        number=CLINIC_NUMBER, defaults={"clinic": clinic, "label": "Main line"}
    )

    password, generated = _password(password)
    admin = _user(
        ADMIN_EMAIL, clinic, Role.ADMIN, password, first="Clinic", last="Admin", operator=True
    )
    _user(
        "reception@clinic.com", clinic, Role.RECEPTIONIST, password, first="Asha", last="Front Desk"
    )
    _user("priya.sharma@clinic.com", clinic, Role.DOCTOR, password, first="Priya", last="Sharma")

    doctors = []
    for spec in DOCTORS:
        doctor, created = Doctor.objects.get_or_create(
            clinic=clinic,
            name=spec["name"],
            defaults={k: v for k, v in spec.items() if k != "name"},
        )
        if created:
            services.update_doctor(doctor=doctor, changes={"working_hours": spec["working_hours"]})
        doctors.append(doctor)

    patients = []
    for name, phone, dob, language in PATIENTS:
        patient, _ = Patient.objects.get_or_create(
            clinic=clinic,
            phone=phone,
            name=name,
            defaults={"date_of_birth": dob, "language_preference": language},
        )
        patients.append(patient)

    if not Appointment.objects.filter(clinic=clinic).exists():
        with unannounced():  # demo bookings are nobody's news: no SMS, no webhooks
            _history(clinic, doctors, patients, now)
            _upcoming(clinic, doctors, patients, now, admin)
            _leave(doctors, now)
    if not CallLog.objects.filter(clinic=clinic).exists():
        _calls(clinic, patients, now)

    return {"clinic": clinic, "email": ADMIN_EMAIL, "password": password, "generated": generated}


def _history(clinic, doctors, patients, now):
    rng = random.Random(7)
    tz = clinic.tzinfo
    today = timezone.localtime(now, tz).date()
    rows = []
    for days_ago in range(1, 21):
        day = today - timedelta(days=days_ago)
        for doctor in doctors:
            for period in services.opening_periods(doctor, day, None)[:1]:
                slot = period[0]
                for _ in range(rng.randint(1, 3)):
                    status = rng.choices(
                        [
                            AppointmentStatus.COMPLETED,
                            AppointmentStatus.NO_SHOW,
                            AppointmentStatus.CANCELLED,
                        ],
                        weights=[8, 1, 1],
                    )[0]
                    rows.append(
                        Appointment(
                            clinic=clinic,
                            patient=rng.choice(patients),
                            doctor=doctor,
                            scheduled_time=slot,
                            end_time=slot + timedelta(minutes=30),
                            duration_minutes=30,
                            status=status,
                            reason=rng.choice(REASONS),
                            source=rng.choice(
                                [BookingSource.VOICE, BookingSource.UI, BookingSource.API]
                            ),
                            cancellation_reason="Patient unavailable"
                            if status == AppointmentStatus.CANCELLED
                            else "",
                            cancelled_at=slot - timedelta(days=1)
                            if status == AppointmentStatus.CANCELLED
                            else None,
                        )
                    )
                    slot += timedelta(minutes=30)
    Appointment.objects.bulk_create(rows)


def _upcoming(clinic, doctors, patients, now, admin):
    rng = random.Random(11)
    for days_ahead in range(0, 8):
        day = timezone.localtime(now, clinic.tzinfo).date() + timedelta(days=days_ahead)
        for doctor in doctors:
            slots = services.available_slots(doctor=doctor, day=day, duration_minutes=30, now=now)
            for slot in rng.sample(slots, k=min(len(slots), rng.randint(1, 4))):
                try:
                    services.book_appointment(
                        clinic=clinic,
                        patient_id=rng.choice(patients).pk,
                        doctor_id=doctor.pk,
                        scheduled_time=slot.start,
                        duration_minutes=30,
                        reason=rng.choice(REASONS),
                        source=rng.choice([BookingSource.VOICE, BookingSource.UI]),
                        booked_by=admin,
                        now=now,
                    )
                except ApiError:  # a slot taken by an earlier pick: skip it
                    continue


def _leave(doctors, now):
    sharma = doctors[0]
    next_saturday = timezone.localdate(now) + timedelta(
        days=(5 - timezone.localdate(now).weekday()) % 7 + 7
    )
    DoctorScheduleException.objects.get_or_create(
        doctor=sharma,
        date=next_saturday,
        defaults={"kind": ScheduleExceptionKind.LEAVE, "note": "Medical conference"},
    )


def _calls(clinic, patients, now):
    rajesh = patients[0]
    appointment = (
        Appointment.objects.filter(clinic=clinic, patient=rajesh)
        .order_by("-scheduled_time")
        .first()
    )
    started = now - timedelta(hours=3)
    turns = [
        {
            "speaker": "agent",
            "text": "Namaste! Vaani Demo Clinic mein aapka swagat hai. "
            "Main aapki kya madad kar sakti hoon?",
            "language": "hi-en",
        },
        {
            "speaker": "patient",
            "text": "Mujhe Dr. Sharma se appointment chahiye kal subah",
            "language": "hi-en",
        },
        {
            "speaker": "agent",
            "text": "Kal subah 10 baje Dr. Priya Sharma ke saath slot khaali hai. Book kar doon?",
            "language": "hi-en",
        },
        {"speaker": "patient", "text": "Haan, kar dijiye", "language": "hi-en"},
        {
            "speaker": "agent",
            "text": "Ho gaya! Aapko SMS se confirmation mil jayega. Dhanyavaad!",
            "language": "hi-en",
        },
    ]
    for offset, turn in enumerate(turns):
        turn["time"] = (started + timedelta(seconds=8 * offset)).strftime("%Y-%m-%dT%H:%M:%SZ")
    CallLog.objects.create(
        clinic=clinic,
        call_sid="CA" + "0" * 30 + "01",
        patient=rajesh,
        from_number=rajesh.phone,
        to_number=CLINIC_NUMBER,
        duration_seconds=52,
        status=CallStatus.COMPLETED,
        language="hi-en",
        transcript="\n".join(f"{t['speaker']}: {t['text']}" for t in turns),
        turns=turns,
        summary="Patient booked an appointment with Dr. Priya Sharma.",
        sentiment=Sentiment.POSITIVE,
        intents_detected=["book_appointment", "ask_doctor_availability"],
        appointment_created=appointment,
        latency={"turn_p50_ms": 640, "turn_p95_ms": 780},
        providers={"stt": "pocketsphinx", "tts": "espeak-ng", "agent": "rules"},
        started_at=started,
        ended_at=started + timedelta(seconds=52),
    )
    CallLog.objects.create(
        clinic=clinic,
        call_sid="CA" + "0" * 30 + "02",
        patient=patients[3],
        from_number=patients[3].phone,
        to_number=CLINIC_NUMBER,
        duration_seconds=31,
        status=CallStatus.COMPLETED,
        language="en",
        transcript="patient: What are your clinic hours?\n"
        "agent: We are open Monday to Saturday, 9 am to 7 pm.",
        turns=[
            {"speaker": "patient", "text": "What are your clinic hours?", "language": "en"},
            {
                "speaker": "agent",
                "text": "We are open Monday to Saturday, 9 am to 7 pm.",
                "language": "en",
            },
        ],
        summary="Caller asked for clinic hours.",
        sentiment=Sentiment.NEUTRAL,
        intents_detected=["clinic_information"],
        started_at=now - timedelta(hours=1),
        ended_at=now - timedelta(hours=1) + timedelta(seconds=31),
    )
    CallLog.objects.create(
        clinic=clinic,
        call_sid="CA" + "0" * 30 + "03",
        from_number="+919800000099",
        to_number=CLINIC_NUMBER,
        duration_seconds=0,
        status=CallStatus.NO_ANSWER,
    )


__all__ = ["seed_demo"]
