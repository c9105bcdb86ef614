from datetime import timedelta

import factory
from django.utils import timezone

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
from clinic.schedule import WEEKDAYS

ALL_WEEK_HOURS = {day: ["09:00-13:00", "14:00-18:00"] for day in WEEKDAYS}


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic

    name = factory.Sequence(lambda n: f"Clinic {n}")
    slug = factory.Sequence(lambda n: f"clinic-{n}")
    time_zone = "Asia/Kolkata"
    front_desk_phone = "+918041234567"


class ClinicPhoneNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClinicPhoneNumber

    clinic = factory.SubFactory(ClinicFactory)
    number = factory.Sequence(lambda n: f"+9180400{n:05d}")


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Patient {n}")
    phone = factory.Sequence(lambda n: f"+9198765{n:05d}")
    language_preference = "hi"


class DoctorFactory(factory.django.DjangoModelFactory):
    """Works 09:00-13:00 and 14:00-18:00 every day, clinic time, unless told otherwise."""

    class Meta:
        model = Doctor

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Dr. Doctor {n}")
    specialization = "General Physician"
    phone = factory.Sequence(lambda n: f"+9198110{n:05d}")
    email = factory.Sequence(lambda n: f"doctor{n}@clinic.test")
    available = True
    working_hours = factory.LazyFunction(lambda: dict(ALL_WEEK_HOURS))


class ScheduleExceptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DoctorScheduleException

    doctor = factory.SubFactory(DoctorFactory)
    date = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=3))
    kind = ScheduleExceptionKind.LEAVE


class AppointmentFactory(factory.django.DjangoModelFactory):
    """Written directly (no rules checked): for history and fixtures. Book through services
    when the rules are what is tested."""

    class Meta:
        model = Appointment

    clinic = factory.SubFactory(ClinicFactory)
    patient = factory.SubFactory(PatientFactory, clinic=factory.SelfAttribute("..clinic"))
    doctor = factory.SubFactory(DoctorFactory, clinic=factory.SelfAttribute("..clinic"))
    scheduled_time = factory.LazyFunction(lambda: timezone.now() + timedelta(days=2))
    duration_minutes = 30
    status = AppointmentStatus.SCHEDULED
    reason = "Checkup"
    source = BookingSource.API
