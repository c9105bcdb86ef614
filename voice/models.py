"""Phone calls: one CallLog per Twilio call, filled by the voice agent."""

from django.db import models

from vaani.common.models import ClinicOwnedQuerySet, TimeStampedModel


class CallDirection(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class CallStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RINGING = "ringing", "Ringing"
    IN_PROGRESS = "in-progress", "In progress"
    COMPLETED = "completed", "Completed"
    BUSY = "busy", "Busy"
    FAILED = "failed", "Failed"
    NO_ANSWER = "no-answer", "No answer"
    CANCELED = "canceled", "Canceled"


FINAL_CALL_STATUSES = frozenset(
    {
        CallStatus.COMPLETED,
        CallStatus.BUSY,
        CallStatus.FAILED,
        CallStatus.NO_ANSWER,
        CallStatus.CANCELED,
    }
)


class Sentiment(models.TextChoices):
    POSITIVE = "positive", "Positive"
    NEUTRAL = "neutral", "Neutral"
    NEGATIVE = "negative", "Negative"


class CallLog(TimeStampedModel):
    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="call_logs")
    call_sid = models.CharField(max_length=64, unique=True)
    patient = models.ForeignKey(
        "clinic.Patient", on_delete=models.SET_NULL, null=True, blank=True, related_name="call_logs"
    )
    direction = models.CharField(
        max_length=10, choices=CallDirection.choices, default=CallDirection.INBOUND
    )
    from_number = models.CharField(max_length=32)
    to_number = models.CharField(max_length=32)
    duration_seconds = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=CallStatus.choices, default=CallStatus.RINGING)
    language = models.CharField(max_length=5, blank=True)
    # The readable transcript; ``turns`` keeps each turn (speaker, text, time, language).
    transcript = models.TextField(blank=True)
    turns = models.JSONField(default=list, blank=True)
    summary = models.TextField(blank=True)
    sentiment = models.CharField(max_length=10, choices=Sentiment.choices, blank=True)
    intents_detected = models.JSONField(default=list, blank=True)
    appointment_created = models.ForeignKey(
        "clinic.Appointment", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    latency = models.JSONField(default=dict, blank=True)
    providers = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # How the call is served: "stream" (Media Streams + our pipeline) or "gather"
    # (Twilio's own speech recognition, the fallback).
    channel = models.CharField(max_length=10, default="stream")
    # The stream must prove it belongs to this call: a one-time token handed out in
    # the TwiML (only its hash is kept), and only one socket may ever attach.
    stream_token_hash = models.CharField(max_length=64, blank=True)
    stream_connected_at = models.DateTimeField(null=True, blank=True)
    # The gather fallback keeps the dialog state here between webhooks.
    agent_state = models.JSONField(default=dict, blank=True)
    # The final status callback and the stream may end a call in either order.
    finalized_at = models.DateTimeField(null=True, blank=True)

    objects = ClinicOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["clinic", "created_at"]),
            models.Index(fields=["clinic", "patient"]),
        ]

    def __str__(self):
        return f"{self.call_sid} {self.from_number} -> {self.to_number}"
