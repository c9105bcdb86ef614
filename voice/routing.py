from django.urls import re_path

from voice.consumers import MediaStreamConsumer

websocket_urlpatterns = [
    re_path(
        r"^api/v1/voice/stream/(?P<call_sid>[A-Za-z0-9]{2,64})$", MediaStreamConsumer.as_asgi()
    ),
]
