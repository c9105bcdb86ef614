"""The app's URLs plus ``/bench/floor``: the cheapest Django answer, the benchmark's floor.

A plain Django view through the whole middleware stack returning a fixed JSON body:
no DRF, no authentication, no database. Every endpoint's latency is compared to it.
"""

from django.http import JsonResponse
from django.urls import path

from vaani.urls import handler404, handler500
from vaani.urls import urlpatterns as app_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]

_FLOOR_BODY = {"success": True, "data": {"ok": True}, "timestamp": "2026-01-20T10:00:00Z"}


def floor(request):
    return JsonResponse(_FLOOR_BODY)


urlpatterns = [path("bench/floor", floor, name="bench-floor"), *app_urlpatterns]
