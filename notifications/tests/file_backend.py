"""An SMS backend for tests and benchmarks that run Celery workers in other processes.

``SMS_BACKEND=notifications.tests.file_backend.FileOutboxBackend`` appends one JSON line
per send to the file named by ``VAANI_TEST_SMS_OUTBOX``: a single ``write`` on a file
opened with ``O_APPEND``, so lines from concurrent worker processes never mix, and a line
that was written survives its process being killed (it is in the kernel's page cache).
The line is the provider's acceptance: a message whose line exists was sent.

``VAANI_TEST_SMS_LATENCY`` (seconds, default 0) is the provider's round trip, split
around the acceptance: half before the line is written, half after it (a worker killed
in the second half has sent the message but not yet heard back).

The message is named by the ``?m=<id>`` of its status callback, so set
``SMS_STATUS_CALLBACK_URL`` (any URL: nothing calls it).
"""

import json
import os
import time
import uuid
from urllib.parse import parse_qs, urlsplit

from notifications.backends import Outgoing, SendResult


def read_outbox(path) -> list[dict]:
    """Every recorded send, oldest first."""
    try:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.endswith("\n")]
    except FileNotFoundError:
        return []


class FileOutboxBackend:
    def send(self, message: Outgoing) -> SendResult:
        path = os.environ["VAANI_TEST_SMS_OUTBOX"]
        latency = float(os.environ.get("VAANI_TEST_SMS_LATENCY") or 0)
        query = parse_qs(urlsplit(message.status_callback).query)
        provider_id = f"SM{uuid.uuid4().hex}"
        line = json.dumps(
            {
                "m": int(query["m"][0]) if "m" in query else None,
                "to": message.to,
                "sid": provider_id,
                "pid": os.getpid(),
                "at": time.time(),
            }
        )
        if latency:
            time.sleep(latency / 2)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
        if latency:
            time.sleep(latency / 2)
        return SendResult(provider_id=provider_id, provider_status="queued")
