"""Reads for outgoing webhooks."""

from datetime import datetime

from django.db.models import Count, Prefetch, Q, QuerySet

from webhooks.models import (
    PING_EVENT,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


def endpoint_list(*, clinic) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(clinic=clinic).order_by("created_at", "id")


def delivery_list(*, endpoint: WebhookEndpoint, status: str | None = None) -> QuerySet:
    """The endpoint's deliveries, newest first, each with its tries."""
    queryset = WebhookDelivery.objects.filter(endpoint=endpoint).prefetch_related(
        Prefetch("log", queryset=WebhookAttempt.objects.order_by("number", "id"))
    )
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at", "-id")


def delivery_counts(
    *, clinic, start: datetime | None = None, end: datetime | None = None
) -> dict[str, int]:
    """Events waiting to be sent now, and those given up on (created in [start, end)).

    Test pings are not events and are not counted."""
    failed = Q(status=DeliveryStatus.FAILED)
    if start is not None:
        failed &= Q(created_at__gte=start)
    if end is not None:
        failed &= Q(created_at__lt=end)
    deliveries = WebhookDelivery.objects.filter(clinic=clinic).exclude(event_type=PING_EVENT)
    counts = deliveries.aggregate(
        pending=Count("pk", filter=Q(status=DeliveryStatus.PENDING)),
        failed=Count("pk", filter=failed),
    )
    return {"pending": counts["pending"], "failed": counts["failed"]}
