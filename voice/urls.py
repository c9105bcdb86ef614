from django.urls import path

from voice import webhooks

urlpatterns = [
    path("voice/incoming", webhooks.incoming_call, name="voice-incoming"),
    path("voice/status", webhooks.call_status, name="voice-status"),
]
