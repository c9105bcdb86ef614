"""Reads about patient messages that pages and the dashboard need."""

from datetime import datetime

from django.db.models import Count, Q

from notifications.models import FAILED_STATUSES, SENT_STATUSES, OutboundMessage


def message_counts(clinic, start: datetime, end: datetime) -> dict[str, int]:
    """Messages created in [start, end) that went out, and those that failed.

    "sent" counts messages the provider accepted or delivered (TwiML replies too);
    "failed" counts failed and undelivered ones. A WhatsApp message that failed and
    went again by SMS counts once in each.
    """
    counts = OutboundMessage.objects.filter(
        clinic=clinic, created_at__gte=start, created_at__lt=end
    ).aggregate(
        sent=Count("pk", filter=Q(status__in=SENT_STATUSES)),
        failed=Count("pk", filter=Q(status__in=FAILED_STATUSES)),
    )
    return {"sent": counts["sent"], "failed": counts["failed"]}
