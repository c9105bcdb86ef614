"""Messages to patients: the rules, in one place. Tasks, receivers and webhooks call these.

Every message is a row first (``OutboundMessage``) with a unique idempotency key, so
whoever asks twice for the same message finds the first. Sending claims the row with a
conditional UPDATE (queued -> sending): of two workers running the same task, one sends.
The row says it was handed to the provider (committed) before the provider is called, so
a send cut short by a dead worker or a timeout is looked up at the provider before it is
sent again (``_reconcile``; its limits are in README.md).
Rows are queued and their tasks enqueued on commit, so a rolled-back booking sends
nothing; the beat task picks up due reminders, and queued rows whose task was lost.

Reminders are tied to the appointment's start at the time they were scheduled: a moved
appointment voids them (its new time gets new ones), a cancelled one voids them all,
and each is checked again just before it is sent.
"""

import logging
import unicodedata
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from clinic import services as clinic_services
from clinic.models import Appointment, AppointmentStatus, Clinic, ClinicPhoneNumber, Patient
from clinic.signals import AppointmentEvent
from notifications import backends, texts
from notifications.models import (
    FAILED_STATUSES,
    Channel,
    ContactPreference,
    InboundMessage,
    MessageKind,
    MessageStatus,
    MessageTemplate,
    NotificationSettings,
    OptOut,
    OutboundMessage,
)
from vaani.common.exceptions import BookingValidationError, UnprocessableError
from vaani.common.phone import normalize_e164

logger = logging.getLogger(__name__)

# A reminder due this soon after it is scheduled would follow the confirmation at once.
REMINDER_MIN_LEAD = timedelta(minutes=30)
# Two reminders closer than this (quiet hours can push one onto the next): keep the later.
REMINDER_MIN_GAP = timedelta(hours=1)
# A queued row whose task has not run this long after it was due: the task was lost.
QUEUED_STALE_AFTER = timedelta(minutes=10)
MAX_SEND_ATTEMPTS = 5
# A row claimed SMS_SENDING_STALE_SECONDS ago and still "sending": its worker died (a live
# one is done within the provider call's timeout). Beat takes it back (queued again); the
# next claim looks it up at the provider first if it had been handed over.
# A message whose workers keep dying with it is given up after this many claims.
MAX_CLAIMS = 2 * MAX_SEND_ATTEMPTS
# Our clock against the provider's, when asking what it took since a hand-over.
RECONCILE_CLOCK_SKEW = timedelta(minutes=2)
DISPATCH_BATCH = 500

RESCHEDULE_SALT = "notifications.reschedule-link"
RESCHEDULE_LINK_MAX_AGE = timedelta(hours=48)


class TransientSendError(Exception):
    """The provider may take it later; the task retries after a backoff."""


# --- Clinic settings, opt-outs, channels, templates --------------------------------------


def settings_for(clinic: Clinic) -> NotificationSettings:
    """The clinic's settings, or the defaults (unsaved) when it has none."""
    try:
        conf = clinic.notification_settings
    except ObjectDoesNotExist:
        conf = NotificationSettings(clinic=clinic)
    conf.clinic = clinic
    return conf


def is_opted_out(clinic: Clinic, phone: str) -> bool:
    return OptOut.objects.filter(clinic=clinic, phone=phone, opted_out=True).exists()


def set_opt_out(*, clinic: Clinic, phone: str, opted_out: bool, source: str = "sms") -> OptOut:
    entry, _ = OptOut.objects.update_or_create(
        clinic=clinic, phone=phone, defaults={"opted_out": opted_out, "source": source}
    )
    return entry


def set_preferred_channel(*, patient: Patient, channel: str) -> ContactPreference:
    if channel not in Channel.values:
        raise BookingValidationError(details={"channel": f"One of {', '.join(Channel.values)}"})
    preference, _ = ContactPreference.objects.update_or_create(
        patient=patient, defaults={"channel": channel}
    )
    return preference


def choose_channel(patient: Patient | None, conf: NotificationSettings) -> str | None:
    """WhatsApp for patients who chose it (when the clinic allows it), else SMS, else none."""
    wanted = Channel.SMS
    if patient is not None:
        wanted = (
            ContactPreference.objects.filter(patient=patient)
            .values_list("channel", flat=True)
            .first()
        ) or Channel.SMS
    if wanted == Channel.WHATSAPP and conf.whatsapp_enabled:
        return Channel.WHATSAPP
    return Channel.SMS if conf.sms_enabled else None


def sender_for(channel: str, conf: NotificationSettings) -> str:
    if channel == Channel.WHATSAPP:
        return conf.whatsapp_sender or settings.TWILIO_WHATSAPP_FROM
    return conf.sms_sender or settings.TWILIO_MESSAGING_FROM


def patient_language(patient: Patient | None, clinic: Clinic) -> str:
    language = patient.language_preference if patient is not None else ""
    return texts.language_or_default(language or clinic.default_language)


def template_body(clinic: Clinic, kind: str, language: str) -> str:
    """The clinic's own wording if it has one, else the built-in one."""
    own = (
        MessageTemplate.objects.filter(clinic=clinic, kind=kind, language=language)
        .values_list("body", flat=True)
        .first()
    )
    return own or texts.DEFAULTS[kind][texts.language_or_default(language)]


def save_template(*, clinic: Clinic, kind: str, language: str, body: str) -> MessageTemplate:
    """Creates or replaces a clinic's template; refuses unknown placeholders."""
    template = MessageTemplate.objects.filter(clinic=clinic, kind=kind, language=language).first()
    template = template or MessageTemplate(clinic=clinic, kind=kind, language=language)
    template.body = body
    try:
        template.full_clean(validate_unique=False)
    except ValidationError as exc:
        raise BookingValidationError(
            details={field: " ".join(errors) for field, errors in exc.message_dict.items()}
        ) from None
    template.save()
    return template


def clinic_phone(clinic: Clinic) -> str:
    if clinic.front_desk_phone:
        return clinic.front_desk_phone
    number = (
        ClinicPhoneNumber.objects.filter(clinic=clinic).values_list("number", flat=True).first()
    )
    return number or ""


def appointment_context(
    appointment: Appointment, language: str, *, previous_time: datetime | None = None
) -> dict[str, str]:
    """The placeholders' values, dates and times in the clinic's time zone."""
    clinic = appointment.clinic
    local = timezone.localtime(appointment.scheduled_time, clinic.tzinfo)
    context = {
        "patient_name": appointment.patient.name,
        "clinic_name": clinic.name,
        "doctor_name": appointment.doctor.name,
        "date": texts.format_date(local, language),
        "time": texts.format_time(local, language),
        "clinic_phone": clinic_phone(clinic),
    }
    previous = timezone.localtime(previous_time or appointment.scheduled_time, clinic.tzinfo)
    context["old_date"] = texts.format_date(previous, language)
    context["old_time"] = texts.format_time(previous, language)
    return context


def render_appointment_message(
    appointment: Appointment, kind: str, language: str, *, previous_time: datetime | None = None
) -> str:
    body = template_body(appointment.clinic, kind, language)
    context = appointment_context(appointment, language, previous_time=previous_time)
    return texts.render(body, context)


# --- Creating messages ---------------------------------------------------------------------


def _enqueue(message_id: int) -> None:
    """Sends once the current transaction commits (at once outside one)."""

    def enqueue():
        from notifications.tasks import send_message

        try:
            send_message.delay(message_id)
        except Exception:  # the broker is down; the beat sweep sends it later
            logger.exception("Could not enqueue message %s; the sweep will retry", message_id)

    transaction.on_commit(enqueue)


def queue_appointment_message(
    appointment: Appointment,
    kind: str,
    *,
    key: str,
    previous_time: datetime | None = None,
    now: datetime | None = None,
) -> OutboundMessage:
    """The confirmation, reschedule or cancellation notice: written now, sent on commit."""
    now = now or timezone.now()
    clinic, patient = appointment.clinic, appointment.patient
    existing = OutboundMessage.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    conf = settings_for(clinic)
    channel = choose_channel(patient, conf)
    language = patient_language(patient, clinic)
    skipped = ""
    if channel is None:
        skipped = "No message channel is enabled for this clinic"
    elif is_opted_out(clinic, patient.phone):
        skipped = "The patient opted out (STOP)"
    message, created = OutboundMessage.objects.get_or_create(
        idempotency_key=key,
        defaults={
            "clinic": clinic,
            "patient": patient,
            "appointment": appointment,
            "kind": kind,
            "channel": channel or Channel.SMS,
            "to": patient.phone,
            "language": language,
            "body": render_appointment_message(
                appointment, kind, language, previous_time=previous_time
            ),
            "status": MessageStatus.SKIPPED if skipped else MessageStatus.QUEUED,
            "error_message": skipped,
            "send_after": now,
            "appointment_time": appointment.scheduled_time,
        },
    )
    if created and message.status == MessageStatus.QUEUED:
        _enqueue(message.pk)
    return message


def reminder_plan(
    appointment: Appointment, conf: NotificationSettings, *, now: datetime
) -> list[tuple[int, datetime]]:
    """(offset in minutes, when to send) for each reminder this appointment should get.

    Never inside quiet hours (deferred to their end), never at or after the start,
    never in the past or right after booking, never two on top of each other.
    """
    start = appointment.scheduled_time
    plan: list[tuple[int, datetime]] = []
    for offset in sorted(set(conf.reminder_offsets_minutes or [])):  # the closest first
        send_at = conf.out_of_quiet_hours(start - timedelta(minutes=offset))
        if send_at >= start or send_at < now + REMINDER_MIN_LEAD:
            continue
        if any(abs(kept - send_at) < REMINDER_MIN_GAP for _, kept in plan):
            continue
        plan.append((offset, send_at))
    return plan


def _reminder_key(appointment: Appointment, offset: int) -> str:
    return f"reminder:{appointment.pk}:{offset}:{int(appointment.scheduled_time.timestamp())}"


def schedule_reminders(appointment: Appointment, *, now: datetime | None = None) -> list:
    """Reminder rows for the appointment's current time (idempotent)."""
    now = now or timezone.now()
    if appointment.status != AppointmentStatus.SCHEDULED:
        return []
    conf = settings_for(appointment.clinic)
    rows = []
    for offset, send_at in reminder_plan(appointment, conf, now=now):
        message, created = OutboundMessage.objects.get_or_create(
            idempotency_key=_reminder_key(appointment, offset),
            defaults={
                "clinic": appointment.clinic,
                "patient": appointment.patient,
                "appointment": appointment,
                "kind": MessageKind.REMINDER,
                "to": appointment.patient.phone,
                "status": MessageStatus.SCHEDULED,
                "send_after": send_at,
                "appointment_time": appointment.scheduled_time,
                "reminder_offset_minutes": offset,
            },
        )
        if not created and message.status == MessageStatus.CANCELLED:
            # Moved away and back again: the voided reminder for this time is valid again.
            OutboundMessage.objects.filter(pk=message.pk, status=MessageStatus.CANCELLED).update(
                status=MessageStatus.SCHEDULED, send_after=send_at, error_message="", updated_at=now
            )
        rows.append(message)
    return rows


def void_reminders(appointment: Appointment, *, now: datetime | None = None) -> int:
    """Cancels waiting reminders that no longer fit the appointment (moved or ended)."""
    pending = OutboundMessage.objects.filter(
        appointment=appointment,
        kind=MessageKind.REMINDER,
        status__in=[MessageStatus.SCHEDULED, MessageStatus.QUEUED],
    )
    if appointment.status == AppointmentStatus.SCHEDULED:
        pending = pending.exclude(appointment_time=appointment.scheduled_time)
        reason = "The appointment moved"
    else:
        reason = f"The appointment is {appointment.get_status_display().lower()}"
    return pending.update(
        status=MessageStatus.CANCELLED, error_message=reason, updated_at=now or timezone.now()
    )


def handle_appointment_event(
    event: str,
    appointment: Appointment,
    *,
    rescheduled: bool = False,
    previous_time: datetime | None = None,
    now: datetime | None = None,
) -> None:
    """What an appointment change means for the patient's messages."""
    now = now or timezone.now()
    current = Appointment.objects.select_related("clinic", "patient", "doctor").get(
        pk=appointment.pk
    )
    if event == AppointmentEvent.CREATED:
        queue_appointment_message(
            current, MessageKind.CONFIRMATION, key=f"confirmation:{current.pk}", now=now
        )
        schedule_reminders(current, now=now)
    elif event == AppointmentEvent.CANCELLED:
        void_reminders(current, now=now)
        queue_appointment_message(
            current, MessageKind.CANCELLATION, key=f"cancellation:{current.pk}", now=now
        )
    elif event == AppointmentEvent.UPDATED:
        void_reminders(current, now=now)
        if rescheduled and current.status == AppointmentStatus.SCHEDULED:
            # One notice per change: the change's own updated_at names it.
            version = (appointment.updated_at or current.updated_at).timestamp()
            queue_appointment_message(
                current,
                MessageKind.RESCHEDULE,
                key=f"reschedule:{current.pk}:{version:.6f}",
                previous_time=previous_time,
                now=now,
            )
        schedule_reminders(current, now=now)


# --- Sending -------------------------------------------------------------------------------


def retry_delay(retries: int) -> int:
    """Seconds before retry number ``retries + 1``: doubling, and always well below the
    broker's visibility timeout (a longer countdown would be redelivered meanwhile)."""
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    cap = max(1, min(15 * 60, visibility // 2))
    return min(60 * 2**retries, cap)


def sending_stale_after() -> timedelta:
    return timedelta(seconds=settings.SMS_SENDING_STALE_SECONDS)


def _why_void(message: OutboundMessage, now: datetime) -> str:
    """Why a message about an appointment no longer applies ('' if it still does)."""
    appointment = message.appointment
    if appointment is None or message.kind == MessageKind.CANCELLATION:
        return ""
    if appointment.status != AppointmentStatus.SCHEDULED:
        return f"The appointment is {appointment.get_status_display().lower()}"
    if message.appointment_time and appointment.scheduled_time != message.appointment_time:
        return "The appointment moved"
    if message.kind == MessageKind.REMINDER and appointment.scheduled_time <= now:
        return "The appointment has started"
    return ""


def _claim(message_id: int, now: datetime) -> uuid.UUID | None:
    """Takes a queued message for one worker (atomic: one wins); its token fences every
    later write, so a worker presumed dead and taken over can no longer change the row."""
    token = uuid.uuid4()
    claimed = OutboundMessage.objects.filter(pk=message_id, status=MessageStatus.QUEUED).update(
        status=MessageStatus.SENDING,
        claim_token=token,
        claimed_at=now,
        attempts=F("attempts") + 1,
        updated_at=now,
    )
    return token if claimed else None


def _mine(message_id: int, token: uuid.UUID):
    return OutboundMessage.objects.filter(
        pk=message_id, status=MessageStatus.SENDING, claim_token=token
    )


def _finish(message_id: int, token: uuid.UUID, status: str, *, now: datetime, **fields) -> bool:
    """Ends this worker's claim; False if the row is no longer its own."""
    return bool(_mine(message_id, token).update(status=status, updated_at=now, **fields))


def _outgoing(message: OutboundMessage) -> backends.Outgoing:
    callback = settings.SMS_STATUS_CALLBACK_URL
    return backends.Outgoing(
        to=message.to,
        body=message.body,
        channel=message.channel,
        sender=message.sender,
        status_callback=f"{callback}?m={message.pk}" if callback else "",
    )


def deliver(
    message_id: int, *, retry_in: int | None = None, now: datetime | None = None
) -> str | None:
    """Sends one queued message once (also across a crash). Returns the status it ended in.

    ``retry_in``: seconds until the task tries again after a transient failure (None: this
    was the last attempt, so the message fails). Raises TransientSendError to retry.

    A message that was handed to the provider before without a known outcome (its worker
    died mid-send, or the call timed out) is reconciled first (``_reconcile``): found at
    the provider, it is recorded as sent; not found, it is sent again.
    """
    now = now or timezone.now()
    token = _claim(message_id, now)
    if token is None:  # sent, being sent, or void: nothing to do
        return None
    message = OutboundMessage.objects.select_related(
        "clinic", "patient", "appointment__clinic", "appointment__patient", "appointment__doctor"
    ).get(pk=message_id)
    backend = backends.get_backend()

    if message.provider_id:  # a late worker or a status callback recorded it meanwhile
        _finish(message.pk, token, MessageStatus.SENT, now=now, sent_at=message.sent_at or now)
        return MessageStatus.SENT
    if message.handed_at is not None:
        outcome = _reconcile(message, token, backend, retry_in=retry_in, now=now)
        if outcome is not None:
            return outcome

    void = _why_void(message, now)
    if void:
        _finish(message.pk, token, MessageStatus.CANCELLED, now=now, error_message=void)
        return MessageStatus.CANCELLED
    if not message.body and message.patient is not None:
        message.to = message.patient.phone  # a reminder goes to the number they have now
    if is_opted_out(message.clinic, message.to):
        _finish(
            message.pk,
            token,
            MessageStatus.SKIPPED,
            now=now,
            error_message="The patient opted out",
        )
        return MessageStatus.SKIPPED

    conf = settings_for(message.clinic)
    if not message.body:  # reminders are written when they go, in the current wording
        channel = choose_channel(message.patient, conf)
        if channel is None or message.appointment is None:
            _finish(message.pk, token, MessageStatus.SKIPPED, now=now, error_message="No channel")
            return MessageStatus.SKIPPED
        message.channel = channel
        message.language = patient_language(message.patient, message.clinic)
        message.body = render_appointment_message(
            message.appointment, message.kind, message.language
        )
    message.sender = sender_for(message.channel, conf)
    # What goes, and that it is going, committed before the provider is called: a worker
    # that dies from here on leaves a row that the next claim reconciles with the provider.
    first_hand_over = message.handed_at is None
    handed = _mine(message.pk, token).update(
        to=message.to,
        channel=message.channel,
        language=message.language,
        body=message.body,
        sender=message.sender,
        handed_at=message.handed_at or now,
        updated_at=now,
    )
    if not handed:  # taken back (this worker was presumed dead): the next claim sends it
        return None

    try:
        result = backend.send(_outgoing(message))
    except backends.SendError as exc:
        errors = {"error_code": exc.code[:20], "error_message": exc.message}
        if first_hand_over and not exc.maybe_sent:
            errors["handed_at"] = None  # refused: there is nothing to look up
        if exc.transient and retry_in is not None:
            _finish(
                message.pk,
                token,
                MessageStatus.QUEUED,
                now=now,
                send_after=now + timedelta(seconds=retry_in),
                **errors,
            )
            raise TransientSendError(exc.message) from exc
        _finish(message.pk, token, MessageStatus.FAILED, now=now, failed_at=now, **errors)
        logger.warning("Message %s failed: %s %s", message.pk, exc.code, exc.message)
        message.status = MessageStatus.FAILED
        fallback_to_sms(message, now=now)
        return MessageStatus.FAILED

    fields = {
        "provider_id": result.provider_id,
        "provider_status": result.provider_status,
        "sent_at": now,
        "error_code": "",
        "error_message": "",
    }
    if _finish(message.pk, token, MessageStatus.SENT, now=now, **fields):
        return MessageStatus.SENT
    # Not ours any more: a status callback got here first and moved it on, or the row was
    # taken back after this worker took too long. Either way the provider has it.
    unrecorded = OutboundMessage.objects.filter(pk=message.pk, provider_id="")
    waiting = unrecorded.filter(status__in=[MessageStatus.QUEUED, MessageStatus.SENDING])
    if not waiting.update(status=MessageStatus.SENT, updated_at=now, **fields):
        unrecorded.update(provider_id=result.provider_id, sent_at=now, updated_at=now)
    return MessageStatus.SENT


def _reconcile(
    message: OutboundMessage,
    token: uuid.UUID,
    backend,
    *,
    retry_in: int | None,
    now: datetime,
) -> str | None:
    """Asks the provider what became of a message handed to it before without a known
    outcome. Returns the status it ends in, or None when the provider never got it (the
    caller sends it). Raises TransientSendError when the provider cannot be asked now;
    without an answer the message is never sent again.
    """
    lookup = getattr(backend, "lookup", None)
    if lookup is None:
        _finish(
            message.pk,
            token,
            MessageStatus.FAILED,
            now=now,
            failed_at=now,
            error_code="interrupted",
            error_message=(
                "The send was interrupted and this backend cannot tell whether the "
                "provider took it; not sent again to avoid a duplicate"
            ),
        )
        return MessageStatus.FAILED
    try:
        candidates = lookup(_outgoing(message), since=message.handed_at - RECONCILE_CLOCK_SKEW)
    except backends.SendError as exc:
        errors = {
            "error_code": "unconfirmed",
            "error_message": f"Could not ask the provider whether it took the message: "
            f"{exc.message}",
        }
        if exc.transient and retry_in is not None:
            _finish(
                message.pk,
                token,
                MessageStatus.QUEUED,
                now=now,
                send_after=now + timedelta(seconds=retry_in),
                **errors,
            )
            raise TransientSendError(exc.message) from exc
        _finish(message.pk, token, MessageStatus.FAILED, now=now, failed_at=now, **errors)
        logger.warning("Message %s: not confirmed with the provider: %s", message.pk, exc.message)
        return MessageStatus.FAILED

    # The same text to the same number may be another message of ours: skip those.
    known = set(
        OutboundMessage.objects.filter(
            provider_id__in=[c.provider_id for c in candidates]
        ).values_list("provider_id", flat=True)
    )
    found = next((c for c in candidates if c.provider_id not in known), None)
    if found is None:
        logger.info("Message %s: interrupted before the provider took it; sending it", message.pk)
        return None
    status = PROVIDER_STATUSES.get(found.provider_status, MessageStatus.SENT)
    fields = {
        "provider_id": found.provider_id,
        "provider_status": found.provider_status,
        "sent_at": found.created_at or now,
        "error_code": "",
        "error_message": "",
    }
    if status == MessageStatus.DELIVERED:
        fields["delivered_at"] = now
    elif status in FAILED_STATUSES:
        fields |= {
            "failed_at": now,
            "error_code": found.error_code[:20],
            "error_message": found.error_message,
        }
    logger.info(
        "Message %s: interrupted after the provider took it (%s); not sent again",
        message.pk,
        found.provider_id,
    )
    if _finish(message.pk, token, status, now=now, **fields) and status in FAILED_STATUSES:
        message.status = status
        fallback_to_sms(message, now=now)
    return status


def fallback_to_sms(message: OutboundMessage, *, now: datetime | None = None):
    """A failed WhatsApp message goes again by SMS, once."""
    if message.channel != Channel.WHATSAPP or message.fallback_of_id is not None:
        return None
    if message.status not in FAILED_STATUSES:
        return None
    if not settings_for(message.clinic).sms_enabled:
        return None
    fallback, created = OutboundMessage.objects.get_or_create(
        idempotency_key=f"{message.idempotency_key}:sms-fallback",
        defaults={
            "clinic": message.clinic,
            "patient": message.patient,
            "appointment": message.appointment,
            "kind": message.kind,
            "channel": Channel.SMS,
            "to": message.to,
            "language": message.language,
            "body": message.body,
            "status": MessageStatus.QUEUED,
            "send_after": now or timezone.now(),
            "appointment_time": message.appointment_time,
            "reminder_offset_minutes": message.reminder_offset_minutes,
            "fallback_of": message,
        },
    )
    if created:
        _enqueue(fallback.pk)
    return fallback


def dispatch_due(*, now: datetime | None = None, limit: int = DISPATCH_BATCH) -> int:
    """The beat task: queues due reminders, re-enqueues lost tasks and dead workers' sends."""
    now = now or timezone.now()
    queued = 0
    due = (
        OutboundMessage.objects.filter(status=MessageStatus.SCHEDULED, send_after__lte=now)
        .select_related("clinic", "appointment")
        .order_by("send_after")[:limit]
    )
    confs: dict[int, NotificationSettings] = {}
    for message in due:
        waiting = OutboundMessage.objects.filter(pk=message.pk, status=MessageStatus.SCHEDULED)
        void = _why_void(message, now)
        if void:
            waiting.update(status=MessageStatus.CANCELLED, error_message=void, updated_at=now)
            continue
        if message.clinic_id not in confs:
            confs[message.clinic_id] = settings_for(message.clinic)
        quiet_end = confs[message.clinic_id].quiet_until(now)
        if quiet_end is not None:  # the quiet hours changed since it was scheduled
            if message.appointment and quiet_end >= message.appointment.scheduled_time:
                waiting.update(
                    status=MessageStatus.SKIPPED,
                    error_message="Quiet hours last until the appointment",
                    updated_at=now,
                )
            else:
                waiting.update(send_after=quiet_end, updated_at=now)
            continue
        if waiting.update(status=MessageStatus.QUEUED, updated_at=now):
            _enqueue(message.pk)
            queued += 1

    lost = OutboundMessage.objects.filter(
        status=MessageStatus.QUEUED, send_after__lte=now - QUEUED_STALE_AFTER
    ).values_list("pk", "send_after")[:limit]
    for pk, send_after in lost:
        if OutboundMessage.objects.filter(
            pk=pk, status=MessageStatus.QUEUED, send_after=send_after
        ).update(send_after=now, updated_at=now):
            _enqueue(pk)
            queued += 1

    # Claimed long ago and not finished: the worker died. Queued again (once per claim:
    # the token says it is still that claim), so the next claim reconciles and sends.
    cutoff = now - sending_stale_after()
    stale = OutboundMessage.objects.filter(
        status=MessageStatus.SENDING, claimed_at__lte=cutoff
    ).values_list("pk", "claim_token", "attempts")[:limit]
    for pk, token, attempts in stale:
        dead_claim = OutboundMessage.objects.filter(
            pk=pk, status=MessageStatus.SENDING, claimed_at__lte=cutoff, claim_token=token
        )
        if attempts >= MAX_CLAIMS:
            dead_claim.update(
                status=MessageStatus.FAILED,
                error_code="interrupted",
                error_message=(
                    f"Claimed {attempts} times, the last time by a worker that stopped "
                    "while sending it; given up"
                ),
                failed_at=now,
                updated_at=now,
            )
            continue
        if dead_claim.update(status=MessageStatus.QUEUED, send_after=now, updated_at=now):
            logger.warning("Message %s: its worker stopped while sending; queued again", pk)
            _enqueue(pk)
            queued += 1
    return queued


# --- The provider's status callbacks -------------------------------------------------------

# Twilio's MessageStatus -> ours.
PROVIDER_STATUSES = {
    "accepted": MessageStatus.SENT,
    "scheduled": MessageStatus.SENT,
    "queued": MessageStatus.SENT,
    "sending": MessageStatus.SENT,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}
_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.UNDELIVERED: 2,
    MessageStatus.FAILED: 2,
}


def record_status(
    *,
    message_sid: str,
    provider_status: str,
    error_code: str = "",
    error_message: str = "",
    message_id: str = "",
    now: datetime | None = None,
) -> OutboundMessage | None:
    """Records a status callback. Late or repeated callbacks never move a message back.

    Raises ValueError for a status Twilio does not send for outgoing messages.
    """
    now = now or timezone.now()
    status = PROVIDER_STATUSES.get(provider_status)
    if status is None:
        raise ValueError(f"Unknown message status {provider_status!r}")
    found = OutboundMessage.objects.filter(provider_id=message_sid)
    if not found.exists() and message_id.isdigit():  # the callback beat our own update
        found = OutboundMessage.objects.filter(
            pk=int(message_id), provider_id__in=["", message_sid]
        )
    with transaction.atomic():
        message = found.select_for_update(of=("self",)).select_related("clinic", "patient").first()
        if message is None:
            return None
        changed = False
        if _RANK.get(message.status, 3) < _RANK[status]:
            message.status = status
            message.provider_status = provider_status
            changed = True
            if status == MessageStatus.DELIVERED:
                message.delivered_at = now
            elif status in FAILED_STATUSES:
                message.failed_at = now
                message.error_code = error_code[:20]
                message.error_message = error_message
        elif provider_status == "read":
            message.provider_status = provider_status
        if not message.provider_id:
            message.provider_id = message_sid
        message.save()
        if changed and message.status in FAILED_STATUSES:
            fallback_to_sms(message, now=now)
    return message


# --- Patients' replies ---------------------------------------------------------------------

# A command word may start a longer text ("cancel please", "रद्द करें"); a single letter
# and the opt-out words must be the whole text ("C you at 5" and "End of May?" are not).
_CANCEL_WORDS = {"cancel", "रद्द", "radd", "rad", "कैंसल"}
_RESCHEDULE_WORDS = {"reschedule", "बदलें", "badlo"}
_WHOLE_TEXT = {
    "c": InboundMessage.Command.CANCEL,
    "r": InboundMessage.Command.RESCHEDULE,
    **dict.fromkeys(
        ["stop", "stopall", "unsubscribe", "end", "quit", "बंद"], InboundMessage.Command.STOP
    ),
    **dict.fromkeys(["start", "unstop", "शुरू"], InboundMessage.Command.START),
}


def parse_command(body: str) -> str:
    punctuation = ".,!?;:'\"()[]।"
    words = [
        w.strip(punctuation) for w in unicodedata.normalize("NFC", body or "").casefold().split()
    ]
    words = [w for w in words if w]
    if len(words) == 1 and words[0] in _WHOLE_TEXT:
        return _WHOLE_TEXT[words[0]]
    first = words[0] if words else ""
    if first in _CANCEL_WORDS:
        return InboundMessage.Command.CANCEL
    if first in _RESCHEDULE_WORDS:
        return InboundMessage.Command.RESCHEDULE
    return InboundMessage.Command.HELP


def _address(raw: str) -> tuple[str, str]:
    """(channel, E.164) from Twilio's From/To ("whatsapp:+91..." for WhatsApp)."""
    raw = (raw or "").strip()
    channel = Channel.SMS
    if raw.startswith("whatsapp:"):
        channel, raw = Channel.WHATSAPP, raw[len("whatsapp:") :]
    try:
        return channel, normalize_e164(raw)
    except ValidationError:
        return channel, raw[:32]


def clinic_for_inbound(to_number: str, from_number: str) -> Clinic | None:
    """The clinic texted: by the number texted, else the last clinic that texted them."""
    conf = (
        NotificationSettings.objects.select_related("clinic")
        .filter(Q(sms_sender=to_number) | Q(whatsapp_sender=to_number))
        .first()
    )
    if conf is not None:
        return conf.clinic
    entry = ClinicPhoneNumber.objects.select_related("clinic").filter(number=to_number).first()
    if entry is not None:
        return entry.clinic
    last = (
        OutboundMessage.objects.select_related("clinic")
        .filter(to=from_number)
        .order_by("-created_at")
        .first()
    )
    return last.clinic if last else None


def next_appointment(clinic: Clinic, phone: str, *, now: datetime) -> Appointment | None:
    """The soonest upcoming appointment of anyone at this clinic with this phone."""
    return (
        Appointment.objects.select_related("clinic", "patient", "doctor")
        .filter(
            clinic=clinic,
            patient__phone=phone,
            status=AppointmentStatus.SCHEDULED,
            scheduled_time__gt=now,
        )
        .order_by("scheduled_time", "id")
        .first()
    )


def _has_devanagari(text: str) -> bool:
    return any("\u0900" <= ch <= "\u097f" for ch in text or "")


def reschedule_link(appointment: Appointment) -> str:
    """A signed link naming the appointment and its time; it expires, and a moved or
    cancelled appointment makes it void (``read_reschedule_token``)."""
    token = signing.dumps(
        {"a": appointment.pk, "t": int(appointment.scheduled_time.timestamp())},
        salt=RESCHEDULE_SALT,
        compress=True,
    )
    return f"{settings.SMS_RESCHEDULE_URL}/{token}"


def read_reschedule_token(
    token: str, *, max_age: timedelta = RESCHEDULE_LINK_MAX_AGE
) -> Appointment | None:
    try:
        data = signing.loads(token, salt=RESCHEDULE_SALT, max_age=max_age)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    appointment = Appointment.objects.filter(
        pk=data.get("a"), status=AppointmentStatus.SCHEDULED
    ).first()
    if appointment is None or int(appointment.scheduled_time.timestamp()) != data.get("t"):
        return None
    return appointment


def _reply_row(
    *, clinic, patient, appointment, channel, to, sender, language, body, key, kind, now
) -> OutboundMessage:
    """The TwiML answer, stored like every other message (Twilio sends it for us)."""
    row, _ = OutboundMessage.objects.get_or_create(
        idempotency_key=key,
        defaults={
            "clinic": clinic,
            "patient": patient,
            "appointment": appointment,
            "kind": kind,
            "channel": channel,
            "to": to,
            "sender": sender,
            "language": language,
            "body": body,
            "status": MessageStatus.SENT,
            "provider_status": "twiml-reply",
            "sent_at": now,
            "appointment_time": appointment.scheduled_time if appointment else None,
        },
    )
    return row


def handle_inbound(
    *, message_sid: str, from_number: str, to_number: str, body: str, now: datetime | None = None
) -> str:
    """Acts on a patient's text and returns the reply ('' for none).

    C / cancel / रद्द cancels the next upcoming appointment, R answers a reschedule link,
    STOP and START opt out and back in; anything else gets the help text. A retried
    webhook (same MessageSid) changes nothing more and gets the same reply.
    """
    now = now or timezone.now()
    previous = InboundMessage.objects.filter(provider_id=message_sid).first()
    if previous is not None:
        return previous.reply_body
    channel, phone = _address(from_number)
    _, to = _address(to_number)
    clinic = clinic_for_inbound(to, phone)
    command = parse_command(body)
    try:
        with transaction.atomic():
            inbound = InboundMessage.objects.create(
                provider_id=message_sid,
                clinic=clinic,
                channel=channel,
                from_number=phone,
                to_number=to,
                body=body[:2000],
                command=command,
            )
            if clinic is None:
                logger.warning("Text %s to unknown number %s", message_sid, to)
                return ""
            reply = _answer(inbound, clinic=clinic, phone=phone, to=to, now=now)
    except IntegrityError:  # the same webhook, concurrently: the first one answers
        previous = InboundMessage.objects.filter(provider_id=message_sid).first()
        if previous is None:
            raise
        return previous.reply_body
    return reply


def _answer(inbound: InboundMessage, *, clinic: Clinic, phone: str, to: str, now) -> str:
    Command = InboundMessage.Command
    command = inbound.command
    opted_out = is_opted_out(clinic, phone)
    appointment = None
    if command in (Command.CANCEL, Command.RESCHEDULE):
        appointment = next_appointment(clinic, phone, now=now)
    patients = list(Patient.objects.filter(clinic=clinic, phone=phone).order_by("id"))
    patient = appointment.patient if appointment else (patients[0] if patients else None)
    if _has_devanagari(inbound.body):
        language = texts.HINDI
    elif appointment is not None or len({p.language_preference for p in patients}) == 1:
        language = patient_language(patient, clinic)
    else:
        language = texts.language_or_default(clinic.default_language)

    context = {"clinic_name": clinic.name, "clinic_phone": clinic_phone(clinic)}
    kind, key = MessageKind.REPLY, f"reply:{inbound.provider_id}"
    if command == Command.STOP:
        set_opt_out(clinic=clinic, phone=phone, opted_out=True, source=inbound.channel)
        reply_name = "opted_out"
    elif command == Command.START:
        set_opt_out(clinic=clinic, phone=phone, opted_out=False, source=inbound.channel)
        reply_name = "opted_in"
    elif command == Command.CANCEL and appointment is not None:
        try:
            clinic_services.cancel_appointment(
                appointment=appointment, reason="Cancelled by the patient by SMS", now=now
            )
        except UnprocessableError:
            appointment, reply_name = None, "no_appointment"
        else:
            appointment.refresh_from_db()
            context |= appointment_context(appointment, language)
            # This reply is the cancellation notice: its key stops a second one.
            kind, key = MessageKind.CANCELLATION, f"cancellation:{appointment.pk}"
            reply_name = "cancelled"
    elif command == Command.RESCHEDULE and appointment is not None:
        context |= appointment_context(appointment, language)
        context["link"] = reschedule_link(appointment)
        reply_name = "reschedule_link"
    elif command in (Command.CANCEL, Command.RESCHEDULE):
        reply_name = "no_appointment"
    else:
        reply_name = "help"

    inbound.patient, inbound.appointment = patient, appointment
    reply = ""
    if not opted_out or command in (Command.STOP, Command.START):
        reply = texts.render(texts.REPLIES[reply_name][language], context)
        inbound.reply = _reply_row(
            clinic=clinic,
            patient=patient,
            appointment=appointment,
            channel=inbound.channel,
            to=phone,
            sender=to,
            language=language,
            body=reply,
            key=key,
            kind=kind,
            now=now,
        )
    inbound.reply_body = reply
    inbound.save(update_fields=["patient", "appointment", "reply", "reply_body", "updated_at"])
    return reply
