"""What Celery beat does every few minutes, once: for embedded mode (no beat) or cron."""

from django.core.management.base import BaseCommand

from notifications import services


class Command(BaseCommand):
    help = "Queues due reminders, re-enqueues lost send tasks, re-queues sends whose worker died."

    def handle(self, *args, **options):
        queued = services.dispatch_due()
        self.stdout.write(f"{queued} message(s) queued")
