"""Celery tasks for outgoing webhooks: thin, idempotent, acknowledged after they run.

A task carries only a delivery id; the stored row says whether anything is owed, so
a duplicate, a redelivery after a worker died, or the sweeper's re-enqueue never
sends a delivery that already succeeded.
"""

from celery import shared_task

from webhooks import services


@shared_task(name="webhooks.deliver", acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: int) -> str:
    return services.attempt_delivery(delivery_id)


@shared_task(name="webhooks.sweep", acks_late=True, ignore_result=True)
def sweep_webhook_deliveries() -> int:
    """Beat, every minute: due retries whose wait was too long for a countdown, and
    deliveries whose task was lost (broker down at commit, worker gone)."""
    return services.enqueue_due_deliveries()
