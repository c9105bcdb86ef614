"""Who read or changed patient data through the API, and when. Never edited."""

from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    LIST = "list", "List"
    READ = "read", "Read"
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    CANCEL = "cancel", "Cancel"
    DELETE = "delete", "Delete"


class AuditEntry(models.Model):
    timestamp = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    clinic = models.ForeignKey(
        "clinic.Clinic", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    resource = models.CharField(max_length=40)
    action = models.CharField(max_length=10, choices=AuditAction.choices)
    # One entry per request; a list records every id it showed.
    object_ids = models.JSONField(default=list)
    request_id = models.CharField(max_length=64)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    path = models.CharField(max_length=300)

    class Meta:
        ordering = ["-timestamp", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["clinic", "resource", "timestamp"])]

    def __str__(self):
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.user} {self.action} {self.resource}"
