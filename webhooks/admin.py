from django import forms
from django.contrib import admin, messages
from django.utils.translation import ngettext

from webhooks import selectors, services, ssrf
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


class DisabledAutomaticallyFilter(admin.SimpleListFilter):
    """Endpoints Vaani stopped itself (failing for a day), not switched off by a person."""

    title = "disabled automatically"
    parameter_name = "disabled_automatically"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(selectors.automatically_disabled())
        if self.value() == "no":
            return queryset.exclude(selectors.automatically_disabled())
        return queryset


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "clinic", "is_active", "disabled_at", "last_success_at", "created_at")
    list_filter = ("is_active", DisabledAutomaticallyFilter, "clinic")
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
    actions = ["re_enable"]

    @admin.action(description="Re-enable selected webhook endpoints", permissions=["change"])
    def re_enable(self, request, queryset):
        """As ``PATCH {"is_active": true}`` does: the notice and the failure streak are cleared
        and new events are sent again. Deliveries failed while it was disabled stay failed."""
        selected = list(queryset)  # before any change: the list's filter may hide them after
        endpoints = [endpoint for endpoint in selected if not endpoint.is_active]
        for endpoint in endpoints:
            services.update_endpoint(endpoint=endpoint, changes={"is_active": True})
            self.log_change(request, endpoint, "Re-enabled.")
        if endpoints:
            self.message_user(
                request,
                ngettext(
                    "Re-enabled %(count)d webhook endpoint: new events will be sent to it. "
                    "Deliveries that failed while it was disabled are not re-sent.",
                    "Re-enabled %(count)d webhook endpoints: new events will be sent to them. "
                    "Deliveries that failed while they were disabled are not re-sent.",
                    len(endpoints),
                )
                % {"count": len(endpoints)},
                messages.SUCCESS,
            )
        skipped = len(selected) - len(endpoints)
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d selected webhook endpoint was already enabled.",
                    "%(count)d selected webhook endpoints were already enabled.",
                    skipped,
                )
                % {"count": skipped},
                messages.INFO,
            )

    def save_model(self, request, obj, form, change):
        """Switching ``is_active`` here follows the API's rule (``services.update_endpoint``):
        enabling clears the notice and the failure streak, disabling records who and when."""
        if not (change and "is_active" in form.changed_data):
            return super().save_model(request, obj, form, change)
        wanted = obj.is_active
        obj.is_active = not wanted  # the other fields are saved first, the switch by the service
        super().save_model(request, obj, form, change)
        services.update_endpoint(endpoint=obj, changes={"is_active": wanted})
        obj.refresh_from_db()


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
