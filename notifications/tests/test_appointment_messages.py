"""Booking, moving and cancelling tell the patient (§4.3-4.5), once, and only on commit."""

from datetime import timedelta

import pytest
from django.db import transaction

from clinic import services as clinic_services
from clinic.tests.factories import PatientFactory
from notifications import services, tasks
from notifications.models import (
    Channel,
    ContactPreference,
    MessageKind,
    MessageStatus,
    NotificationSettings,
    OutboundMessage,
)

pytestmark = pytest.mark.django_db


def test_booking_sends_a_confirmation_and_stores_it(book, at, patient, doctor, outbox):
    appointment = book(at("10:00"))
    assert len(outbox) == 1
    sent = outbox[0]
    assert sent.to == "+919876543210" and sent.channel == "sms"
    assert sent.sender == "+14155550100"
    assert "confirmed for" in sent.body and "10:00 AM" in sent.body  # local time
    assert "Dr. Asha Rao" in sent.body and appointment.clinic.name in sent.body
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    assert message.status == MessageStatus.SENT
    assert message.provider_id.startswith("SM") and message.attempts == 1
    assert (message.clinic, message.patient, message.appointment) == (
        appointment.clinic,
        patient,
        appointment,
    )
    assert message.body == sent.body and message.sent_at is not None
    assert sent.status_callback == (f"https://clinic.example.com/api/v1/sms/status?m={message.pk}")


def test_the_api_messages_of_the_reference_are_true(
    api, clinic, doctor, patient, at, commits, outbox
):
    with commits():
        created = api.post(
            "/api/v1/appointments",
            {
                "patient_id": patient.pk,
                "doctor_id": doctor.pk,
                "scheduled_time": at("10:00").isoformat(),
                "duration_minutes": 30,
            },
        )
    assert created.json()["message"] == "Appointment created successfully. SMS confirmation sent."
    appointment_id = created.json()["data"]["id"]
    with commits():
        api.put(
            f"/api/v1/appointments/{appointment_id}", {"scheduled_time": at("11:00").isoformat()}
        )
    with commits():
        api.delete(f"/api/v1/appointments/{appointment_id}?reason=Unwell")
    assert [m.body.split(",")[0] for m in outbox] == ["Hi Ravi Kumar"] * 3
    assert "is now on" in outbox[1].body and "11:00 AM" in outbox[1].body
    assert "(was " in outbox[1].body and "10:00 AM)" in outbox[1].body
    assert "is cancelled" in outbox[2].body and "11:00 AM" in outbox[2].body
    kinds = OutboundMessage.objects.filter(status=MessageStatus.SENT).values_list("kind", flat=True)
    assert sorted(kinds) == ["cancellation", "confirmation", "reschedule"]


def test_a_rolled_back_booking_sends_nothing(clinic, doctor, patient, at, commits, outbox):
    with commits() as callbacks, transaction.atomic():
        clinic_services.book_appointment(
            clinic=clinic, patient_id=patient.pk, doctor_id=doctor.pk, scheduled_time=at("10:00")
        )
        transaction.set_rollback(True)
    assert callbacks == []
    assert outbox == [] and not OutboundMessage.objects.exists()


def test_a_failure_in_messaging_never_fails_the_booking(book, at, monkeypatch, outbox):
    def broken(*args, **kwargs):
        raise RuntimeError("template store down")

    monkeypatch.setattr(services, "render_appointment_message", broken)
    appointment = book(at("10:00"))
    assert appointment.pk and outbox == []


def test_the_send_task_run_twice_sends_once(book, at, clinic, doctor, patient, outbox, commits):
    book(at("10:00"))
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    tasks.send_message.delay(message.pk)  # redelivered by the broker
    tasks.send_message.apply(args=[message.pk])
    assert len(outbox) == 1
    message.refresh_from_db()
    assert message.attempts == 1


def test_the_same_event_twice_queues_one_message(book, at, outbox, commits):
    appointment = book(at("10:00"))
    with commits():
        services.handle_appointment_event("appointment.created", appointment)
    assert len(outbox) == 1
    assert OutboundMessage.objects.filter(kind=MessageKind.CONFIRMATION).count() == 1


def test_two_reschedules_to_and_fro_send_two_notices(book, at, outbox, commits):
    appointment = book(at("10:00"))
    for clock in ("11:00", "10:00"):
        with commits():
            appointment = clinic_services.update_appointment(
                appointment=appointment, changes={"scheduled_time": at(clock)}
            )
    notices = [m.body for m in outbox[1:]]
    assert len(notices) == 2
    assert "11:00 AM" in notices[0].split("(was")[0] and "10:00 AM" in notices[1].split("(was")[0]


def test_an_edit_that_does_not_move_the_appointment_sends_nothing(book, at, outbox, commits):
    appointment = book(at("10:00"))
    with commits():
        clinic_services.update_appointment(appointment=appointment, changes={"notes": "x-ray"})
    assert len(outbox) == 1


def test_opted_out_patients_get_nothing_and_the_skip_is_recorded(book, at, clinic, patient, outbox):
    services.set_opt_out(clinic=clinic, phone=patient.phone, opted_out=True)
    book(at("10:00"))
    assert outbox == []
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    assert message.status == MessageStatus.SKIPPED and "opted out" in message.error_message


def test_opt_out_is_per_clinic(book, at, other_clinic, patient, outbox):
    services.set_opt_out(clinic=other_clinic, phone=patient.phone, opted_out=True)
    book(at("10:00"))
    assert len(outbox) == 1


def test_an_opt_out_after_queueing_is_honoured_when_sending(
    clinic, doctor, patient, at, commits, outbox
):
    with commits():
        appointment = clinic_services.book_appointment(
            clinic=clinic, patient_id=patient.pk, doctor_id=doctor.pk, scheduled_time=at("10:00")
        )
        # The patient texts STOP before the worker gets to the confirmation.
        services.set_opt_out(clinic=clinic, phone=patient.phone, opted_out=True)
    assert appointment.pk and outbox == []
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    assert message.status == MessageStatus.SKIPPED


def test_whatsapp_for_patients_who_chose_it(book, at, patient, outbox):
    ContactPreference.objects.create(patient=patient, channel=Channel.WHATSAPP)
    book(at("10:00"))
    assert outbox[0].channel == "whatsapp" and outbox[0].sender == "+14155550199"


def test_whatsapp_off_at_the_clinic_means_sms(book, at, clinic, patient, outbox):
    ContactPreference.objects.create(patient=patient, channel=Channel.WHATSAPP)
    NotificationSettings.objects.create(
        clinic=clinic, whatsapp_enabled=False, sms_sender="+14155550123"
    )
    book(at("10:00"))
    assert outbox[0].channel == "sms" and outbox[0].sender == "+14155550123"


def test_a_family_phone_gets_each_patients_own_language(book, at, clinic, patient, outbox):
    mother = PatientFactory(
        clinic=clinic, name="Sita Kumar", phone=patient.phone, language_preference="hi"
    )
    book(at("10:00"))
    book(at("11:00"), who=mother)
    assert outbox[0].body.startswith("Hi Ravi Kumar")
    assert outbox[1].body.startswith("नमस्ते Sita Kumar")


def test_a_confirmation_for_an_appointment_cancelled_before_it_went_is_void(
    clinic, doctor, patient, at, commits, outbox
):
    appointment = clinic_services.book_appointment(
        clinic=clinic, patient_id=patient.pk, doctor_id=doctor.pk, scheduled_time=at("10:00")
    )
    message = services.queue_appointment_message(
        appointment, MessageKind.CONFIRMATION, key="confirmation:test"
    )
    clinic_services.cancel_appointment(appointment=appointment)
    services.deliver(message.pk)
    message.refresh_from_db()
    assert message.status == MessageStatus.CANCELLED and outbox == []


def test_transient_failures_are_retried_then_sent(book, at, monkeypatch, outbox, settings):
    from notifications import backends

    calls = []

    class Flaky(backends.LocmemBackend):
        def send(self, message):
            calls.append(message)
            if len(calls) < 3:
                raise backends.SendError("timeout", code="network", transient=True)
            return super().send(message)

    monkeypatch.setitem(backends.BACKENDS, "flaky", Flaky)
    settings.SMS_BACKEND = "flaky"
    book(at("10:00"))  # eager Celery: the retries run at once
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    assert len(calls) == 3 and len(outbox) == 1
    assert message.status == MessageStatus.SENT and message.attempts == 3
    assert message.error_message == ""


def test_a_message_that_keeps_failing_ends_failed(book, at, monkeypatch, outbox, settings):
    from notifications import backends

    class Down(backends.LocmemBackend):
        def send(self, message):
            raise backends.SendError("503 from Twilio", code="503", transient=True)

    monkeypatch.setitem(backends.BACKENDS, "down", Down)
    settings.SMS_BACKEND = "down"
    appointment = book(at("10:00"))
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    assert appointment.pk
    assert message.status == MessageStatus.FAILED
    assert message.attempts == services.MAX_SEND_ATTEMPTS
    assert (message.error_code, message.error_message) == ("503", "503 from Twilio")


def test_retry_backoff_stays_below_the_visibility_timeout(settings):
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    delays = [services.retry_delay(n) for n in range(services.MAX_SEND_ATTEMPTS)]
    assert delays == sorted(delays) and delays[0] == 60
    assert max(delays) < 3600
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
    assert all(services.retry_delay(n) < 300 for n in range(10))


def test_the_task_is_late_acknowledged(settings):
    assert tasks.send_message.acks_late and tasks.send_message.reject_on_worker_lost
    assert settings.CELERY_BEAT_SCHEDULE["notifications-dispatch-due-messages"]["task"] == (
        tasks.dispatch_due_messages.name
    )
    assert settings.CELERY_BEAT_SCHEDULE["notifications-dispatch-due-messages"][
        "schedule"
    ] <= timedelta(minutes=5)


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_one_message_send_it_once(clinic, patient, monkeypatch, settings):
    import threading
    import time

    from django.db import connection

    from notifications import backends

    class Slow(backends.LocmemBackend):
        def send(self, message):
            time.sleep(0.2)  # both workers are inside deliver() at once
            return super().send(message)

    monkeypatch.setitem(backends.BACKENDS, "slow", Slow)
    settings.SMS_BACKEND = "slow"
    message = OutboundMessage.objects.create(
        clinic=clinic,
        patient=patient,
        kind=MessageKind.REPLY,
        to=patient.phone,
        body="Hello",
        idempotency_key="race",
        status=MessageStatus.QUEUED,
    )
    results, start = [], threading.Barrier(2)

    def worker():
        try:
            start.wait()
            results.append(services.deliver(message.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=str) == [None, "sent"]
    assert len(backends.LocmemBackend.outbox) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 1)
