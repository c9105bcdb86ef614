"""Reminders: at the clinic's offsets, outside quiet hours, once, and only for the current time."""

import uuid
from datetime import time, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinic import services as clinic_services
from clinic.models import Appointment
from notifications import services, tasks
from notifications.models import MessageKind, MessageStatus, NotificationSettings, OutboundMessage

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


def reminders(**filters):
    return OutboundMessage.objects.filter(kind=MessageKind.REMINDER, **filters).order_by(
        "send_after"
    )


@pytest.fixture
def dispatch(commits):
    def run(now):
        with commits():
            return services.dispatch_due(now=now)

    return run


def sent_reminders(outbox):
    return [m for m in outbox if m.body.startswith("Reminder")]


def test_booking_schedules_the_default_reminders(book, at):
    start = at("10:00")
    appointment = book(start)
    rows = list(reminders())
    assert [(r.reminder_offset_minutes, r.send_after) for r in rows] == [
        (1440, start - 24 * HOUR),
        (120, start - 2 * HOUR),
    ]
    for row in rows:
        assert row.status == MessageStatus.SCHEDULED and row.body == ""
        assert (row.appointment, row.appointment_time) == (appointment, start)


def test_due_reminders_go_out_once_however_often_the_beat_runs(book, at, dispatch, outbox):
    start = at("14:30")
    book(start)
    assert dispatch(start - 24 * HOUR - timedelta(minutes=1)) == 0
    assert dispatch(start - 24 * HOUR + timedelta(minutes=1)) == 1
    assert dispatch(start - 24 * HOUR + timedelta(minutes=3)) == 0
    [reminder] = sent_reminders(outbox)
    assert "Reminder: Ravi Kumar, your appointment with Dr. Asha Rao" in reminder.body
    assert "at 2:30 PM" in reminder.body  # clinic time
    row = reminders().first()
    assert row.status == MessageStatus.SENT and row.attempts == 1 and row.body == reminder.body
    # The broker redelivering the send task changes nothing.
    tasks.send_message.apply(args=[row.pk])
    assert len(sent_reminders(outbox)) == 1
    assert dispatch(start - 2 * HOUR) == 1
    assert len(sent_reminders(outbox)) == 2


def test_the_beat_task_runs_the_dispatch(book, at):
    book(at("10:00"))
    assert tasks.dispatch_due_messages.delay().get() == 0  # nothing due yet


def test_a_reminder_inside_quiet_hours_waits_for_their_end(book, at, clinic):
    start = at("09:00")
    book(start)
    early = reminders().get(reminder_offset_minutes=120)  # 07:00 is quiet
    assert timezone.localtime(early.send_after, clinic.tzinfo).time() == time(8, 0)
    assert early.send_after.date() == start.date()


def test_quiet_hours_never_push_a_reminder_to_or_past_the_start(book, at, clinic):
    NotificationSettings.objects.create(
        clinic=clinic, quiet_hours_start=time(21, 0), quiet_hours_end=time(9, 30)
    )
    start = at("09:00")
    book(start)
    [only] = reminders()
    assert only.reminder_offset_minutes == 1440
    assert only.send_after == start - 24 * HOUR + timedelta(minutes=30)  # 09:30 the day before


def test_quiet_hours_changed_after_scheduling_are_honoured_when_due(
    book, at, clinic, dispatch, outbox
):
    start = at("10:00")
    book(start)
    NotificationSettings.objects.create(
        clinic=clinic, quiet_hours_start=time(9, 0), quiet_hours_end=time(11, 0)
    )
    due = start - 24 * HOUR
    assert dispatch(due) == 0
    row = reminders().first()
    assert row.status == MessageStatus.SCHEDULED and row.send_after == due + HOUR
    assert dispatch(due + HOUR) == 1 and len(sent_reminders(outbox)) == 1


def test_quiet_hours_without_an_end_before_the_start_skip_the_reminder(
    book, at, clinic, dispatch, outbox
):
    start = at("10:00")
    book(start)
    NotificationSettings.objects.create(
        clinic=clinic, quiet_hours_start=time(7, 0), quiet_hours_end=time(12, 0)
    )
    dispatch(start - 2 * HOUR)
    row = reminders().get(reminder_offset_minutes=120)
    assert row.status == MessageStatus.SKIPPED and sent_reminders(outbox) == []


def test_clinic_offsets_are_used(book, at, clinic):
    NotificationSettings.objects.create(clinic=clinic, reminder_offsets_minutes=[60, 180])
    start = at("15:00")
    book(start)
    assert [r.send_after for r in reminders()] == [start - 3 * HOUR, start - HOUR]


def test_no_offsets_no_reminders(book, at, clinic):
    NotificationSettings.objects.create(clinic=clinic, reminder_offsets_minutes=[])
    book(at("10:00"))
    assert not reminders().exists()


def test_reminders_that_are_past_or_would_follow_the_booking_at_once_are_left_out(
    book, at, clinic, patient, doctor
):
    start = at("12:00")
    appointment = book(start)
    OutboundMessage.objects.all().delete()
    # Booked 2 h 10 min ahead: the 24 h reminder is past, the 2 h one would come 10 min
    # after the confirmation.
    assert (
        services.schedule_reminders(appointment, now=start - 2 * HOUR - timedelta(minutes=10)) == []
    )
    assert len(services.schedule_reminders(appointment, now=start - 3 * HOUR)) == 1


def test_a_cancelled_appointment_gets_no_reminder(book, at, commits, dispatch, outbox):
    start = at("10:00")
    appointment = book(start)
    with commits():
        clinic_services.cancel_appointment(appointment=appointment)
    assert set(reminders().values_list("status", flat=True)) == {MessageStatus.CANCELLED}
    dispatch(start - 24 * HOUR)
    dispatch(start - 2 * HOUR)
    assert sent_reminders(outbox) == []
    assert [m.body.split(",")[0] for m in outbox] == ["Hi Ravi Kumar", "Hi Ravi Kumar"]


def test_a_moved_appointment_gets_reminders_for_its_new_time_only(
    book, at, commits, dispatch, outbox
):
    old, new = at("10:00"), at("15:00")
    appointment = book(old)
    with commits():
        clinic_services.update_appointment(appointment=appointment, changes={"scheduled_time": new})
    assert set(reminders(appointment_time=old).values_list("status", flat=True)) == {
        MessageStatus.CANCELLED
    }
    assert list(reminders(appointment_time=new).values_list("send_after", flat=True)) == [
        new - 24 * HOUR,
        new - 2 * HOUR,
    ]
    dispatch(old - 24 * HOUR)
    assert sent_reminders(outbox) == []
    dispatch(new - 24 * HOUR)
    [reminder] = sent_reminders(outbox)
    assert "at 3:00 PM" in reminder.body


def test_moving_away_and_back_revives_the_first_reminders(book, at, commits):
    first, second = at("10:00"), at("15:00")
    appointment = book(first)
    for when in (second, first):
        with commits():
            appointment = clinic_services.update_appointment(
                appointment=appointment, changes={"scheduled_time": when}
            )
    assert reminders(appointment_time=first, status=MessageStatus.SCHEDULED).count() == 2
    assert reminders(appointment_time=second, status=MessageStatus.CANCELLED).count() == 2
    assert reminders().count() == 4


def test_a_reminder_is_checked_against_the_appointment_when_due(book, at, dispatch, outbox):
    start = at("10:00")
    appointment = book(start)
    # Changed without the signal (a data fix, another path): the reminder still knows.
    Appointment.objects.filter(pk=appointment.pk).update(
        scheduled_time=start + HOUR, end_time=appointment.end_time + HOUR
    )
    dispatch(start - 24 * HOUR)
    row = reminders().first()
    assert row.status == MessageStatus.CANCELLED and row.error_message == "The appointment moved"
    assert sent_reminders(outbox) == []


def test_a_reminder_due_after_the_start_is_void(book, at, dispatch, outbox):
    start = at("10:00")
    book(start)
    dispatch(start + timedelta(minutes=5))  # the beat was down for a day
    assert sent_reminders(outbox) == []
    assert set(reminders().values_list("status", flat=True)) == {MessageStatus.CANCELLED}


def test_the_reminder_speaks_the_language_the_patient_has_when_it_goes(
    book, at, patient, dispatch, outbox
):
    start = at("10:00")
    book(start)
    patient.language_preference = "hi"
    patient.save()
    dispatch(start - 24 * HOUR)
    assert outbox[-1].body.startswith("याद दिला दें: Ravi Kumar")
    assert "सुबह 10:00 बजे" in outbox[-1].body


def test_an_opt_out_stops_later_reminders(book, at, clinic, patient, dispatch, outbox):
    start = at("10:00")
    book(start)
    services.set_opt_out(clinic=clinic, phone=patient.phone, opted_out=True)
    dispatch(start - 24 * HOUR)
    assert sent_reminders(outbox) == []
    assert reminders().first().status == MessageStatus.SKIPPED


def test_the_database_refuses_a_second_reminder_for_the_same_time_and_offset(book, at):
    book(at("10:00"))
    first = reminders().first()
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboundMessage.objects.create(
            clinic=first.clinic,
            appointment=first.appointment,
            kind=MessageKind.REMINDER,
            to=first.to,
            idempotency_key="another-key",
            appointment_time=first.appointment_time,
            reminder_offset_minutes=first.reminder_offset_minutes,
        )


def test_a_lost_send_task_is_enqueued_again(book, at, dispatch, outbox):
    book(at("10:00"))
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    # As if the broker lost the task: queued, never sent.
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.QUEUED, provider_id="", handed_at=None
    )
    outbox.clear()
    now = timezone.now()
    assert dispatch(now) == 0  # give the task time first
    assert dispatch(now + services.QUEUED_STALE_AFTER + timedelta(seconds=1)) == 1
    assert len(outbox) == 1


def _interrupted(message, *, handed: bool):
    """As a worker killed mid-send leaves it: claimed, maybe handed to the provider."""
    now = timezone.now()
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENDING,
        claimed_at=now,
        claim_token=uuid.uuid4(),
        handed_at=now if handed else None,
        provider_id="",
        sent_at=None,
    )


def test_a_send_interrupted_before_the_hand_over_is_sent_once_after_the_lease(
    book, at, dispatch, outbox
):
    book(at("10:00"))
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    _interrupted(message, handed=False)
    outbox.clear()
    assert dispatch(timezone.now() + timedelta(minutes=1)) == 0  # its worker may be alive
    assert outbox == []
    assert dispatch(timezone.now() + services.sending_stale_after() + timedelta(seconds=1)) == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and len(outbox) == 1
    assert message.provider_id == outbox[0].provider_id
    assert dispatch(timezone.now() + services.sending_stale_after() * 2) == 0
    assert len(outbox) == 1


def test_a_send_interrupted_after_the_provider_took_it_is_not_repeated(book, at, dispatch, outbox):
    book(at("10:00"))
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    [taken] = outbox  # the provider has it; the worker died before recording it
    _interrupted(message, handed=True)
    dispatch(timezone.now() + services.sending_stale_after() + timedelta(seconds=1))
    message.refresh_from_db()
    assert (message.status, message.provider_id) == (MessageStatus.SENT, taken.provider_id)
    assert len(outbox) == 1


def test_a_stale_send_the_provider_never_got_is_sent_again(book, at, dispatch, outbox):
    book(at("10:00"))
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    _interrupted(message, handed=True)
    outbox.clear()  # the provider never got it
    dispatch(timezone.now() + services.sending_stale_after() + timedelta(seconds=1))
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and len(outbox) == 1


def test_the_console_backend_prints_an_interrupted_message_again(
    book, at, dispatch, settings, caplog
):
    """Embedded mode: nothing left the machine, so there is nothing to reconcile with."""
    settings.SMS_BACKEND = "console"
    book(at("10:00"))
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    assert message.status == MessageStatus.SENT and message.provider_id.startswith("console-")
    _interrupted(message, handed=True)
    caplog.clear()
    with caplog.at_level("INFO", logger="notifications.backends"):
        dispatch(timezone.now() + services.sending_stale_after() + timedelta(seconds=1))
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and message.provider_id.startswith("console-")
    printed = [r.getMessage() for r in caplog.records if r.name == "notifications.backends"]
    assert len(printed) == 1 and printed[0].startswith("SMS to +919876543210")


def test_without_a_lookup_an_interrupted_send_is_failed_rather_than_repeated(
    book, at, dispatch, outbox, monkeypatch, settings
):
    from notifications import backends

    class Blind(backends.LocmemBackend):
        lookup = None  # a backend that cannot say what the provider took

    monkeypatch.setitem(backends.BACKENDS, "blind", Blind)
    settings.SMS_BACKEND = "blind"
    book(at("10:00"))
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    _interrupted(message, handed=True)
    outbox.clear()
    dispatch(timezone.now() + services.sending_stale_after() + timedelta(seconds=1))
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.error_code == "interrupted"
    assert outbox == []


def test_a_message_its_workers_keep_dying_with_is_given_up(book, at, dispatch, outbox):
    book(at("10:00"))
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    _interrupted(message, handed=False)
    OutboundMessage.objects.filter(pk=message.pk).update(attempts=services.MAX_CLAIMS)
    outbox.clear()
    assert dispatch(timezone.now() + services.sending_stale_after() + timedelta(seconds=1)) == 0
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.error_code == "interrupted"
    assert outbox == []


def test_a_worker_presumed_dead_cannot_send_once_its_claim_was_taken_back(
    book, at, dispatch, outbox, monkeypatch, commits
):
    """A worker stalled past its lease (before it handed the message over) finds the row
    taken back and sent by another; it sends nothing."""
    book(at("10:00"))
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.QUEUED, provider_id="", handed_at=None, attempts=0
    )
    outbox.clear()
    real_is_opted_out = services.is_opted_out
    stalled = []

    def stall_then_check(clinic, phone):
        if not stalled:  # the first worker, stalled: meanwhile beat takes the row back
            stalled.append(True)
            dispatch(timezone.now() + services.sending_stale_after() + timedelta(seconds=1))
        return real_is_opted_out(clinic, phone)

    monkeypatch.setattr(services, "is_opted_out", stall_then_check)
    assert services.deliver(message.pk) is None  # its hand-over finds the row not its own
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and message.attempts == 2
    assert len(outbox) == 1


def test_the_quiet_hours_window_across_midnight(clinic):
    conf = services.settings_for(clinic)
    tz = clinic.tzinfo
    day = timezone.localdate(timezone=tz)
    local = lambda h, m=0, d=0: timezone.make_aware(  # noqa: E731
        timezone.datetime.combine(day + timedelta(days=d), time(h, m)), tz
    )
    assert conf.quiet_until(local(20, 59)) is None
    assert conf.quiet_until(local(21, 0)) == local(8, 0, 1)
    assert conf.quiet_until(local(2, 0)) == local(8, 0)
    assert conf.quiet_until(local(8, 0)) is None
    conf.quiet_hours_start = conf.quiet_hours_end = None
    assert conf.quiet_until(local(2, 0)) is None


def test_a_reminder_goes_to_the_number_the_patient_has_when_it_goes(
    book, at, patient, dispatch, outbox
):
    start = at("10:00")
    book(start)
    patient.phone = "+919812345678"
    patient.save()
    dispatch(start - 24 * HOUR)
    assert outbox[-1].to == "+919812345678"
    assert reminders().first().to == "+919812345678"


def test_the_management_command_does_what_beat_does(book, at, commits):
    from io import StringIO

    from django.core.management import call_command

    book(at("10:00"))
    out = StringIO()
    with commits():
        call_command("send_due_messages", stdout=out)
    assert out.getvalue() == "0 message(s) queued\n"
