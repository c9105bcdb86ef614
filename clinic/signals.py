"""The one hook every appointment change passes through.

Receivers (SMS, outgoing webhooks, live UI updates) connect to
``appointment_changed``; it is sent only after the change has committed, so a
rolled-back booking notifies nobody.
"""

from enum import StrEnum

from django.db import transaction
from django.dispatch import Signal

# Sent with: event (AppointmentEvent), appointment, and for updates rescheduled/previous_time.
appointment_changed = Signal()


class AppointmentEvent(StrEnum):
    CREATED = "appointment.created"
    UPDATED = "appointment.updated"
    CANCELLED = "appointment.cancelled"


def announce_appointment_change(event: AppointmentEvent, appointment, **extra) -> None:
    transaction.on_commit(
        lambda: appointment_changed.send(
            sender=type(appointment), event=event, appointment=appointment, **extra
        )
    )
