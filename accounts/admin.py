from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import RevokedSession, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("email", "first_name", "last_name", "clinic", "role", "is_active", "last_login")
    list_filter = ("role", "clinic", "is_active", "is_staff", "is_superuser")
    search_fields = ("email", "username", "first_name", "last_name")
    list_select_related = ("clinic",)
    ordering = ("email",)
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Clinic", {"fields": ("clinic", "role")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "email", "clinic", "role", "password1", "password2"),
            },
        ),
    )


@admin.register(RevokedSession)
class RevokedSessionAdmin(admin.ModelAdmin):
    list_display = ("user", "sid", "revoked_at", "expires_at")
    search_fields = ("user__email", "sid")
    list_filter = ("revoked_at",)
    readonly_fields = ("sid", "user", "revoked_at", "expires_at")
