from datetime import date

from django.db.models import QuerySet

from clinic import schedule
from clinic.models import Clinic
from voice.models import CallLog


def call_log_list(
    *,
    clinic: Clinic,
    patient_id: int | None = None,
    direction: str | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
) -> QuerySet[CallLog]:
    """Calls newest first; dates are whole local days in the clinic's time zone."""
    queryset = CallLog.objects.filter(clinic=clinic).select_related("patient")
    if patient_id is not None:
        queryset = queryset.filter(patient_id=patient_id)
    if direction:
        queryset = queryset.filter(direction=direction)
    queryset = queryset.filter(
        schedule.local_days("created_at", start_date, end_date, clinic.tzinfo)
    )
    return queryset.order_by("-created_at", "-id")
