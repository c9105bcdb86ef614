"""Outgoing webhooks (§12): a clinic's receivers, and every delivery made to them.

A ``WebhookDelivery`` is written before anything is sent and is the only record of
what is owed: tasks and the sweeper read it, claim it with a conditional UPDATE,
send its stored body, and log each try as a ``WebhookAttempt``.
"""

from django.conf import settings
from django.db import models

from vaani.common.models import ClinicOwnedQuerySet, TimeStampedModel


class WebhookEvent(models.TextChoices):
    APPOINTMENT_CREATED = "appointment.created", "Appointment created"
    APPOINTMENT_UPDATED = "appointment.updated", "Appointment updated"
    APPOINTMENT_CANCELLED = "appointment.cancelled", "Appointment cancelled"
    CALL_COMPLETED = "call.completed", "Call completed"


# Sent by "test" only: never subscribed to, never retried, says nothing of the endpoint's health.
PING_EVENT = "ping"

# The reasons written when a person switches an endpoint off (``services.update_endpoint``)
# or creates it switched off (``services.create_endpoint``). Any other reason on an inactive
# endpoint was written by ``services.disable_endpoint``: Vaani stopped it (failing for a day).
DISABLED_BY_USER = "Disabled by a user."
CREATED_DISABLED = "Created disabled."
USER_DISABLED_REASONS = (DISABLED_BY_USER, CREATED_DISABLED)


class WebhookEndpoint(TimeStampedModel):
    """A URL of the clinic's that receives the events it subscribed to, signed with ``secret``."""

    clinic = models.ForeignKey(
        "clinic.Clinic", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    # Checked by webhooks.ssrf (form, scheme, public address) on save and on every delivery.
    url = models.CharField(max_length=2000)
    events = models.JSONField(default=list, help_text="Subscribed event types.")
    # Needed in clear to sign each delivery; never returned by the API (only a hint).
    secret = models.CharField(max_length=255)
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    # Why and when it stopped receiving (failing for a day, or switched off): the UI's notice.
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    # First failed attempt since the last success: an endpoint failing for a day is disabled.
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = ClinicOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint("clinic", "url", name="webhook_endpoint_unique_url_per_clinic")
        ]

    def __str__(self):
        return self.url

    @property
    def secret_hint(self) -> str:
        return f"…{self.secret[-4:]}" if self.secret else ""

    def subscribes_to(self, event_type: str) -> bool:
        return event_type in (self.events or [])


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event owed to one endpoint: its exact body, and where its sending stands."""

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    # The event's id: the payload's "id" and the ``webhook-id`` header, the same on every try.
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=40)
    # The exact JSON text sent (UTF-8): every try sends and signs these same bytes.
    payload = models.TextField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A claimed delivery is being sent until ``locked_until`` (then anyone may claim it again).
    locked_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ClinicOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The sweeper: pending deliveries that are due.
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["endpoint", "-created_at"]),
            models.Index(fields=["clinic", "status", "created_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                "endpoint", "event_id", name="webhook_delivery_one_per_event_and_endpoint"
            )
        ]

    def __str__(self):
        return f"{self.event_type} {self.event_id} -> {self.endpoint_id}"

    @property
    def body(self) -> bytes:
        return self.payload.encode("utf-8")


class WebhookAttempt(models.Model):
    """One try at sending a delivery: what the receiver answered, or why it could not."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number", "id"]

    def __str__(self):
        return f"#{self.number} {self.status_code or self.error}"
