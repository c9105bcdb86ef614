from datetime import UTC, datetime

from django.utils import timezone


def iso_utc(value: datetime | None) -> str | None:
    """The API's one datetime format: UTC, seconds, ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return iso_utc(timezone.now())
