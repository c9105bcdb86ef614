from django.contrib import admin

from voice.models import CallLog


@admin.register(CallLog)
class CallLogAdmin(admin.ModelAdmin):
    list_display = (
        "call_sid",
        "created_at",
        "from_number",
        "to_number",
        "patient",
        "direction",
        "status",
        "duration_seconds",
        "sentiment",
        "clinic",
    )
    search_fields = ("call_sid", "from_number", "to_number", "patient__name", "summary")
    list_filter = ("status", "direction", "sentiment", "language", "clinic")
    list_select_related = ("patient", "clinic")
    raw_id_fields = ("patient", "appointment_created")
    date_hierarchy = "created_at"
