"""The one hook every appointment change passes through.

Receivers (SMS, outgoing webhooks, live UI updates) connect to
``appointment_changed``; it is sent only after the change has committed, so a
rolled-back booking notifies nobody.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum

from django.db import transaction
from django.dispatch import Signal

# Sent with: event (AppointmentEvent), appointment, and for updates rescheduled/previous_time.
appointment_changed = Signal()


class AppointmentEvent(StrEnum):
    CREATED = "appointment.created"
    UPDATED = "appointment.updated"
    CANCELLED = "appointment.cancelled"


_unannounced: ContextVar[bool] = ContextVar("appointment_changes_unannounced", default=False)


@contextmanager
def unannounced() -> Iterator[None]:
    """Changes made inside are stored with every rule checked, and told to nobody: no SMS,
    no webhook, no live event.  For data that is news to no one, such as the demo clinic
    (its bookings used to text 55 made-up numbers at every fresh ``serve``, and would
    have gone through Twilio in production mode)."""
    token = _unannounced.set(True)
    try:
        yield
    finally:
        _unannounced.reset(token)


def announce_appointment_change(event: AppointmentEvent, appointment, **extra) -> None:
    if _unannounced.get():
        return
    transaction.on_commit(
        lambda: appointment_changed.send(
            sender=type(appointment), event=event, appointment=appointment, **extra
        )
    )
