"""ASGI entry point: Daphne serves HTTP (Django) and WebSockets (Channels) here."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vaani.settings")
# Django must be set up before anything imports models (the routing below does).
django.setup(set_prefix=False)

from vaani.common.asgi import SyncChainASGIHandler  # noqa: E402

django_asgi_app = SyncChainASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from vaani.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

# The URL routes are imported on the first request otherwise (all views, serializers and
# the API schema's hooks: ~14k objects): loaded here, they are frozen below with the rest.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018
get_resolver().reverse_dict  # noqa: B018

# Live calls send 20 ms audio frames from this process's event loop.  A full garbage
# collection walking everything loaded at start-up took 50-80 ms: an audible gap in
# every reply playing at that moment.  Frozen, those long-lived objects are left out
# of collections (tracemalloc still sees them; gc.get_objects() no longer does).
# What the first calls load and build is frozen later, when no call is in flight
# (voice.runtime.call_ended).
gc.freeze()

if os.environ.get("VOICE_GC_LOG_MS"):  # measuring the collector's pauses (voice/gcwatch.py)
    from voice import gcwatch

    gcwatch.install(float(os.environ["VOICE_GC_LOG_MS"]))
