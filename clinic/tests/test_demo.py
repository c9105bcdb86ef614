"""The demo clinic a new user gets from ``dev.py serve`` (``manage.py seed_demo``)."""

import pytest
from django.core.management import call_command

from clinic.demo import CLINIC_NUMBER, seed_demo
from clinic.models import Appointment, AppointmentStatus, Clinic, Doctor, Patient
from clinic.signals import AppointmentEvent, announce_appointment_change, unannounced
from notifications.models import OutboundMessage
from voice.models import CallLog

pytestmark = pytest.mark.django_db(transaction=True)


def _counts():
    return (
        Clinic.objects.count(),
        Doctor.objects.count(),
        Patient.objects.count(),
        Appointment.objects.count(),
        CallLog.objects.count(),
    )


def test_demo_clinic_has_doctors_patients_upcoming_bookings_and_calls():
    result = seed_demo(password="demo-password-123")

    clinic = result["clinic"]
    assert clinic.phone_numbers.filter(number=CLINIC_NUMBER).exists()
    assert Doctor.objects.filter(clinic=clinic).count() >= 3
    assert Patient.objects.filter(clinic=clinic).count() >= 5
    assert Appointment.objects.filter(clinic=clinic, status=AppointmentStatus.SCHEDULED).exists()
    assert CallLog.objects.filter(clinic=clinic).exists()
    assert result["email"] == "admin@clinic.com" and not result["generated"]


def test_demo_bookings_text_nobody():
    seed_demo(password="demo-password-123")

    assert Appointment.objects.exists()
    assert not OutboundMessage.objects.exists()


def test_seeding_twice_changes_nothing(capsys, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "demo-password-123")
    call_command("seed_demo")
    before = _counts()
    call_command("seed_demo")

    assert _counts() == before
    assert "admin@clinic.com" in capsys.readouterr().out


def test_unannounced_changes_reach_no_receiver(monkeypatch):
    heard = []
    monkeypatch.setattr("clinic.signals.transaction.on_commit", lambda fn, **kw: heard.append(fn))

    with unannounced():
        announce_appointment_change(AppointmentEvent.CREATED, object())
    assert heard == []
    announce_appointment_change(AppointmentEvent.CREATED, object())  # outside: announced
    assert len(heard) == 1
