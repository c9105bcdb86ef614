"""Reads for outgoing webhooks."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Prefetch, Q, QuerySet

from webhooks.models import (
    PING_EVENT,
    USER_DISABLED_REASONS,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


def endpoint_list(*, clinic) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(clinic=clinic).order_by("created_at", "id")


def automatically_disabled() -> Q:
    """Endpoints Vaani switched off itself (``services.disable_endpoint``), not a person.

    A person's switching off writes one of ``USER_DISABLED_REASONS``; an endpoint made
    inactive some other way (the admin's form) has no ``disabled_at``."""
    return (
        Q(is_active=False, disabled_at__isnull=False)
        & ~Q(disabled_reason="")
        & ~Q(disabled_reason__in=USER_DISABLED_REASONS)
    )


@dataclass(frozen=True)
class DisabledEndpoints:
    endpoints: list[WebhookEndpoint]  # the most recently disabled first, at most ``limit``
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.endpoints)


def automatically_disabled_endpoints(*, limit: int = 20) -> DisabledEndpoints:
    """Every clinic's automatically disabled endpoints, for the operators' notice.

    One query (clinic joined, only the columns shown); a count only when there are more."""
    rows = list(
        WebhookEndpoint.objects.filter(automatically_disabled())
        .select_related("clinic")
        .only(
            "url",
            "disabled_at",
            "disabled_reason",
            "clinic__id",
            "clinic__name",
            "clinic__time_zone",
        )
        .order_by("-disabled_at", "-id")[: limit + 1]
    )
    if len(rows) <= limit:
        return DisabledEndpoints(endpoints=rows, total=len(rows))
    total = WebhookEndpoint.objects.filter(automatically_disabled()).count()
    return DisabledEndpoints(endpoints=rows[:limit], total=total)


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
