"""Every route under ``/api/v1``: no trailing slashes (the contract)."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from clinic.api.views import AppointmentViewSet, DoctorViewSet, PatientViewSet
from vaani.health import HealthView
from voice.api.views import CallLogViewSet

router = SimpleRouter(trailing_slash=False)
router.register("appointments", AppointmentViewSet, basename="appointment")
router.register("patients", PatientViewSet, basename="patient")
router.register("doctors", DoctorViewSet, basename="doctor")
router.register("call-logs", CallLogViewSet, basename="call-log")

urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include("voice.urls")),
    path("", include("notifications.urls")),
    path("admin/health", HealthView.as_view(), name="admin-health"),
    path("", include("analytics.api.urls")),
    path("", include("webhooks.api.urls")),
    *router.urls,
]
