"""``GET /api/v1/admin/dashboard`` (§8.1) and ``GET /api/v1/admin/analytics`` (§8.3) from known
calls, appointments and latencies; days are the clinic's local days (Asia/Kolkata)."""

import sys
from datetime import date, datetime, time, timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from accounts.tests.factories import UserFactory
from clinic.models import AppointmentStatus
from clinic.tests.factories import AppointmentFactory
from voice.models import CallLog, CallStatus
from voice.tests.factories import CallLogFactory
from webhooks.models import DeliveryStatus
from webhooks.tests.factories import WebhookDeliveryFactory

pytestmark = pytest.mark.django_db

DASHBOARD = "/api/v1/admin/dashboard"
ANALYTICS = "/api/v1/admin/analytics"


def local(clinic, day: date, clock: str) -> datetime:
    hour, minute = map(int, clock.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=clinic.tzinfo)


def call(clinic, when: datetime, **fields) -> CallLog:
    log = CallLogFactory(clinic=clinic, **fields)
    CallLog.objects.filter(pk=log.pk).update(created_at=when)
    return log


def booking(clinic, made: datetime, scheduled: datetime, status=AppointmentStatus.SCHEDULED):
    appointment = AppointmentFactory(clinic=clinic, scheduled_time=scheduled, status=status)
    type(appointment).objects.filter(pk=appointment.pk).update(created_at=made)
    return appointment


def per_turn(*first_audio_ms):
    return {
        "turns": len(first_audio_ms),
        "per_turn": [{"first_audio_ms": ms, "reply_ms": 1} for ms in first_audio_ms],
    }


# --- Roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DASHBOARD, ANALYTICS])
@pytest.mark.parametrize("role", [Role.RECEPTIONIST, Role.DOCTOR])
def test_staff_below_admin_are_refused(make_client, clinic, role, path):
    response = make_client(UserFactory(clinic=clinic, role=role)).get(path)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("path", [DASHBOARD, ANALYTICS])
def test_signed_out_is_401(make_client, path):
    assert make_client().get(path).status_code == 401


@pytest.mark.parametrize("path", [DASHBOARD, ANALYTICS])
@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_see_them(make_client, clinic, role, path, settings):
    response = make_client(UserFactory(clinic=clinic, role=role)).get(path)
    assert response.status_code == 200
    assert set(response.json()) == {"success", "data", "timestamp"}
    assert response["X-RateLimit-Limit"] == str(settings.RATE_LIMITS["admin"])


# --- Dashboard -----------------------------------------------------------------------------------


@pytest.fixture
def today(clinic):
    return timezone.localdate(timezone=clinic.tzinfo)


def test_dashboard_from_known_data(admin_api, clinic, other_clinic, today):
    yesterday = today - timedelta(days=1)
    # Today, local time: three completed calls, two that failed, one live.
    call(clinic, local(clinic, today, "00:10"), duration_seconds=60, latency=per_turn(400, 600))
    call(clinic, local(clinic, today, "09:00"), duration_seconds=90, latency=per_turn(800))
    call(clinic, local(clinic, today, "23:50"), duration_seconds=120, latency={"turn_p50_ms": 700})
    call(clinic, local(clinic, today, "10:00"), status=CallStatus.FAILED, duration_seconds=0)
    call(clinic, local(clinic, today, "11:00"), status=CallStatus.NO_ANSWER, duration_seconds=0)
    live = call(clinic, timezone.now(), status=CallStatus.IN_PROGRESS, duration_seconds=0)
    # Not today: late yesterday (local), and another clinic's.
    call(clinic, local(clinic, yesterday, "23:59"), duration_seconds=999, latency=per_turn(5000))
    call(other_clinic, local(clinic, today, "10:00"), duration_seconds=999)
    # A call "in progress" since yesterday was lost, not live.
    call(clinic, local(clinic, yesterday, "12:00"), status=CallStatus.IN_PROGRESS)
    # Bookings made today (one since cancelled), and one made yesterday.
    later = local(clinic, today + timedelta(days=3), "10:00")
    booking(clinic, local(clinic, today, "00:30"), later)
    booking(clinic, local(clinic, today, "12:00"), later, status=AppointmentStatus.CANCELLED)
    booking(clinic, local(clinic, yesterday, "23:00"), later)
    WebhookDeliveryFactory(endpoint__clinic=clinic)
    WebhookDeliveryFactory(endpoint__clinic=clinic, status=DeliveryStatus.FAILED)
    WebhookDeliveryFactory(endpoint__clinic=clinic, status=DeliveryStatus.SUCCEEDED)
    WebhookDeliveryFactory(endpoint__clinic=other_clinic)

    data = admin_api.get(DASHBOARD).json()["data"]

    assert data["today"] == {
        "total_calls": 6,
        "completed_calls": 3,
        "failed_calls": 2,
        "appointments_booked": 2,
        "average_call_duration": 90,
        "date": today.isoformat(),
    }
    assert data["active_sessions"] == 1 and live.finalized_at is None
    assert data["average_latency_ms"] == 625  # (400 + 600 + 800 + 700) / 4
    assert data["p95_latency_ms"] == 800
    assert data["voice_engine_status"] in {"healthy", "degraded"}
    assert set(data["system_health"]) == {"database", "redis", "twilio", "deepgram", "cartesia"}
    assert data["system_health"]["database"] == "connected"
    assert data["webhooks"] == {"pending": 1, "failed": 1}
    assert data["time_zone"] == "Asia/Kolkata"


def test_dashboard_of_a_quiet_day(admin_api):
    data = admin_api.get(DASHBOARD).json()["data"]
    assert data["today"]["total_calls"] == 0 and data["today"]["average_call_duration"] == 0
    assert data["average_latency_ms"] is None
    assert data["active_sessions"] == 0


def test_messages_come_from_the_notifications_app(admin_api, monkeypatch):
    pytest.importorskip("notifications.selectors")
    seen = {}

    def counts(clinic, start, end):
        seen.update(clinic=clinic, start=start, end=end)
        return {"sent": 7, "failed": 2}

    monkeypatch.setattr("notifications.selectors.message_counts", counts)
    data = admin_api.get(DASHBOARD).json()["data"]
    assert data["messages"] == {"sent": 7, "failed": 2}
    assert seen["end"] - seen["start"] == timedelta(days=1)
    assert seen["start"].utcoffset() == timedelta(0)  # UTC instants of the local day


def test_messages_are_null_without_the_notifications_app(admin_api, monkeypatch):
    monkeypatch.setitem(sys.modules, "notifications.selectors", None)  # import fails
    assert admin_api.get(DASHBOARD).json()["data"]["messages"] is None
    analytics = admin_api.get(ANALYTICS).json()["data"]
    assert analytics["messages"] is None


# --- Analytics ------------------------------------------------------------------------------------


JAN_1, JAN_20 = date(2026, 1, 1), date(2026, 1, 20)


@pytest.fixture
def january(clinic, other_clinic):
    """Known calls and appointments in January 2026, and some just outside it."""
    for minute, language in enumerate(["hi", "hi", "hi", "en", "hi-en", ""]):
        call(
            clinic,
            local(clinic, JAN_1, f"00:{minute:02d}"),  # minutes after local midnight
            duration_seconds=100 + minute * 10,
            language=language,
        )
    call(clinic, local(clinic, JAN_20, "23:59"), status=CallStatus.FAILED, language="en")
    call(clinic, local(clinic, JAN_20, "12:00"), status=CallStatus.BUSY, language="en")
    # Just outside, in local time (the same UTC day as Jan 1 / Jan 20 though).
    call(clinic, local(clinic, date(2025, 12, 31), "23:30"), language="hi")
    call(clinic, local(clinic, date(2026, 1, 21), "00:00"), language="hi")
    call(other_clinic, local(clinic, JAN_1, "10:00"), language="hi")

    made = local(clinic, JAN_1, "09:00")
    for status, count in [
        (AppointmentStatus.COMPLETED, 4),
        (AppointmentStatus.CANCELLED, 2),
        (AppointmentStatus.NO_SHOW, 1),
        (AppointmentStatus.SCHEDULED, 1),
    ]:
        for _ in range(count):
            booking(clinic, made, local(clinic, date(2026, 1, 10), "10:00"), status=status)
    booking(clinic, local(clinic, date(2025, 12, 20), "09:00"), local(clinic, JAN_1, "10:00"))
    booking(clinic, made, local(clinic, date(2026, 2, 1), "10:00"))  # made in, held after
    booking(other_clinic, made, local(clinic, date(2026, 1, 10), "10:00"))


def test_analytics_from_known_data(admin_api, january):
    response = admin_api.get(ANALYTICS, {"start_date": "2026-01-01", "end_date": "2026-01-20"})
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["period"] == {
        "start": "2026-01-01",
        "end": "2026-01-20",
        "time_zone": "Asia/Kolkata",
    }
    assert data["calls"] == {
        "total": 8,
        "completed": 6,
        "failed": 2,
        "average_duration_seconds": 125,  # 100..150 seconds
    }
    assert data["appointments"] == {
        "total_booked": 9,
        "completed": 4,
        "cancelled": 2,
        "no_show": 1,
        "scheduled": 2,
        "booked_in_period": 9,
    }
    assert data["languages"] == {"hindi": 3, "english": 3, "hinglish": 1, "unknown": 1}
    assert data["performance"]["samples"] == 0
    assert data["performance"]["p95_latency_ms"] is None
    assert data["webhooks"] == {"pending": 0, "failed": 0}


def test_latency_percentiles(admin_api, clinic):
    day = date(2026, 1, 5)
    samples = list(range(10, 1001, 10))  # 100 turns: 10, 20, ... 1000 ms
    for chunk in range(0, 100, 10):
        call(clinic, local(clinic, day, "10:00"), latency=per_turn(*samples[chunk : chunk + 10]))
    call(clinic, local(clinic, day, "11:00"), latency={})  # no figures: no sample
    call(clinic, local(clinic, day, "12:00"), latency=per_turn(None))  # a turn never spoken
    data = admin_api.get(
        ANALYTICS, {"start_date": "2026-01-05", "end_date": "2026-01-05", "metric": "latency"}
    ).json()["data"]
    assert set(data) == {"period", "performance"}
    assert data["performance"] == {
        "average_latency_ms": 505,
        "p50_latency_ms": 500,
        "p95_latency_ms": 950,
        "p99_latency_ms": 990,
        "samples": 100,
    }


@pytest.mark.parametrize(
    ("metric", "sections"),
    [
        ("calls", {"period", "calls", "languages"}),
        ("appointments", {"period", "appointments"}),
        ("latency", {"period", "performance"}),
    ],
)
def test_one_metric(admin_api, january, metric, sections):
    query = {"start_date": "2026-01-01", "end_date": "2026-01-20", "metric": metric}
    assert set(admin_api.get(ANALYTICS, query).json()["data"]) == sections


def test_defaults_to_the_last_30_local_days(admin_api, clinic, today):
    data = admin_api.get(ANALYTICS).json()["data"]
    assert data["period"]["end"] == today.isoformat()
    assert data["period"]["start"] == (today - timedelta(days=29)).isoformat()
    assert {"calls", "appointments", "performance", "languages", "messages", "webhooks"} <= set(
        data
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start_date": "2026-01-20", "end_date": "2026-01-01"}, "end_date"),
        ({"start_date": "2024-01-01", "end_date": "2026-01-01"}, "end_date"),
        ({"start_date": "2026-13-01"}, "start_date"),
        ({"metric": "revenue"}, "metric"),
    ],
)
def test_bad_queries(admin_api, query, field):
    response = admin_api.get(ANALYTICS, query)
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def test_another_clinics_figures_never_show(make_client, other_clinic, january):
    stranger = make_client(UserFactory(clinic=other_clinic, role=Role.OWNER))
    data = stranger.get(ANALYTICS, {"start_date": "2026-01-01", "end_date": "2026-01-20"})
    figures = data.json()["data"]
    assert figures["calls"]["total"] == 1
    assert figures["appointments"]["total_booked"] == 1
