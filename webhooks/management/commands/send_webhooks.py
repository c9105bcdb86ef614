"""``manage.py send_webhooks [--loop]``: what beat's ``webhooks.sweep`` does, by hand.

With a worker, due deliveries are handed to it; in the embedded mode (eager Celery,
no beat) they are sent right here, so ``--loop`` is how retries happen there.
"""

import time

from django.core.management.base import BaseCommand

from webhooks import services


class Command(BaseCommand):
    help = "Sends (or enqueues) webhook deliveries that are due: once, or every --interval s."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep going until stopped.")
        parser.add_argument("--interval", type=float, default=60.0, help="Seconds between runs.")

    def handle(self, *args, loop=False, interval=60.0, **options):
        while True:
            count = services.enqueue_due_deliveries()
            self.stdout.write(f"{count} due webhook deliveries handed over")
            if not loop:
                return
            time.sleep(interval)
