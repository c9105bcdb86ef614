from django.urls import path

from voice import gather, webhooks

urlpatterns = [
    path("voice/incoming", webhooks.incoming_call, name="voice-incoming"),
    path("voice/status", webhooks.call_status, name="voice-status"),
    path("voice/gather", gather.gather_entry, name="voice-gather"),
    path("voice/gather/collect", gather.gather_collect, name="voice-gather-collect"),
]
