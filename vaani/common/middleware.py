"""Request ids: every request carries one, for logs and the audit trail."""

import re
import uuid

from django.utils import timezone

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Takes a sane ``X-Request-ID`` from the caller or makes one, and echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        supplied = request.headers.get("X-Request-ID", "")
        request.request_id = supplied if _VALID_REQUEST_ID.match(supplied) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


class ClinicTimeZoneMiddleware:
    """Pages (the admin, later the front-desk UI) show times in the user's clinic zone.

    Not the API: its contract is UTC (``...Z``), and DRF would format local times there.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        clinic = getattr(getattr(request, "user", None), "clinic", None)
        if clinic is not None and not request.path.startswith("/api/"):
            with timezone.override(clinic.tzinfo):
                return self.get_response(request)
        return self.get_response(request)
