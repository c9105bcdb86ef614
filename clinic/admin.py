from django.contrib import admin

from clinic.models import (
    Appointment,
    Clinic,
    ClinicPhoneNumber,
    Doctor,
    DoctorScheduleException,
    Patient,
)


class ClinicPhoneNumberInline(admin.TabularInline):
    model = ClinicPhoneNumber
    extra = 0


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "time_zone", "front_desk_phone", "created_at")
    search_fields = ("name", "slug", "phone_numbers__number")
    list_filter = ("time_zone",)
    prepopulated_fields = {"slug": ("name",)}
    inlines = [ClinicPhoneNumberInline]


@admin.register(ClinicPhoneNumber)
class ClinicPhoneNumberAdmin(admin.ModelAdmin):
    list_display = ("number", "clinic", "label")
    search_fields = ("number", "clinic__name")
    list_filter = ("clinic",)
    list_select_related = ("clinic",)


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ("name", "phone", "date_of_birth", "language_preference", "clinic", "created_at")
    search_fields = ("name", "phone")
    list_filter = ("clinic", "language_preference")
    list_select_related = ("clinic",)
    date_hierarchy = "created_at"


class DoctorScheduleExceptionInline(admin.TabularInline):
    model = DoctorScheduleException
    extra = 0


@admin.register(Doctor)
class DoctorAdmin(admin.ModelAdmin):
    list_display = ("name", "specialization", "phone", "available", "clinic")
    search_fields = ("name", "specialization", "phone", "email")
    list_filter = ("clinic", "available", "specialization")
    list_select_related = ("clinic",)
    inlines = [DoctorScheduleExceptionInline]


@admin.register(DoctorScheduleException)
class DoctorScheduleExceptionAdmin(admin.ModelAdmin):
    list_display = ("doctor", "date", "kind", "hours", "note")
    search_fields = ("doctor__name", "note")
    list_filter = ("kind", "doctor__clinic")
    list_select_related = ("doctor",)
    date_hierarchy = "date"


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin):
    list_display = (
        "scheduled_time",
        "patient",
        "doctor",
        "duration_minutes",
        "status",
        "source",
        "clinic",
    )
    search_fields = ("patient__name", "patient__phone", "doctor__name", "reason", "call_sid")
    list_filter = ("status", "source", "clinic", "doctor", "duration_minutes")
    list_select_related = ("patient", "doctor", "clinic")
    raw_id_fields = ("patient", "doctor", "booked_by")
    readonly_fields = ("end_time", "created_at", "updated_at", "cancelled_at")
    date_hierarchy = "scheduled_time"
