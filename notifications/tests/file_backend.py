"""SMS backends for tests and benchmarks that run Celery workers in other processes.

``SMS_BACKEND=notifications.tests.file_backend.FileOutboxBackend`` appends one JSON line
per send to the file named by ``VAANI_TEST_SMS_OUTBOX``: a single ``write`` on a file
opened with ``O_APPEND``, so lines from concurrent worker processes never mix, and a line
that was written survives its process being killed (it is in the kernel's page cache).
The line is the provider's acceptance: a message whose line exists was sent.

``VAANI_TEST_SMS_LATENCY`` (seconds, default 0) is the provider's round trip, split
around the acceptance: half before the line is written, half after it (a worker killed
in the second half has sent the message but not yet heard back).

The message is named by the ``?m=<id>`` of its status callback, so set
``SMS_STATUS_CALLBACK_URL`` (any URL: nothing calls it). ``lookup`` reads the file back
(same recipient, sender and body since then), as the provider's list would.

``SMS_BACKEND=notifications.tests.file_backend.FileTwilioBackend`` is the production
``TwilioBackend`` (the twilio SDK builds and parses every request) with only the SDK's
HTTP transport replaced by ``twilio_fake.FakeTwilioTransport`` writing to the same file:
sends are ``POST .../Messages.json``, lookups ``GET .../Messages.json?To=&From=&DateSent>=``.
"""

import json
import os
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from notifications.backends import Outgoing, SendResult, TwilioBackend
from notifications.tests.twilio_fake import ACCOUNT, TOKEN, FakeTwilioTransport, FileStore


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
                "from": message.sender,
                "channel": message.channel,
                "body": message.body,
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

    def lookup(self, message: Outgoing, *, since: datetime) -> list[SendResult]:
        wanted = (message.to, message.sender, message.channel, message.body)
        return [
            SendResult(
                provider_id=line["sid"],
                provider_status="queued",
                created_at=datetime.fromtimestamp(line["at"], UTC),
            )
            for line in read_outbox(os.environ["VAANI_TEST_SMS_OUTBOX"])
            if (line.get("to"), line.get("from"), line.get("channel"), line.get("body")) == wanted
            and line["at"] >= since.timestamp()
        ]


class FileTwilioBackend(TwilioBackend):
    """The Twilio backend, Twilio faked at the SDK's transport, its messages in the file."""

    def __init__(self):
        transport = FakeTwilioTransport(
            store=FileStore(os.environ["VAANI_TEST_SMS_OUTBOX"]),
            latency=float(os.environ.get("VAANI_TEST_SMS_LATENCY") or 0),
        )
        super().__init__(account_sid=ACCOUNT, auth_token=TOKEN, http_client=transport)
