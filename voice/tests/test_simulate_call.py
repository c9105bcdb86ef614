"""``manage.py simulate_call``: the command a new user runs to phone the clinic."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError

from clinic.models import Appointment, Clinic
from voice.models import CallLog
from voice.tests.conftest import BOOKING, CALLER, CLINIC_NUMBER, tomorrow_at


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_simulated_call_prints_the_dialog_the_booking_and_the_latencies(line):
    clinic, _doctor, patient = line
    out = StringIO()
    call_command(
        "simulate_call", "--clinic", clinic.slug, "--from", CALLER,
        "--say", BOOKING, "--say", "yes", stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    appointment = Appointment.objects.get(patient=patient)
    assert appointment.scheduled_time == tomorrow_at(clinic, 10)
    log = CallLog.objects.get()
    assert log.appointment_created == appointment and log.finalized_at is not None
    assert f"Calling {clinic.name} ({CLINIC_NUMBER}) from {CALLER}" in text
    assert "  Caller: i want to book an appointment with doctor sharma" in text
    assert text.count("  Agent : ") >= 3  # greeting, the offer, the read-back
    assert f"Appointment {appointment.pk}: Ravi Verma with Dr. Priya Sharma" in text
    assert "Turn 1: transcript " in text and "Turn 2: transcript " in text


@pytest.mark.django_db
def test_an_unknown_clinic_is_a_clear_error(clinic):
    with pytest.raises(CommandError, match=r"No clinic 'nowhere'\. Run `manage\.py seed_demo`"):
        call_command("simulate_call", "--clinic", "nowhere", "--say", "hello")


@pytest.mark.django_db
def test_a_clinic_without_a_number_is_a_clear_error(clinic):
    with pytest.raises(CommandError, match="has no phone number to dial"):
        call_command("simulate_call", "--clinic", clinic.slug, "--say", "hello")


@pytest.mark.django_db
def test_a_database_without_tables_is_a_clear_error(monkeypatch):
    # A fresh checkout before `dev.py serve`: "no such table", not a traceback.
    def no_table(*args, **kwargs):
        raise OperationalError("no such table: clinic_clinic")

    monkeypatch.setattr(Clinic.objects, "filter", no_table)
    with pytest.raises(CommandError, match=r"The database is not ready .*dev\.py serve"):
        call_command("simulate_call", "--say", "hello")
