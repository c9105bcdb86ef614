"""The Celery application: ``celery -A vaani worker`` and ``celery -A vaani beat``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vaani.settings")

app = Celery("vaani")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
