"""Signal receivers (connected in ``apps.py``): domain events become stored deliveries.

Both signals are sent after the change commits, so a rolled-back change queues
nothing. A failure here is logged, never raised: the change it reports has
already been committed and its caller must not see an error for it.
"""

import logging

from webhooks import events, services
from webhooks.models import WebhookEvent

logger = logging.getLogger(__name__)


def on_appointment_changed(sender, event, appointment, **extra):
    try:
        data = events.appointment_data(
            appointment,
            event,
            rescheduled=extra.get("rescheduled", False),
            previous_time=extra.get("previous_time"),
        )
        services.publish_event(clinic_id=appointment.clinic_id, event_type=str(event), data=data)
    except Exception:
        logger.exception("Webhook event %s for appointment %s not queued", event, appointment.pk)


def on_call_completed(sender, call_log, **extra):
    try:
        services.publish_event(
            clinic_id=call_log.clinic_id,
            event_type=WebhookEvent.CALL_COMPLETED,
            data=events.call_data(call_log),
        )
    except Exception:
        logger.exception("Webhook event call.completed for %s not queued", call_log.call_sid)
