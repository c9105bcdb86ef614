"""§8.2 of the API reference: ``GET /api/v1/admin/health`` (public, its own body)."""

import re

import pytest
from django.conf import settings as django_settings
from django.db.utils import OperationalError
from rest_framework.test import APIClient

from vaani import health

pytestmark = pytest.mark.django_db

HEALTH = "/api/v1/admin/health"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
REDIS_MODE = bool(django_settings.REDIS_URL)


def assert_component(component: dict, status: str):
    assert component["status"] == status
    assert isinstance(component["response_time_ms"], int | float)
    assert component["response_time_ms"] >= 0


def test_documented_body_without_the_envelope():
    response = APIClient().get(HEALTH)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    # §8.2 is not wrapped in {"success", "data"}.
    assert "success" not in body and "data" not in body
    assert {"status", "timestamp", "version", "components"} <= set(body)
    assert body["status"] == "healthy"
    assert TIMESTAMP.match(body["timestamp"])
    assert body["version"] == "2.0.0"
    components = body["components"]
    assert {"database", "redis", "voice_providers"} <= set(components)
    assert_component(components["database"], "healthy")
    providers = components["voice_providers"]
    assert {"deepgram", "cartesia"} <= set(providers)
    assert all(isinstance(value, str) for value in providers.values())
    assert response["X-Request-ID"]


@pytest.mark.parametrize(
    "authorization", [None, "Bearer garbage", "Bearer a.b.c", "Basic Zm9vOmJhcg==", "nonsense"]
)
def test_public_any_authorization_header_is_ignored(authorization):
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    response = client.get(HEALTH)
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


def test_redis_is_reported_in_both_modes():
    redis = APIClient().get(HEALTH).json()["components"]["redis"]
    if REDIS_MODE:
        assert_component(redis, "healthy")
    else:
        assert redis["status"] == "not_configured"


@pytest.mark.skipif(not REDIS_MODE, reason="REDIS_URL is not set")
def test_redis_health_really_pings_redis(monkeypatch):
    import django_redis

    calls = []
    real = django_redis.get_redis_connection

    def counting(alias="default", *args, **kwargs):
        calls.append(alias)
        return real(alias, *args, **kwargs)

    monkeypatch.setattr(django_redis, "get_redis_connection", counting)
    assert APIClient().get(HEALTH).json()["components"]["redis"]["status"] == "healthy"
    assert calls == ["default"]


def test_redis_down_is_degraded_not_down(settings, monkeypatch):
    import django_redis

    def refuse(*args, **kwargs):
        raise ConnectionError("connection refused")

    settings.REDIS_URL = settings.REDIS_URL or "redis://127.0.0.1:6379/15"
    monkeypatch.setattr(django_redis, "get_redis_connection", refuse)

    response = APIClient().get(HEALTH)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert_component(body["components"]["redis"], "unhealthy")
    assert_component(body["components"]["database"], "healthy")


class _BrokenConnection:
    def cursor(self):
        raise OperationalError("could not connect to server")


def test_database_failure_is_503_unhealthy(monkeypatch):
    monkeypatch.setattr(health, "connection", _BrokenConnection())

    response = APIClient().get(HEALTH)

    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert "success" not in body  # still the §8.2 body, so monitors can read it
    assert body["status"] == "unhealthy"
    assert TIMESTAMP.match(body["timestamp"])
    database = body["components"]["database"]
    assert_component(database, "unhealthy")
    assert database["error"] == "OperationalError"
    assert "could not connect" not in response.content.decode()  # no internals leak
    assert "redis" in body["components"] and "voice_providers" in body["components"]


def test_database_check_failure_when_patched_at_the_check(monkeypatch):
    monkeypatch.setattr(
        health,
        "check_database",
        lambda: {"status": "unhealthy", "response_time_ms": 2001.0, "error": "TimeoutError"},
    )
    response = APIClient().get(HEALTH)
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"


def test_database_check_runs_a_real_query(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert APIClient().get(HEALTH).status_code == 200


def test_voice_providers_follow_configuration(settings):
    settings.DEEPGRAM_API_KEY = "dg-key"
    settings.CARTESIA_API_KEY = ""
    providers = APIClient().get(HEALTH).json()["components"]["voice_providers"]
    assert providers["deepgram"] == "configured"
    assert providers["cartesia"] == "not_configured"
    assert "dg-key" not in str(providers)


def test_only_get(settings):
    response = APIClient().post(HEALTH, {}, format="json")
    assert response.status_code == 405
    assert response.json()["success"] is False


@pytest.mark.skipif(not REDIS_MODE, reason="REDIS_URL is not set")
def test_health_answers_when_redis_is_unreachable(settings):
    """Monitors must learn that Redis is down from the health body, not from a 500."""
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.REDIS_URL = dead
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": dead,
            "OPTIONS": {
                **settings.CACHES["default"].get("OPTIONS", {}),
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }

    response = APIClient().get(HEALTH)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "degraded"
    assert_component(body["components"]["redis"], "unhealthy")
    assert_component(body["components"]["database"], "healthy")
