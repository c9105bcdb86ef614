"""The admin figures of §8.1 (dashboard) and §8.3 (analytics), from the stored records.

Periods are whole local days in the clinic's time zone. What is counted:

- calls: CallLogs created in the period; ``completed`` have status completed, ``failed``
  ended without a conversation (failed, busy, no-answer, canceled); calls still ringing
  or in progress are in ``total`` only. Durations average the completed calls.
- appointments (analytics): appointments scheduled in the period, by status
  (``total_booked`` is all of them, ``booked_in_period`` those made in it); the
  dashboard's ``appointments_booked`` counts bookings made today.
- latency: the caller-perceived delay of each turn, ``first_audio_ms`` of every item of
  ``CallLog.latency["per_turn"]`` (end of the caller's speech to our first audio); a
  call recorded without per-turn figures adds its ``turn_p50_ms`` once. Averages and
  nearest-rank percentiles, in whole milliseconds; null when there is no sample.
- languages: calls by their language (hi, en, hi-en); others are ``unknown``.
- messages: SMS sent and failed, from the notifications app when it is installed.
- webhooks: deliveries waiting now, and given up on in the period.
"""

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Avg, Count, Q
from django.utils import timezone

from clinic import schedule
from clinic.models import Appointment, AppointmentStatus, Clinic, Language
from vaani import health
from voice.models import CallLog, CallStatus
from webhooks.selectors import delivery_counts

LANGUAGE_NAMES = {
    Language.HINDI: "hindi",
    Language.ENGLISH: "english",
    Language.HINGLISH: "hinglish",
}
FAILED_CALL_STATUSES = (
    CallStatus.FAILED,
    CallStatus.BUSY,
    CallStatus.NO_ANSWER,
    CallStatus.CANCELED,
)
LIVE_CALL_STATUSES = (CallStatus.QUEUED, CallStatus.RINGING, CallStatus.IN_PROGRESS)
# A call "live" for longer than this was lost (a crash before its end was recorded).
LIVE_CALL_MAX_AGE = timedelta(hours=4)
METRICS = ("calls", "appointments", "latency")


@dataclass(frozen=True)
class Period:
    """Local days ``start``..``end`` (inclusive) as the UTC instants [starts_at, ends_at)."""

    start: date
    end: date
    starts_at: datetime
    ends_at: datetime


def local_period(clinic: Clinic, start: date, end: date) -> Period:
    tz = clinic.tzinfo
    return Period(
        start=start,
        end=end,
        starts_at=schedule.day_bounds(start, tz)[0],
        ends_at=schedule.day_bounds(end + timedelta(days=1), tz)[0],
    )


def today(clinic: Clinic, now: datetime | None = None) -> date:
    return timezone.localdate(now or timezone.now(), timezone=clinic.tzinfo)


def _calls(clinic: Clinic, period: Period):
    return CallLog.objects.filter(
        clinic=clinic, created_at__gte=period.starts_at, created_at__lt=period.ends_at
    )


# --- Calls ---------------------------------------------------------------------------------------


def call_counts(*, clinic: Clinic, period: Period) -> dict:
    figures = _calls(clinic, period).aggregate(
        total=Count("pk"),
        completed=Count("pk", filter=Q(status=CallStatus.COMPLETED)),
        failed=Count("pk", filter=Q(status__in=FAILED_CALL_STATUSES)),
        average_duration=Avg("duration_seconds", filter=Q(status=CallStatus.COMPLETED)),
    )
    return {
        "total": figures["total"],
        "completed": figures["completed"],
        "failed": figures["failed"],
        "average_duration_seconds": round(figures["average_duration"] or 0),
    }


def language_counts(*, clinic: Clinic, period: Period) -> dict:
    counts = {name: 0 for name in LANGUAGE_NAMES.values()}
    counts["unknown"] = 0
    rows = _calls(clinic, period).values("language").annotate(n=Count("pk")).order_by()
    for row in rows:
        counts[LANGUAGE_NAMES.get(row["language"], "unknown")] += row["n"]
    return counts


def active_sessions(*, clinic: Clinic, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return CallLog.objects.filter(
        clinic=clinic,
        status__in=LIVE_CALL_STATUSES,
        finalized_at__isnull=True,
        created_at__gte=now - LIVE_CALL_MAX_AGE,
    ).count()


# --- Latency -------------------------------------------------------------------------------------


def turn_latencies(latency: dict) -> list[float]:
    """A call's per-turn delays (ms) from its ``CallLog.latency`` record."""
    if not isinstance(latency, dict):
        return []
    samples = [
        float(turn["first_audio_ms"])
        for turn in latency.get("per_turn") or []
        if isinstance(turn, dict) and isinstance(turn.get("first_audio_ms"), int | float)
    ]
    if not samples and isinstance(latency.get("turn_p50_ms"), int | float):
        samples = [float(latency["turn_p50_ms"])]
    return samples


def latency_samples(*, clinic: Clinic, period: Period) -> list[float]:
    records = _calls(clinic, period).exclude(latency={}).values_list("latency", flat=True)
    samples: list[float] = []
    for latency in records.iterator(chunk_size=2000):
        samples.extend(turn_latencies(latency))
    return samples


def percentile(ordered: list[float], p: float) -> int | None:
    """Nearest-rank percentile of sorted samples."""
    if not ordered:
        return None
    rank = max(math.ceil(p / 100 * len(ordered)), 1)
    return round(ordered[rank - 1])


def latency_figures(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "average_latency_ms": round(sum(ordered) / len(ordered)) if ordered else None,
        "p50_latency_ms": percentile(ordered, 50),
        "p95_latency_ms": percentile(ordered, 95),
        "p99_latency_ms": percentile(ordered, 99),
        "samples": len(ordered),
    }


# --- Appointments ------------------------------------------------------------------------------


def appointment_counts(*, clinic: Clinic, period: Period) -> dict:
    in_period = Q(scheduled_time__gte=period.starts_at, scheduled_time__lt=period.ends_at)
    booked = Q(created_at__gte=period.starts_at, created_at__lt=period.ends_at)
    figures = Appointment.objects.filter(clinic=clinic).aggregate(
        total_booked=Count("pk", filter=in_period),
        completed=Count("pk", filter=in_period & Q(status=AppointmentStatus.COMPLETED)),
        cancelled=Count("pk", filter=in_period & Q(status=AppointmentStatus.CANCELLED)),
        no_show=Count("pk", filter=in_period & Q(status=AppointmentStatus.NO_SHOW)),
        scheduled=Count("pk", filter=in_period & Q(status=AppointmentStatus.SCHEDULED)),
        booked_in_period=Count("pk", filter=booked),
    )
    return figures


def appointments_booked(*, clinic: Clinic, period: Period) -> int:
    return Appointment.objects.filter(
        clinic=clinic, created_at__gte=period.starts_at, created_at__lt=period.ends_at
    ).count()


# --- Other apps' figures -----------------------------------------------------------------------


def message_counts(*, clinic: Clinic, period: Period) -> dict | None:
    """``{"sent", "failed"}`` SMS in the period, or None without the notifications app."""
    try:
        from notifications.selectors import message_counts as counts
    except ImportError:
        return None
    figures = counts(clinic, period.starts_at, period.ends_at)
    return {"sent": figures.get("sent", 0), "failed": figures.get("failed", 0)}


def webhook_counts(*, clinic: Clinic, period: Period) -> dict:
    return delivery_counts(clinic=clinic, start=period.starts_at, end=period.ends_at)


def voice_engine_status() -> str:
    """``healthy`` while calls stream through our pipeline, ``degraded`` when they fall
    back to Twilio's gather (forced, or a speech provider's circuit is open)."""
    try:
        from voice.fallback import streaming_available
    except ImportError:
        return "healthy"
    return "healthy" if streaming_available() else "degraded"


def system_health() -> dict:
    """Database and Redis are probed; outside providers report whether they are set up
    (``configured``/``not_configured``), not probed on every dashboard load."""

    def configured(*values) -> str:
        return "configured" if all(values) else "not_configured"

    database = health.check_database()["status"]
    redis = health.check_redis()["status"]
    return {
        "database": "connected" if database == "healthy" else "disconnected",
        "redis": {"healthy": "connected", "not_configured": "not_configured"}.get(
            redis, "disconnected"
        ),
        "twilio": configured(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN),
        "deepgram": configured(settings.DEEPGRAM_API_KEY),
        "cartesia": configured(settings.CARTESIA_API_KEY),
    }


# --- The two answers ---------------------------------------------------------------------------


def dashboard(*, clinic: Clinic, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    day = today(clinic, now)
    period = local_period(clinic, day, day)
    calls = call_counts(clinic=clinic, period=period)
    latency = latency_figures(latency_samples(clinic=clinic, period=period))
    return {
        "today": {
            "total_calls": calls["total"],
            "completed_calls": calls["completed"],
            "failed_calls": calls["failed"],
            "appointments_booked": appointments_booked(clinic=clinic, period=period),
            "average_call_duration": calls["average_duration_seconds"],
            "date": day,
        },
        "active_sessions": active_sessions(clinic=clinic, now=now),
        "voice_engine_status": voice_engine_status(),
        "average_latency_ms": latency["average_latency_ms"],
        "p95_latency_ms": latency["p95_latency_ms"],
        "system_health": system_health(),
        "messages": message_counts(clinic=clinic, period=period),
        "webhooks": webhook_counts(clinic=clinic, period=period),
        "time_zone": clinic.time_zone,
    }


def analytics(*, clinic: Clinic, start: date, end: date, metric: str | None = None) -> dict:
    """All sections, or with ``metric`` only that one (calls come with their languages)."""
    period = local_period(clinic, start, end)
    data: dict = {"period": {"start": start, "end": end, "time_zone": clinic.time_zone}}
    if metric in (None, "calls"):
        data["calls"] = call_counts(clinic=clinic, period=period)
        data["languages"] = language_counts(clinic=clinic, period=period)
    if metric in (None, "appointments"):
        data["appointments"] = appointment_counts(clinic=clinic, period=period)
    if metric in (None, "latency"):
        data["performance"] = latency_figures(latency_samples(clinic=clinic, period=period))
    if metric is None:
        data["messages"] = message_counts(clinic=clinic, period=period)
        data["webhooks"] = webhook_counts(clinic=clinic, period=period)
    return data
