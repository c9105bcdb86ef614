"""Appointment changes -> patient messages (connected in ``NotificationsConfig.ready``)."""

import logging

from django.db import transaction

from notifications import services

logger = logging.getLogger(__name__)


def on_appointment_changed(sender, event, appointment, **extra):
    """Runs after the change committed. A failure here is logged, never raised: the
    booking stands, and other receivers (webhooks, live UI) must still run."""
    try:
        with transaction.atomic():
            services.handle_appointment_event(
                event,
                appointment,
                rescheduled=extra.get("rescheduled", False),
                previous_time=extra.get("previous_time"),
            )
    except Exception:
        logger.exception("Could not queue messages for appointment %s (%s)", appointment.pk, event)
