"""A Celery worker killed in the middle of a batch, on real Redis and PostgreSQL.

40 bookings each owe a confirmation SMS and an ``appointment.created`` webhook to a
receiver on 127.0.0.1 that refuses connections at first. A real ``celery -A vaani worker
--pool prefork --concurrency 2`` process starts on the batch and is killed (SIGKILL, its
whole process group: no warm shutdown, nothing acknowledged or requeued) once some SMS
have gone. A second worker starts, the receiver comes up, and the periodic tasks beat
would send (``dispatch_due_messages``, ``webhooks.sweep``) are sent every two seconds.

SMS go through the production ``TwilioBackend`` and the twilio SDK, with only the SDK's
HTTP transport faked (``notifications/tests/file_backend.py``: ``FileTwilioBackend``):
Twilio's Messages API keeps every message it takes in a file shared by the worker
processes, and answers the list call (``To``, ``From``, ``DateSent>``) from it.

What must hold afterwards (the apps' contracts, notifications/README.md and
webhooks/README.md):

- every SMS is sent exactly once, those the killed worker was in the middle of sending
  (claimed, at most one per worker process) included: once their claim has run out
  (``SMS_SENDING_STALE_SECONDS``) beat queues them again, and a message that had been
  handed to Twilio is looked up there first: found, it is recorded with Twilio's id and
  not sent again; not found, it is sent. Each row ends ``sent`` with the id of the one
  message Twilio took for it;
- every webhook delivery succeeds and the receiver sees every event id (at least once;
  repeats are counted and reported, deduplicating on ``webhook-id`` is the receiver's part).

The waits are settings, shortened here (``WEBHOOK_RETRY_BASE_SECONDS``,
``WEBHOOK_SWEEP_GRACE_SECONDS``, ``SMS_SENDING_STALE_SECONDS``), so recovery takes seconds;
a webhook delivery the killed worker held (rare: the down receiver refuses at once) is
held for 3 x WEBHOOK_TIMEOUT_SECONDS + 60 s, which makes it about a minute.

Needs ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL``; skipped otherwise. The Redis
database of ``REDIS_URL`` is flushed (as every test's cache fixture already does).
"""

import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from clinic import services as clinic_services
from clinic.tests.factories import ClinicFactory, DoctorFactory, PatientFactory
from notifications.models import MessageKind, MessageStatus, OutboundMessage
from notifications.tasks import dispatch_due_messages
from notifications.tests.file_backend import read_outbox
from vaani.celery import app as celery_app
from webhooks import services as webhook_services
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.tasks import sweep_webhook_deliveries

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (django_settings.REDIS_URL and django_settings.IS_POSTGRES),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: a real worker process",
    ),
]

ROOT = Path(django_settings.BASE_DIR)
BOOKINGS = 40
CONCURRENCY = 2
KILL_AFTER_SMS = 10  # of BOOKINGS: the kill comes with some, not all, sent
SMS_LATENCY = 0.1  # seconds per send at the fake provider: the batch takes a while
VISIBILITY_TIMEOUT = 4  # seconds: Redis gives the killed worker's unacked tasks back after it
WEBHOOK_TIMEOUT = 1  # seconds: also sets how long a claimed delivery is held (3x + 60 s)
WEBHOOK_RETRY_BASE = 2  # seconds: the first retry waits 1-2 s, doubling...
WEBHOOK_RETRY_MAX_DELAY = 8  # ...up to 4-8 s
WEBHOOK_SWEEP_GRACE = 2  # seconds the sweeper leaves a due delivery to its countdown task
SMS_SENDING_STALE = 10  # seconds: a send claimed this long ago is the killed worker's
SECRET = "crash-test-secret"
WORKER_READY_TIMEOUT = 60
RECOVERY_TIMEOUT = 150  # seconds after the restart; about 70 are expected (see the docstring)
PERIODIC_EVERY = 2.0


# --- The receiver --------------------------------------------------------------------------------


class Receiver:
    """HTTP on 127.0.0.1, DOWN (the port is bound but nothing listens: connections are
    refused) until ``up()``. Records every request's event id and checks its signature."""

    def __init__(self):
        self.requests: list[dict] = []
        self.bad_signatures = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                with receiver._lock:
                    receiver.requests.append(
                        {
                            "event_id": self.headers.get("webhook-id"),
                            "delivery": self.headers.get("X-VAANI-Delivery"),
                            "attempt": self.headers.get("X-VAANI-Attempt"),
                            "body_id": json.loads(body).get("id"),
                        }
                    )
                    if not hmac.compare_digest(expected, self.headers.get("X-VAANI-Signature", "")):
                        receiver.bad_signatures += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.server_bind()  # the port is ours from now on, but refuses connections
        self.port = self.server.server_address[1]
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/vaani"

    def up(self) -> None:
        self.server.server_activate()  # listen()
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def event_ids(self) -> list[str]:
        with self._lock:
            return [r["event_id"] for r in self.requests]

    def close(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


# --- Worker processes ----------------------------------------------------------------------------


def worker_database_url() -> str:
    """DATABASE_URL naming the test database (pytest-django renamed it in settings)."""
    db = django_settings.DATABASES["default"]
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}"


class Workers:
    """``celery -A vaani worker`` subprocesses, each the leader of its own process group so
    that a kill takes the pool's child processes with it. All are killed at teardown."""

    def __init__(self, tmp_path: Path, outbox: Path):
        self.tmp_path = tmp_path
        self.outbox = outbox
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def env(self) -> dict:
        env = dict(os.environ)
        for name in list(env):
            if name.startswith(("PYTEST_", "COV_")):
                env.pop(name)
        env.update(
            DJANGO_SETTINGS_MODULE="vaani.settings",
            DATABASE_URL=worker_database_url(),
            REDIS_URL=django_settings.REDIS_URL,
            CELERY_TASK_ALWAYS_EAGER="0",
            CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
            CACHE_KEY_PREFIX="vaani-crash-test",
            CHANNEL_PREFIX="vaani-crash-test:asgi",
            SECRET_KEY="crash-test-only-secret-key-0123456789abcdef0123456789",
            DEBUG="0",
            SMS_BACKEND="notifications.tests.file_backend.FileTwilioBackend",
            VAANI_TEST_SMS_OUTBOX=str(self.outbox),
            VAANI_TEST_SMS_LATENCY=str(SMS_LATENCY),
            SMS_STATUS_CALLBACK_URL="http://127.0.0.1:9/api/v1/sms/status",
            SMS_SENDING_STALE_SECONDS=str(SMS_SENDING_STALE),
            TWILIO_MESSAGING_FROM="+14155550100",
            WEBHOOK_ALLOW_PRIVATE_HOSTS="127.0.0.1",
            WEBHOOK_TIMEOUT_SECONDS=str(WEBHOOK_TIMEOUT),
            WEBHOOK_RETRY_BASE_SECONDS=str(WEBHOOK_RETRY_BASE),
            WEBHOOK_RETRY_MAX_DELAY_SECONDS=str(WEBHOOK_RETRY_MAX_DELAY),
            WEBHOOK_SWEEP_GRACE_SECONDS=str(WEBHOOK_SWEEP_GRACE),
            LOG_LEVEL="INFO",
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        )
        return env

    def start(self) -> subprocess.Popen:
        number = len(self.procs) + 1
        log = self.tmp_path / f"worker{number}.log"
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "vaani",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(CONCURRENCY),
            "--loglevel",
            "INFO",
            "--hostname",
            f"crash-test-{number}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        self.logs.append(log)
        deadline = time.monotonic() + WORKER_READY_TIMEOUT
        while b" ready." not in log.read_bytes():
            if proc.poll() is not None:
                raise AssertionError(f"worker {number} exited:\n{self.tail(log)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {number} not ready:\n{self.tail(log)}")
            time.sleep(0.05)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL to the worker and its pool's processes, as when a machine dies."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self, proc: subprocess.Popen) -> None:
        """Warm shutdown, then a kill if it takes too long."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill(proc)

    def kill_all(self) -> None:
        for proc in self.procs:
            self.kill(proc)

    @staticmethod
    def tail(log: Path, lines: int = 40) -> str:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def workers(transactional_db, tmp_path):
    """Torn down before the test database is flushed: no worker outlives the test."""
    pool = Workers(tmp_path, tmp_path / "sms-outbox.jsonl")
    try:
        yield pool
    finally:
        pool.kill_all()


@pytest.fixture
def broker(settings):
    """This test's Redis database, empty; tasks go to the broker (not run in-process)."""
    import redis

    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    client.flushdb()
    conf = celery_app.conf
    saved = conf.task_always_eager
    conf.task_always_eager = False
    yield client
    conf.task_always_eager = saved
    client.flushdb()
    client.close()


# --- The test ------------------------------------------------------------------------------------


def book_batch(receiver: Receiver):
    clinic = ClinicFactory()
    webhook_services.create_endpoint(
        clinic=clinic, url=receiver.url, events=["appointment.created"], secret=SECRET
    )
    doctors = [DoctorFactory(clinic=clinic) for _ in range(5)]
    day = timezone.localdate(timezone=clinic.tzinfo) + timedelta(days=3)
    for index in range(BOOKINGS):
        doctor = doctors[index % len(doctors)]
        slot = index // len(doctors)  # 8 half-hour slots from 09:00 per doctor
        start = datetime.combine(day, datetime.min.time(), tzinfo=clinic.tzinfo) + timedelta(
            hours=9, minutes=30 * slot
        )
        patient = PatientFactory(clinic=clinic, language_preference="en")
        clinic_services.book_appointment(
            clinic=clinic, patient_id=patient.pk, doctor_id=doctor.pk, scheduled_time=start
        )
    return clinic


def confirmations():
    return OutboundMessage.objects.filter(kind=MessageKind.CONFIRMATION)


def sends_per_message(outbox: Path) -> Counter:
    return Counter(line["m"] for line in read_outbox(outbox))


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_batch_sends_every_sms_exactly_once_and_every_webhook(
    broker, receiver, workers
):
    book_batch(receiver)
    assert confirmations().filter(status=MessageStatus.QUEUED).count() == BOOKINGS
    event_ids = set(WebhookDelivery.objects.values_list("event_id", flat=True))
    assert len(event_ids) == BOOKINGS

    # 1. A worker takes on the batch; the receiver is down. Killed once some SMS are out.
    first = workers.start()
    deadline = time.monotonic() + 60
    while len(read_outbox(workers.outbox)) < KILL_AFTER_SMS:
        assert time.monotonic() < deadline, workers.tail(workers.logs[0])
        assert first.poll() is None, workers.tail(workers.logs[0])
        time.sleep(0.01)
    workers.kill(first)
    killed_at = time.monotonic()
    time.sleep(0.5)  # a statement the dead worker had sent still commits: let it land

    sent_before = sends_per_message(workers.outbox)
    in_flight = dict(
        confirmations().filter(status=MessageStatus.SENDING).values_list("pk", "handed_at")
    )
    # Killed mid-send: handed to Twilio, and Twilio took it (or not) but the worker never
    # heard back; or claimed and not yet handed over.
    reached = {pk for pk, handed in in_flight.items() if handed and sent_before[pk]}
    not_reached = {pk for pk, handed in in_flight.items() if handed and not sent_before[pk]}
    not_handed = {pk for pk, handed in in_flight.items() if not handed}
    held_deliveries = WebhookDelivery.objects.filter(claim_token__isnull=False).count()
    tried_deliveries = WebhookDelivery.objects.filter(attempts__gt=0).count()
    assert 0 < len(sent_before) < BOOKINGS, "the kill must come in the middle of the batch"
    assert len(in_flight) <= CONCURRENCY

    # 2. Restarted once Redis may give the dead worker's unacknowledged tasks back; the
    #    receiver comes up; beat's periodic tasks are sent until everything is through.
    time.sleep(max(0.0, killed_at + VISIBILITY_TIMEOUT + 1 - time.monotonic()))
    workers.start()
    restarted_at = time.monotonic()
    receiver.up()

    def settled() -> bool:
        if WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists():
            return False
        if not event_ids <= set(receiver.event_ids()):
            return False
        return not confirmations().exclude(status=MessageStatus.SENT).exists()

    next_periodic = 0.0
    while not settled():
        now = time.monotonic()
        if now - restarted_at > RECOVERY_TIMEOUT:
            pending = list(
                WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).values(
                    "pk", "status", "attempts", "next_attempt_at", "locked_until", "last_error"
                )
            )
            waiting = list(
                confirmations()
                .exclude(status=MessageStatus.SENT)
                .values("pk", "status", "attempts", "error_message")
            )
            pytest.fail(
                f"not settled {RECOVERY_TIMEOUT}s after the restart\n"
                f"deliveries: {pending}\nsms: {waiting}\n{workers.tail(workers.logs[-1])}"
            )
        if now >= next_periodic:
            dispatch_due_messages.delay()
            sweep_webhook_deliveries.delay()
            next_periodic = now + PERIODIC_EVERY
        time.sleep(0.2)
    recovered_in = time.monotonic() - restarted_at
    workers.stop(workers.procs[-1])

    # 3. SMS: every one exactly once, those the kill interrupted included.
    outbox = read_outbox(workers.outbox)
    sends = Counter(line["m"] for line in outbox)
    assert max(sends.values()) == 1, f"an SMS was sent twice: {sends.most_common(3)}"
    rows = {row["pk"]: row for row in confirmations().values("pk", "status", "provider_id")}
    assert set(sends) == set(rows), f"never sent: {sorted(set(rows) - set(sends))}"
    sids = {line["m"]: line["sid"] for line in outbox}
    for pk, row in rows.items():
        assert row["status"] == MessageStatus.SENT and row["provider_id"] == sids[pk], row
    attempts = dict(confirmations().filter(pk__in=in_flight).values_list("pk", "attempts"))
    assert all(attempts[pk] >= 2 for pk in in_flight)  # claimed again after the kill

    # 4. Webhooks: every event delivered, each id seen at least once; repeats are counted.
    received = receiver.event_ids()
    assert set(received) == event_ids
    assert receiver.bad_signatures == 0
    assert all(r["event_id"] == r["body_id"] for r in receiver.requests)
    duplicates = len(received) - len(set(received))
    assert not WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists()

    print(
        f"\nworker killed after {len(sent_before)}/{BOOKINGS} SMS "
        f"({len(in_flight)} being sent, {held_deliveries} webhook deliveries held, "
        f"{tried_deliveries} tried against the down receiver); settled {recovered_in:.1f}s "
        f"after the restart.\nSMS: {sum(sends.values())} sends for {BOOKINGS} messages, "
        f"each exactly once; {len(in_flight)} interrupted mid-send: {len(reached)} had "
        f"reached Twilio (found by the lookup, not sent again); {len(not_reached)} handed "
        f"over but not reached it and {len(not_handed)} not yet handed over (those sent "
        f"after the restart).\nWebhooks: {len(received)} requests for "
        f"{len(event_ids)} events, every event delivered, {duplicates} raw duplicates."
    )
