"""The read serializers' fast paths answer exactly what DRF's field-by-field path answers."""

import json
from datetime import timedelta

import pytest
from rest_framework import serializers

from clinic import selectors
from clinic.api import serializers as s
from clinic.api.views import _day_shape
from clinic.tests.factories import AppointmentFactory, DoctorFactory, PatientFactory

pytestmark = pytest.mark.django_db


def drf(serializer, instance):
    """DRF's generic output: every declared field, in order (the fast path bypassed)."""
    return serializers.Serializer.to_representation(serializer, instance)


def same(fast, slow):
    # Equal values and the same key order (the JSON bytes clients get).
    assert json.dumps(fast) == json.dumps(slow)


def test_appointment_and_history_items(clinic, at):
    patient = PatientFactory(clinic=clinic, date_of_birth=None)
    doctor = DoctorFactory(clinic=clinic)
    AppointmentFactory(clinic=clinic, patient=patient, doctor=doctor, scheduled_time=at("10:00"))
    AppointmentFactory(
        clinic=clinic, patient=patient, doctor=doctor, scheduled_time=at("11:00"), notes="n"
    )
    rows = list(selectors.appointment_list(clinic=clinic))
    assert len(rows) == 2
    values = list(
        selectors.appointment_list(clinic=clinic).values(*s.AppointmentSerializer.COLUMNS)
    )
    for row, value_row in zip(rows, values, strict=True):
        same(s.AppointmentSerializer(row).data, drf(s.AppointmentSerializer(), row))
        # The list answers from values() rows: the very same output.
        same(s.AppointmentSerializer(value_row).data, drf(s.AppointmentSerializer(), row))
        same(
            s.PatientHistoryItemSerializer().to_representation(row),
            drf(s.PatientHistoryItemSerializer(), row),
        )
    history = selectors.patient_history(patient, s.PatientHistoryItemSerializer.COLUMNS)
    newest_first = sorted(rows, key=lambda a: a.scheduled_time, reverse=True)
    for history_row, appointment in zip(history, newest_first, strict=True):
        same(
            s.PatientHistoryItemSerializer().to_representation(history_row),
            drf(s.PatientHistoryItemSerializer(), appointment),
        )


def test_patient_list_and_detail(clinic, at, future_day):
    patient = PatientFactory(clinic=clinic)
    bare = PatientFactory(clinic=clinic, date_of_birth=None)
    AppointmentFactory(clinic=clinic, patient=patient, scheduled_time=at("10:00"))
    context = {"today": future_day}
    for pk in (patient.pk, bare.pk):
        row = selectors.patient_detail(clinic=clinic, patient_id=pk)
        same(
            s.PatientSerializer(row, context=context).data,
            drf(s.PatientSerializer(context=context), row),
        )
        detail_context = {
            **context,
            "history": selectors.patient_history(row, s.PatientHistoryItemSerializer.COLUMNS),
        }
        same(
            s.PatientDetailSerializer(row, context=detail_context).data,
            drf(s.PatientDetailSerializer(context=detail_context), row),
        )


def test_slots_and_schedule(clinic, at, future_day):
    doctor = DoctorFactory(clinic=clinic)
    AppointmentFactory(clinic=clinic, doctor=doctor, scheduled_time=at("10:00"))
    slots = {
        "doctor_id": doctor.pk,
        "doctor_name": doctor.name,
        "date": future_day,
        "duration_minutes": 30,
        "available_slots": [
            {"start_time": at("09:00"), "end_time": at("09:30")},
            {"start_time": at("09:30"), "end_time": at("10:00")},
        ],
        "total_slots": 2,
    }
    same(s.AvailableSlotsSerializer(slots).data, drf(s.AvailableSlotsSerializer(), slots))

    tz = clinic.tzinfo
    week_start = future_day - timedelta(days=future_day.weekday())
    days = selectors.doctor_schedule(doctor=doctor, first_day=week_start, days=7)
    shaped = [_day_shape(doctor, d, tz) for d in days]
    base = {"doctor_id": doctor.pk, "doctor_name": doctor.name, "time_zone": clinic.time_zone}
    single = {**base, **shaped[0]}
    week = {
        **base,
        "date": future_day,
        "week_start": days[0].date,
        "week_end": days[-1].date,
        "days": shaped,
        "appointments": [a for d in shaped for a in d["appointments"]],
        "working_hours": [],
        "day_off": None,
        "total_appointments": 1,
        "available_slots": 3,
    }
    for data in (single, week):
        same(s.DoctorScheduleSerializer(data).data, drf(s.DoctorScheduleSerializer(), data))
