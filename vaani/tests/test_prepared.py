"""vaani.common.prepared: a queryset compiled once answers as the queryset does."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic import selectors, services
from clinic.models import Appointment, Patient
from clinic.tests.factories import (
    AppointmentFactory,
    DoctorFactory,
    PatientFactory,
    ScheduleExceptionFactory,
)
from vaani.common.prepared import _UNPREPARABLE, PreparedQuery

pytestmark = pytest.mark.django_db


@pytest.fixture
def booked(clinic, at, future_day):
    doctor = DoctorFactory(clinic=clinic)
    patient = PatientFactory(clinic=clinic)
    first = AppointmentFactory(
        clinic=clinic, doctor=doctor, patient=patient, scheduled_time=at("10:00")
    )
    AppointmentFactory(clinic=clinic, doctor=doctor, patient=patient, scheduled_time=at("11:00"))
    AppointmentFactory(
        clinic=clinic,
        doctor=doctor,
        patient=patient,
        scheduled_time=at("12:00"),
        status="cancelled",
    )
    ScheduleExceptionFactory(doctor=doctor, date=future_day + timedelta(days=1))
    return doctor, patient, first


def _orm_and_prepared(build, **arguments):
    prepared = PreparedQuery(build)
    first = prepared(**arguments)  # compiles
    again = prepared(**arguments)
    assert first == again
    assert all(c is not _UNPREPARABLE for c in prepared._compiled.values()), "ran through the ORM"
    return list(build(**arguments)), again


def test_values_tuples_flat_and_models_match_the_orm(booked, at):
    doctor, patient, first = booked
    start, end = at("09:00"), at("13:00")

    def busy(doctor_id, start, end, earliest, exclude_id):
        return services._busy_query(doctor_id, start, end, earliest, exclude_id)

    for exclude_id in (None, first.pk):
        orm, fast = _orm_and_prepared(
            busy,
            doctor_id=doctor.pk,
            start=start,
            end=end,
            earliest=services.earliest_overlap(start),
            exclude_id=exclude_id,
        )
        assert fast == orm and len(fast) == (2 if exclude_id is None else 1)

    orm, fast = _orm_and_prepared(
        lambda patient_id: (
            Appointment.objects.filter(patient_id=patient_id)
            .order_by("-scheduled_time")
            .values("id", "doctor__name", "scheduled_time", "status")
        ),
        patient_id=patient.pk,
    )
    assert fast == orm and len(fast) == 3

    orm, fast = _orm_and_prepared(
        lambda patient_id: Appointment.objects.filter(patient_id=patient_id).values_list(
            "id", flat=True
        ),
        patient_id=patient.pk,
    )
    assert fast == orm

    now = timezone.now()
    orm, fast = _orm_and_prepared(
        selectors._patient_detail_query, clinic_id=patient.clinic_id, patient_id=patient.pk, now=now
    )
    assert [p.pk for p in fast] == [patient.pk]
    fields = [f.attname for f in Patient._meta.concrete_fields]
    figures = ["total_appointments", "last_appointment", "upcoming_appointments"]
    assert [[getattr(p, f) for f in fields + figures] for p in fast] == [
        [getattr(p, f) for f in fields + figures] for p in orm
    ]
    assert fast[0].total_appointments == 2 and fast[0].upcoming_appointments == 2
    assert fast[0]._state.adding is False and fast[0]._state.db == "default"


def test_services_answer_as_before_and_in_one_query_each(booked, clinic, other_clinic, future_day):
    doctor, _, _ = booked
    with CaptureQueriesContext(connection) as queries:
        found = services.get_doctor(clinic=clinic, doctor_id=doctor.pk)
        assert found == doctor and found.clinic is clinic  # the caller's clinic, no query
        assert found.working_hours == doctor.working_hours
        exception = services.exception_on(doctor, future_day + timedelta(days=1))
        assert exception is not None and exception.date == future_day + timedelta(days=1)
        assert services.exception_on(doctor, future_day) is None
    assert len(queries) == 3
    with pytest.raises(services.NotFoundError):
        services.get_doctor(clinic=other_clinic, doctor_id=doctor.pk)
    # Beyond any id column (a client's query string): the ORM's answer, not found.
    with pytest.raises(services.NotFoundError):
        services.get_doctor(clinic=clinic, doctor_id=298772248962728263680)
    # Not an int (the voice agent may pass text): the ORM answers, as before.
    assert services.get_doctor(clinic=clinic, doctor_id=str(doctor.pk)) == doctor


def test_a_derived_parameter_is_refused_and_the_orm_answers(booked, at):
    doctor, _, _ = booked
    prepared = PreparedQuery(
        lambda doctor_id, start: Appointment.objects.filter(
            doctor_id=doctor_id, scheduled_time__gte=start - timedelta(hours=1)
        ).values_list("id", flat=True)
    )
    rows = prepared(doctor_id=doctor.pk, start=at("11:00"))
    assert list(prepared._compiled.values()) == [_UNPREPARABLE]
    assert sorted(rows) == sorted(
        Appointment.objects.filter(doctor=doctor, scheduled_time__gte=at("10:00")).values_list(
            "id", flat=True
        )
    )


def test_pages_and_counts_match_the_orm_slice_and_count(booked, clinic, other_clinic, future_day):
    doctor, patient, _ = booked
    columns = ("id", "patient__name", "scheduled_time", "status")
    filters = {"doctor_id": doctor.pk, "start_date": future_day}
    orm = selectors.appointment_list(clinic=clinic, **filters)
    rows = selectors.appointment_rows(clinic=clinic, columns=columns, **filters)
    assert rows.count() == orm.count() == 3
    for start, stop in ((0, 2), (2, 4), (1, 2), (5, 10)):
        assert rows[start:stop] == list(orm.values(*columns)[start:stop])
    assert all(c is not _UNPREPARABLE for c in rows._rows._compiled.values()), "ORM"
    # A page compiles once: other bounds reuse the same SQL (one entry: the page shape).
    assert len(rows._rows._compiled) == 1
    # Nothing matches: a count of 0 (no group at all), an empty page.
    empty = selectors.appointment_rows(clinic=other_clinic, columns=columns, **filters)
    assert empty.count() == 0 and empty[0:20] == []
    scheduled = selectors.appointment_rows(
        clinic=clinic, columns=columns, status="scheduled", patient_id=patient.pk
    )
    assert scheduled.count() == 2
    assert [r["status"] for r in scheduled[0:20]] == ["scheduled", "scheduled"]


def test_a_page_of_a_sliced_queryset_is_refused_and_the_orm_answers(booked):
    doctor, _, _ = booked
    prepared = PreparedQuery(
        lambda doctor_id: (
            Appointment.objects.filter(doctor_id=doctor_id)
            .order_by("scheduled_time")
            .values_list("id", flat=True)[:2]
        )
    )
    assert prepared.page(0, 1, doctor_id=doctor.pk) == list(
        Appointment.objects.filter(doctor=doctor)
        .order_by("scheduled_time")
        .values_list("id", flat=True)[:1]
    )
    assert list(prepared._compiled.values()) == [_UNPREPARABLE]
