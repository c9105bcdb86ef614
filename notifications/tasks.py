"""Celery tasks: thin, idempotent, each calls one service."""

from celery import shared_task

from notifications import services


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=services.MAX_SEND_ATTEMPTS - 1,
    ignore_result=True,
)
def send_message(self, message_id: int):
    """Sends one queued message. Running it twice sends once (the row is claimed)."""
    retries = self.request.retries
    retry_in = None if retries >= self.max_retries else services.retry_delay(retries)
    try:
        services.deliver(message_id, retry_in=retry_in)
    except services.TransientSendError as exc:
        if self.request.is_eager:
            # Embedded mode (no broker): returning the Retry makes Celery run it again
            # at once; raising it would propagate into the request that queued it.
            return self.retry(exc=exc, countdown=retry_in, throw=False)
        raise self.retry(exc=exc, countdown=retry_in) from exc


@shared_task(acks_late=True, ignore_result=True)
def dispatch_due_messages() -> int:
    """Celery beat, every few minutes: due reminders, lost tasks, sends whose worker died."""
    return services.dispatch_due()
