"""The bodies of §12.2: what each event says, serialized once and stored as sent.

Every body is ``{"id", "event", "timestamp", "data"}``; ``id`` is the event id (also
the ``webhook-id`` header), ``timestamp`` when the change happened. ``data`` carries
the documented fields plus a few more; no patient names or phone numbers.
"""

import json
import uuid
from datetime import datetime

from clinic.signals import AppointmentEvent
from vaani.common.timeutils import iso_utc


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def appointment_data(
    appointment, event: str, *, rescheduled: bool = False, previous_time=None
) -> dict:
    data = {
        "id": appointment.pk,
        "patient_id": appointment.patient_id,
        "doctor_id": appointment.doctor_id,
        "scheduled_time": iso_utc(appointment.scheduled_time),
        "status": appointment.status,
        "end_time": iso_utc(appointment.end_time),
        "duration_minutes": appointment.duration_minutes,
        "source": appointment.source,
    }
    if event == AppointmentEvent.UPDATED:
        data["rescheduled"] = bool(rescheduled)
        data["previous_time"] = iso_utc(previous_time) if rescheduled else None
    elif event == AppointmentEvent.CANCELLED:
        data["cancelled_at"] = iso_utc(appointment.cancelled_at)
    return data


def call_data(call_log) -> dict:
    return {
        "call_sid": call_log.call_sid,
        "patient_id": call_log.patient_id,
        "duration_seconds": call_log.duration_seconds,
        "summary": call_log.summary,
        "appointment_id": call_log.appointment_created_id,
        "status": call_log.status,
        "direction": call_log.direction,
        "language": call_log.language,
    }


def ping_data(endpoint) -> dict:
    return {"webhook_id": endpoint.pk, "message": "A test event from Vaani."}


def body(*, event_id: str, event_type: str, data: dict, occurred_at: datetime) -> str:
    """The exact JSON text that is sent and signed (compact, UTF-8)."""
    payload = {
        "id": event_id,
        "event": event_type,
        "timestamp": iso_utc(occurred_at),
        "data": data,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
