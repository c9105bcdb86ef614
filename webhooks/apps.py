from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"
    verbose_name = "Outgoing webhooks"

    def ready(self):
        # The two hooks of the domain, both sent after their transaction commits.
        from clinic.signals import appointment_changed
        from voice.services import call_completed
        from webhooks import receivers

        appointment_changed.connect(
            receivers.on_appointment_changed, dispatch_uid="webhooks.appointment_changed"
        )
        call_completed.connect(receivers.on_call_completed, dispatch_uid="webhooks.call_completed")
