from django.contrib import admin

from audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: an audit trail that operators could edit would prove nothing."""

    list_display = (
        "timestamp",
        "user",
        "clinic",
        "resource",
        "action",
        "object_ids",
        "request_id",
        "ip_address",
    )
    search_fields = ("user__email", "request_id", "path")
    list_filter = ("resource", "action", "clinic")
    list_select_related = ("user", "clinic")
    date_hierarchy = "timestamp"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
