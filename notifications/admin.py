from django.contrib import admin

from notifications import texts
from notifications.models import (
    ContactPreference,
    InboundMessage,
    MessageTemplate,
    NotificationSettings,
    OptOut,
    OutboundMessage,
)

_PROVIDER_FIELDS = (
    "idempotency_key",
    "provider_id",
    "provider_status",
    "error_code",
    "error_message",
    "attempts",
    "claimed_at",
    "handed_at",
    "sent_at",
    "delivered_at",
    "failed_at",
    "fallback_of",
    "created_at",
    "updated_at",
)


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
    """The record of every message. Written by the system only: nothing is added here,
    and what the provider said is read-only."""

    list_display = (
        "created_at",
        "to",
        "kind",
        "channel",
        "status",
        "language",
        "patient",
        "clinic",
        "attempts",
        "error_code",
        "provider_id",
    )
    list_filter = ("status", "kind", "channel", "language", "clinic", "created_at")
    search_fields = (
        "to",
        "provider_id",
        "idempotency_key",
        "body",
        "patient__name",
        "error_message",
    )
    list_select_related = ("patient", "clinic")
    date_hierarchy = "created_at"
    # Only the status may be changed (e.g. to cancel a waiting message by hand).
    readonly_fields = (
        "clinic",
        "patient",
        "appointment",
        "kind",
        "channel",
        "to",
        "sender",
        "language",
        "body",
        "send_after",
        "appointment_time",
        "reminder_offset_minutes",
        *_PROVIDER_FIELDS,
    )

    def has_add_permission(self, request):
        return False


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "from_number", "to_number", "channel", "command", "clinic")
    list_filter = ("command", "channel", "clinic", "created_at")
    search_fields = ("from_number", "to_number", "provider_id", "body", "reply_body")
    list_select_related = ("clinic",)
    raw_id_fields = ("patient", "appointment", "reply")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    """Unknown placeholders are refused by the model's clean()."""

    list_display = ("clinic", "kind", "language", "updated_at")
    list_filter = ("kind", "language", "clinic")
    search_fields = ("body", "clinic__name")

    def get_form(self, request, obj=None, change=False, **kwargs):
        allowed = sorted(set().union(*texts.PLACEHOLDERS.values()))
        kwargs.setdefault("help_texts", {})["body"] = (
            "Placeholders: "
            + ", ".join(f"{{{name}}}" for name in allowed)
            + " ({old_date} and {old_time} in reschedule notices only). Write {{ and }} "
            "for a literal brace."
        )
        return super().get_form(request, obj, change, **kwargs)


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin):
    list_display = (
        "clinic",
        "reminder_offsets_minutes",
        "quiet_hours_start",
        "quiet_hours_end",
        "sms_enabled",
        "whatsapp_enabled",
    )


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    list_display = ("phone", "clinic", "opted_out", "source", "updated_at")
    list_filter = ("opted_out", "source", "clinic")
    search_fields = ("phone",)


@admin.register(ContactPreference)
class ContactPreferenceAdmin(admin.ModelAdmin):
    list_display = ("patient", "channel", "updated_at")
    list_filter = ("channel",)
    search_fields = ("patient__name", "patient__phone")
    raw_id_fields = ("patient",)
