from django import forms
from django.contrib import admin

from webhooks import ssrf
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookEndpointForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ["clinic", "url", "events", "secret", "description", "is_active"]
        widgets = {"secret": forms.PasswordInput(render_value=True)}

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            return ssrf.check_url(url)
        except ssrf.UnsafeURL as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "clinic", "is_active", "disabled_at", "last_success_at", "created_at")
    list_filter = ("is_active", "clinic")
    search_fields = ("url", "clinic__name", "description")
    list_select_related = ("clinic",)
    readonly_fields = (
        "disabled_at",
        "disabled_reason",
        "failing_since",
        "last_success_at",
        "last_failure_at",
        "created_by",
    )


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("number", "started_at", "status_code", "latency_ms", "error", "succeeded")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("event_type", "event_id", "endpoint", "status", "attempts", "created_at")
    list_filter = ("status", "event_type", "clinic")
    search_fields = ("event_id", "endpoint__url")
    list_select_related = ("endpoint",)
    date_hierarchy = "created_at"
    inlines = [WebhookAttemptInline]
    readonly_fields = (
        "clinic",
        "endpoint",
        "event_id",
        "event_type",
        "payload",
        "attempts",
        "delivered_at",
        "last_status_code",
        "last_error",
        "claim_token",
        "locked_until",
    )
