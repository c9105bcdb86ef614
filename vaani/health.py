"""``GET /api/v1/admin/health`` (§8.2): public, answers its documented body, not the envelope."""

import time

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from vaani.common.timeutils import now_iso
from vaani.common.views import ApiView


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        return {
            "status": "unhealthy",
            "response_time_ms": round((time.perf_counter() - started) * 1000, 1),
            "error": exc.__class__.__name__,
        }
    return {
        "status": "healthy",
        "response_time_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def check_database() -> dict:
    def query():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    return _timed(query)


def check_redis() -> dict:
    if not settings.REDIS_URL:
        return {"status": "not_configured", "response_time_ms": 0}

    def ping():
        from django_redis import get_redis_connection

        get_redis_connection("default").ping()

    return _timed(ping)


def voice_provider_status() -> dict:
    # Configured cloud providers are reported as such; calls fall back to the offline
    # providers when they fail, so their reachability is not probed on every check.
    return {
        "deepgram": "configured" if settings.DEEPGRAM_API_KEY else "not_configured",
        "cartesia": "configured" if settings.CARTESIA_API_KEY else "not_configured",
        "offline": "healthy",
    }


_component = inline_serializer(
    "HealthComponent",
    {
        "status": serializers.ChoiceField(choices=["healthy", "unhealthy", "not_configured"]),
        "response_time_ms": serializers.FloatField(),
        "error": serializers.CharField(required=False),
    },
)


_health = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"]),
        "timestamp": serializers.DateTimeField(),
        "version": serializers.CharField(),
        "components": inline_serializer(
            "HealthComponents",
            {
                "database": _component,
                "redis": _component,
                "voice_providers": serializers.DictField(child=serializers.CharField()),
            },
        ),
    },
)


class HealthView(ApiView):
    """§8.2: the plain health body (no envelope); 503 when the database is down."""

    authentication_classes = []
    permission_classes = [AllowAny]
    rate_limit_category = "public"
    envelope = False  # read by the OpenAPI schema class: the body is documented unwrapped

    @extend_schema(
        tags=["admin"],
        responses={
            (200, "application/json"): _health,
            (503, "application/json"): _health,
        },
    )
    def get(self, request):
        database, redis = check_database(), check_redis()
        if database["status"] != "healthy":
            overall = "unhealthy"
        elif redis["status"] == "unhealthy":
            overall = "degraded"
        else:
            overall = "healthy"
        body = {
            "status": overall,
            "timestamp": now_iso(),
            "version": settings.VERSION,
            "components": {
                "database": database,
                "redis": redis,
                "voice_providers": voice_provider_status(),
            },
        }
        response = Response(body, status=503 if overall == "unhealthy" else 200)
        response.envelope = False
        return response
