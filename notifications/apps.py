from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"
    verbose_name = "Patient messages"

    def ready(self):
        from clinic.signals import appointment_changed
        from notifications.receivers import on_appointment_changed

        appointment_changed.connect(
            on_appointment_changed, dispatch_uid="notifications.on_appointment_changed"
        )
