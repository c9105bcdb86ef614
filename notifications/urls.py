from django.urls import path

from notifications import webhooks

urlpatterns = [
    path("sms/incoming", webhooks.incoming_message, name="sms-incoming"),
    path("sms/status", webhooks.message_status, name="sms-status"),
]
