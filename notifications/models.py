"""Messages to patients: what each clinic sends, how, and what became of every message."""

from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from clinic.models import Language
from notifications import texts
from vaani.common.models import ClinicOwnedQuerySet, TimeStampedModel
from vaani.common.phone import validate_e164


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"


class MessageKind(models.TextChoices):
    CONFIRMATION = texts.CONFIRMATION, "Booking confirmation"
    RESCHEDULE = texts.RESCHEDULE, "Reschedule notice"
    CANCELLATION = texts.CANCELLATION, "Cancellation notice"
    REMINDER = texts.REMINDER, "Reminder"
    REPLY = "reply", "Reply to the patient's message"


class MessageStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"  # waits for send_after (reminders)
    QUEUED = "queued", "Queued"  # a send task has been (or will be) enqueued
    SENDING = "sending", "Sending"  # claimed by one worker (handed_at: given to the provider)
    SENT = "sent", "Sent"  # accepted by the provider
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"  # not sent on purpose: opted out, channel off...
    CANCELLED = "cancelled", "Cancelled"  # void: the appointment moved or was cancelled


PENDING_STATUSES = (MessageStatus.SCHEDULED, MessageStatus.QUEUED)
SENT_STATUSES = (MessageStatus.SENT, MessageStatus.DELIVERED)
FAILED_STATUSES = (MessageStatus.FAILED, MessageStatus.UNDELIVERED)

DEFAULT_REMINDER_OFFSETS = (24 * 60, 2 * 60)
MAX_REMINDER_OFFSET = 7 * 24 * 60


def default_reminder_offsets() -> list[int]:
    return list(DEFAULT_REMINDER_OFFSETS)


def validate_reminder_offsets(value) -> None:
    if not isinstance(value, list) or len(value) > 5:
        raise ValidationError("A list of at most 5 offsets in minutes, e.g. [1440, 120].")
    for offset in value:
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise ValidationError(f"{offset!r} is not a whole number of minutes.")
        if not 15 <= offset <= MAX_REMINDER_OFFSET:
            raise ValidationError("Each offset is between 15 minutes and 7 days (10080).")
    if len(set(value)) != len(value):
        raise ValidationError("Offsets must be different.")


def validate_sender(value: str) -> None:
    """A phone number in E.164, or a Twilio Messaging Service SID (MG...)."""
    if value.startswith("MG") and len(value) == 34 and value[2:].isalnum():
        return
    validate_e164(value)


class NotificationSettings(TimeStampedModel):
    """A clinic's choices; a clinic without a row gets the defaults."""

    clinic = models.OneToOneField(
        "clinic.Clinic", on_delete=models.CASCADE, related_name="notification_settings"
    )
    reminder_offsets_minutes = models.JSONField(
        default=default_reminder_offsets,
        blank=True,
        validators=[validate_reminder_offsets],
        help_text="Minutes before the appointment, e.g. [1440, 120]. Empty: no reminders.",
    )
    quiet_hours_start = models.TimeField(
        default=time(21, 0), null=True, blank=True, help_text="Clinic time. Empty: none."
    )
    quiet_hours_end = models.TimeField(default=time(8, 0), null=True, blank=True)
    sms_enabled = models.BooleanField(default=True)
    whatsapp_enabled = models.BooleanField(
        default=True, help_text="Patients who chose WhatsApp get it; the others get SMS."
    )
    sms_sender = models.CharField(
        max_length=40,
        blank=True,
        validators=[validate_sender],
        help_text="Number or Messaging Service SID. Empty: TWILIO_MESSAGING_FROM.",
    )
    whatsapp_sender = models.CharField(
        max_length=40,
        blank=True,
        validators=[validate_e164],
        help_text="WhatsApp-enabled number. Empty: TWILIO_WHATSAPP_FROM.",
    )

    class Meta:
        verbose_name = "notification settings"
        verbose_name_plural = "notification settings"

    def __str__(self):
        return f"Notification settings of {self.clinic}"

    def clean(self):
        if (self.quiet_hours_start is None) != (self.quiet_hours_end is None):
            raise ValidationError("Set both ends of the quiet hours, or neither.")

    def quiet_until(self, moment: datetime) -> datetime | None:
        """The end of the quiet hours ``moment`` falls in (aware), or None if it is not quiet."""
        start, end = self.quiet_hours_start, self.quiet_hours_end
        if start is None or end is None or start == end:
            return None
        tz = self.clinic.tzinfo
        local = moment.astimezone(tz)
        for day in (local.date() - timedelta(days=1), local.date()):
            window_start = datetime.combine(day, start, tzinfo=tz)
            end_day = day if end > start else day + timedelta(days=1)
            window_end = datetime.combine(end_day, end, tzinfo=tz)
            if window_start <= local < window_end:
                return window_end
        return None

    def out_of_quiet_hours(self, moment: datetime) -> datetime:
        """``moment``, or the end of the quiet hours it falls in."""
        return self.quiet_until(moment) or moment


class ContactPreference(TimeStampedModel):
    """How a patient wants their messages: SMS (the default) or WhatsApp."""

    patient = models.OneToOneField(
        "clinic.Patient", on_delete=models.CASCADE, related_name="contact_preference"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.SMS)

    def __str__(self):
        return f"{self.patient}: {self.get_channel_display()}"


class OptOut(TimeStampedModel):
    """STOP and START, per phone per clinic; honoured by every message sent later."""

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.CASCADE, related_name="+")
    phone = models.CharField(max_length=32)
    opted_out = models.BooleanField(default=True)
    source = models.CharField(max_length=20, default="sms", help_text="sms, whatsapp or admin.")

    class Meta:
        constraints = [models.UniqueConstraint("clinic", "phone", name="one_opt_out_per_phone")]

    def __str__(self):
        return f"{self.phone} {'opted out' if self.opted_out else 'opted in'} ({self.clinic})"


class MessageTemplate(TimeStampedModel):
    """A clinic's own wording for one kind of message in one language."""

    clinic = models.ForeignKey(
        "clinic.Clinic", on_delete=models.CASCADE, related_name="message_templates"
    )
    kind = models.CharField(
        max_length=20,
        choices=[(k, label) for k, label in MessageKind.choices if k in texts.EDITABLE_KINDS],
    )
    language = models.CharField(max_length=5, choices=Language.choices)
    body = models.TextField(
        max_length=texts.MAX_BODY_LENGTH,
        help_text="Placeholders in braces, e.g. {patient_name}, {doctor_name}, {date}, {time}.",
    )

    objects = ClinicOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["clinic", "kind", "language"]
        constraints = [
            models.UniqueConstraint(
                "clinic", "kind", "language", name="one_message_template_per_kind_language"
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.get_language_display()}) of {self.clinic}"

    def clean(self):
        if self.kind in texts.EDITABLE_KINDS:
            try:
                texts.validate_template(self.kind, self.body or "")
            except ValueError as exc:
                raise ValidationError({"body": str(exc)}) from None


class OutboundMessage(TimeStampedModel):
    """Every message to a patient, from creation to the provider's last word about it."""

    clinic = models.ForeignKey(
        "clinic.Clinic", on_delete=models.PROTECT, related_name="outbound_messages"
    )
    patient = models.ForeignKey(
        "clinic.Patient", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    appointment = models.ForeignKey(
        "clinic.Appointment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="outbound_messages",
    )
    kind = models.CharField(max_length=20, choices=MessageKind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.SMS)
    to = models.CharField(max_length=32, help_text="E.164; WhatsApp adds its prefix when sent.")
    sender = models.CharField(max_length=40, blank=True)
    language = models.CharField(max_length=5, choices=Language.choices, blank=True)
    # Reminders are written when they are sent, the others when they are queued.
    body = models.TextField(blank=True)
    status = models.CharField(
        max_length=20, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    # The one message for one purpose: a second attempt to create it finds the first.
    idempotency_key = models.CharField(max_length=200, unique=True)
    send_after = models.DateTimeField(null=True, blank=True)
    # The appointment's start when the message was written; a message about another
    # time is void (the appointment moved).
    appointment_time = models.DateTimeField(null=True, blank=True)
    reminder_offset_minutes = models.PositiveIntegerField(null=True, blank=True)
    fallback_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="fallbacks"
    )
    provider_id = models.CharField("provider id (MessageSid)", max_length=64, blank=True)
    provider_status = models.CharField(max_length=20, blank=True)
    error_code = models.CharField(max_length=20, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The claim's fence: a worker writes to the row only while the claim is still its own
    # (a row taken back from a dead worker gets a new token).
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    # Set (and committed) just before the provider is called, cleared only when the
    # provider refused it. Set without a provider id: whether the provider took it is
    # unknown (the worker died, or the call timed out), so the next claim asks the
    # provider before sending again (notifications/services.py: reconcile).
    handed_at = models.DateTimeField("handed to the provider at", null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    objects = ClinicOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The beat scan: status = scheduled/queued/sending AND send_after <= now.
            models.Index(fields=["status", "send_after"], name="outbound_waiting_idx"),
            models.Index(fields=["clinic", "created_at"], name="outbound_clinic_created_idx"),
            models.Index(fields=["to", "created_at"], name="outbound_to_created_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["provider_id"],
                condition=~Q(provider_id=""),
                name="outbound_unique_provider_id",
            ),
            models.UniqueConstraint(
                fields=["appointment", "appointment_time", "reminder_offset_minutes"],
                condition=Q(kind="reminder", fallback_of__isnull=True),
                name="one_reminder_per_appointment_time_offset",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.to} ({self.get_status_display()})"


class InboundMessage(TimeStampedModel):
    """A patient's text to the clinic and the reply it got (a retried webhook gets it again)."""

    class Command(models.TextChoices):
        CANCEL = "cancel", "Cancel"
        RESCHEDULE = "reschedule", "Reschedule"
        STOP = "stop", "Opt out"
        START = "start", "Opt in"
        HELP = "help", "Help / not understood"

    provider_id = models.CharField("MessageSid", max_length=64, unique=True)
    clinic = models.ForeignKey(
        "clinic.Clinic", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.SMS)
    from_number = models.CharField(max_length=32, db_index=True)
    to_number = models.CharField(max_length=32)
    body = models.TextField(blank=True)
    command = models.CharField(max_length=20, choices=Command.choices, blank=True)
    patient = models.ForeignKey(
        "clinic.Patient", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    appointment = models.ForeignKey(
        "clinic.Appointment", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reply = models.ForeignKey(
        OutboundMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reply_body = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.from_number}: {self.body[:40]}"
