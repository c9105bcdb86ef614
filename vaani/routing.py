"""WebSocket routes of every app, gathered for the ASGI router."""

from voice.routing import websocket_urlpatterns as voice_routes

websocket_urlpatterns = [*voice_routes]
