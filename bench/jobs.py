"""Background jobs benchmark: one Celery worker process draining 10,000 reminder SMS and
10,000 webhook deliveries, on PostgreSQL and Redis. A script, not a test.

Run from the repository root::

    .venv/bin/python bench/jobs.py                      # 10,000 + 10,000, concurrency 4
    .venv/bin/python bench/jobs.py --concurrency 2      # compare pool sizes
    .venv/bin/python bench/jobs.py --reminders 2000 --webhooks 0

What it does:

1. Creates (if needed), migrates and empties (``flush``) the database of ``DATABASE_URL``
   (default ``postgres://postgres@127.0.0.1:5432/vaani_bench_jobs``; its name must contain
   ``bench``). Removes the Celery keys (queue, unacked) from the Redis database of
   ``REDIS_URL`` (default ``redis://127.0.0.1:6379/10``): give it a database of its own.
2. Writes with ``bulk_create``: one clinic (no quiet hours), 50 doctors, one patient and one
   upcoming appointment per reminder, each with one reminder that is due
   (``scheduled``, ``send_after`` in the past), and one webhook endpoint on a local
   receiver (a thread on 127.0.0.1 answering 200 at once, recording each ``webhook-id``).
3. Enqueues, with no worker running: the reminders through ``notifications.services
   .dispatch_due`` (the work of beat's ``dispatch_due_messages``: scheduled -> queued, one
   ``send_message`` task each), then the webhooks through ``webhooks.services
   .publish_event`` (one stored delivery and one ``webhooks.deliver`` task each). The queue
   is first-in first-out, so the worker drains the reminders, then the webhooks.
4. Starts ONE ``celery -A vaani worker --pool prefork --concurrency N`` process (default 4:
   the tasks mostly wait on PostgreSQL, Redis and HTTP, so on 2 cores 4 processes keep
   both busy; see ``--concurrency``) and waits until every job is done or ``--timeout``.
   SMS go to ``notifications.tests.file_backend.FileOutboxBackend`` (one appended line per
   send, shared by the worker's processes).
5. Prints per kind: enqueue time and throughput (jobs/s from the kind's first completion to
   its last), the worker's CPU time per job (its processes only: steadier than the rates on
   a shared machine), the whole drain from the worker's spawn, and how many were lost (never
   sent / never received) or duplicated (sent or received more than once). Exit status 1
   unless none of either.

The worker is always killed at the end (its whole process group).
"""

import argparse
import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/vaani_bench_jobs"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
BENCH_SECRET_KEY = "bench-only-secret-key-never-used-outside-bench-jobs-py-0123456789"
CELERY_KEYS = ("celery", "unacked", "unacked_index", "unacked_mutex")
N_DOCTORS = 50
SLOTS_PER_DAY = 16  # 09:00-13:00 and 14:00-18:00, 30 minutes each
REMINDER_OFFSET = 120
BATCH = 5000


def log(message: str) -> None:
    print(message, flush=True)


# --- Environment, database, Redis ----------------------------------------------------------------


def configure_environment(outbox: Path) -> None:
    """Read by Django here and by the worker process (which inherits the environment)."""
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    os.environ.setdefault("CACHE_KEY_PREFIX", "vaani-bench-jobs")
    os.environ.setdefault("CHANNEL_PREFIX", "vaani-bench-jobs:asgi")
    os.environ["DJANGO_SETTINGS_MODULE"] = "vaani.settings"
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", BENCH_SECRET_KEY)
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["SMS_BACKEND"] = "notifications.tests.file_backend.FileOutboxBackend"
    os.environ["VAANI_TEST_SMS_OUTBOX"] = str(outbox)
    os.environ["VAANI_TEST_SMS_LATENCY"] = "0"
    os.environ["SMS_STATUS_CALLBACK_URL"] = "http://127.0.0.1:9/api/v1/sms/status"
    os.environ.setdefault("TWILIO_MESSAGING_FROM", "+14155550100")
    os.environ["WEBHOOK_ALLOW_PRIVATE_HOSTS"] = "127.0.0.1"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )


def ensure_database() -> None:
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(os.environ["DATABASE_URL"])
    if not config["ENGINE"].endswith("postgresql"):
        raise SystemExit("The benchmark needs PostgreSQL: DATABASE_URL=postgres://...")
    name = config["NAME"]
    if "bench" not in name:
        raise SystemExit(
            f"Refusing to use database {name!r}: the benchmark empties it, so its name must "
            "contain 'bench' (e.g. vaani_bench_jobs)."
        )
    with psycopg.connect(
        dbname="postgres",
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        autocommit=True,
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log(f"created database {name}")


def reset_database() -> None:
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("flush", verbosity=0, interactive=False)
    log(f"migrate + flush: {time.perf_counter() - started:.1f}s")


def reset_broker() -> None:
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = list(CELERY_KEYS) + list(client.scan_iter("_kombu.binding.*"))
    client.delete(*keys)
    client.close()


# --- The receiver --------------------------------------------------------------------------------


class Receiver:
    """HTTP on 127.0.0.1 answering 200 at once; records each ``webhook-id`` and when."""

    def __init__(self):
        self.received: list[tuple[str, float]] = []
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    received.append((self.headers.get("webhook-id", ""), time.time()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 128
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- Jobs ----------------------------------------------------------------------------------------


def create_reminders(count: int) -> "Clinic":  # noqa: F821
    """``count`` upcoming appointments, each with one due reminder (status scheduled)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from clinic.models import Appointment, Clinic, Doctor, Patient
    from notifications.models import MessageKind, MessageStatus, NotificationSettings
    from notifications.models import OutboundMessage as Message

    started = time.perf_counter()
    tz = ZoneInfo("Asia/Kolkata")
    clinic = Clinic.objects.create(
        name="Bench Jobs Clinic", slug="bench-jobs", time_zone="Asia/Kolkata"
    )
    # No quiet hours: the dispatch would otherwise defer the reminders at night.
    NotificationSettings.objects.create(clinic=clinic, quiet_hours_start=None, quiet_hours_end=None)
    hours = {
        day: ["09:00-13:00", "14:00-18:00"]
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    }
    doctors = Doctor.objects.bulk_create(
        Doctor(clinic=clinic, name=f"Dr. Bench {i}", working_hours=hours) for i in range(N_DOCTORS)
    )
    if not count:
        return clinic
    patients = Patient.objects.bulk_create(
        (
            Patient(
                clinic=clinic, name=f"Patient {i}", phone=f"+9190{i:08d}", language_preference="en"
            )
            for i in range(count)
        ),
        batch_size=BATCH,
    )
    first_day = timezone.localdate(timezone=tz) + timedelta(days=2)
    appointments = []
    for i, patient in enumerate(patients):
        doctor = doctors[i % N_DOCTORS]
        slot_number = i // N_DOCTORS
        day = first_day + timedelta(days=slot_number // SLOTS_PER_DAY)
        slot = slot_number % SLOTS_PER_DAY
        hour = (9 if slot < 8 else 14) + (slot % 8) // 2
        start = datetime(day.year, day.month, day.day, hour, 30 * (slot % 2), tzinfo=tz)
        start = start.astimezone(UTC)
        appointments.append(
            Appointment(
                clinic=clinic,
                patient=patient,
                doctor=doctor,
                scheduled_time=start,
                end_time=start + timedelta(minutes=30),
                duration_minutes=30,
            )
        )
    appointments = Appointment.objects.bulk_create(appointments, batch_size=BATCH)
    due = timezone.now() - timedelta(seconds=1)
    Message.objects.bulk_create(
        (
            Message(
                clinic=clinic,
                patient=a.patient,
                appointment=a,
                kind=MessageKind.REMINDER,
                to=a.patient.phone,
                status=MessageStatus.SCHEDULED,
                idempotency_key=(
                    f"reminder:{a.pk}:{REMINDER_OFFSET}:{int(a.scheduled_time.timestamp())}"
                ),
                send_after=due,
                appointment_time=a.scheduled_time,
                reminder_offset_minutes=REMINDER_OFFSET,
            )
            for a in appointments
        ),
        batch_size=BATCH,
    )
    log(f"fill: {count} appointments with a due reminder in {time.perf_counter() - started:.1f}s")
    return clinic


def enqueue_reminders(count: int) -> float:
    """Beat's dispatch: due reminders -> queued, one send task each (to Redis)."""
    from notifications import services

    started = time.perf_counter()
    queued = services.dispatch_due(limit=count)
    elapsed = time.perf_counter() - started
    assert queued == count, f"dispatch_due queued {queued} of {count}"
    return elapsed


def enqueue_webhooks(clinic, count: int, url: str) -> tuple[float, set[str]]:
    """``count`` events through publish_event: a stored delivery and a task each."""
    from webhooks import services
    from webhooks.models import WebhookDelivery

    services.create_endpoint(
        clinic=clinic, url=url, events=["appointment.created"], secret="bench-jobs-secret"
    )
    started = time.perf_counter()
    for i in range(count):
        services.publish_event(
            clinic_id=clinic.pk,
            event_type="appointment.created",
            data={"id": i, "patient_id": i, "doctor_id": 1, "status": "scheduled"},
        )
    elapsed = time.perf_counter() - started
    event_ids = set(WebhookDelivery.objects.values_list("event_id", flat=True))
    assert len(event_ids) == count
    return elapsed, event_ids


# --- The worker ----------------------------------------------------------------------------------


def start_worker(concurrency: int, log_path: Path, loglevel: str) -> subprocess.Popen:
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
        str(concurrency),
        "--loglevel",
        loglevel,
        "--hostname",
        f"bench-jobs-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    with open(log_path, "wb") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed with its pool
        )


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return handle.read().count(b"\n")
    except FileNotFoundError:
        return 0


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- Main ----------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument(
        "--concurrency", type=int, default=4, help="prefork pool size of the one worker (4)"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds the worker gets to drain (1800)"
    )
    parser.add_argument(
        "--worker-log-level", default="WARNING", help="INFO logs every task and its run time"
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vaani-bench-jobs-"))
    outbox = workdir / "sms-outbox.jsonl"
    configure_environment(outbox)
    ensure_database()

    import django

    django.setup()
    from django.db import connection

    from notifications.models import MessageStatus
    from notifications.models import OutboundMessage as Message
    from notifications.tests.file_backend import read_outbox
    from webhooks.models import DeliveryStatus, WebhookDelivery

    reset_database()
    reset_broker()
    receiver = Receiver()
    worker = None

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        clinic = create_reminders(args.reminders)
        sms_enqueue = enqueue_reminders(args.reminders) if args.reminders else 0.0
        log(f"enqueued {args.reminders} reminders in {sms_enqueue:.1f}s")
        hook_enqueue, event_ids = (
            enqueue_webhooks(clinic, args.webhooks, receiver.url) if args.webhooks else (0.0, set())
        )
        log(f"enqueued {args.webhooks} webhook deliveries in {hook_enqueue:.1f}s")
        reminder_ids = set(Message.objects.filter(kind="reminder").values_list("pk", flat=True))
        connection.close()

        worker_log = workdir / "worker.log"
        spawned = time.time()
        worker = start_worker(args.concurrency, worker_log, args.worker_log_level)
        log(f"worker: prefork, concurrency {args.concurrency}, pid {worker.pid}, log {worker_log}")
        deadline = time.monotonic() + args.timeout
        last_report = 0.0
        while True:
            sent = count_lines(outbox)
            delivered = len(receiver.received)
            if sent >= args.reminders and delivered >= args.webhooks:
                pending_sms = Message.objects.filter(
                    status__in=[MessageStatus.QUEUED, MessageStatus.SENDING]
                ).count()
                pending_hooks = WebhookDelivery.objects.filter(
                    status=DeliveryStatus.PENDING
                ).count()
                if not pending_sms and not pending_hooks:
                    break
            if worker.poll() is not None:
                log(f"the worker exited:\n{tail(worker_log)}")
                break
            if time.monotonic() > deadline:
                log(f"timed out after {args.timeout:g}s")
                break
            if time.monotonic() - last_report > 10:
                log(f"  ... {sent} SMS sent, {delivered} webhooks received")
                last_report = time.monotonic()
            time.sleep(0.25)
        stop_worker(worker)
        worker = None
        time.sleep(0.2)  # a request the receiver is still answering

        # Results.
        sends = read_outbox(outbox)
        per_message = Counter(line["m"] for line in sends)
        sms_lost = len(reminder_ids - set(per_message))
        sms_duplicated = sum(1 for n in per_message.values() if n > 1)
        sms_extra = sum(n - 1 for n in per_message.values() if n > 1)
        not_sent = Message.objects.filter(kind="reminder").exclude(status=MessageStatus.SENT)
        per_event = Counter(event_id for event_id, _ in receiver.received)
        hooks_lost = len(event_ids - set(per_event))
        hooks_duplicated = sum(1 for n in per_event.values() if n > 1)
        hooks_extra = sum(n - 1 for n in per_event.values() if n > 1)
        not_succeeded = WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED)

        def rate(times: list[float]) -> str:
            """Jobs per second from the kind's first completion to its last."""
            if len(times) < 2:
                return f"{len(times)} done"
            seconds = max(times) - min(times)
            return f"{len(times)} in {seconds:.1f}s = {(len(times) - 1) / seconds:.0f} jobs/s"

        sms_times = [line["at"] for line in sends]
        hook_times = [at for _, at in receiver.received]
        every = sms_times + hook_times
        log("")
        log(
            f"one worker process, prefork concurrency {args.concurrency}, {os.cpu_count()} CPUs"
            " (PostgreSQL, Redis and the receiver on the same machine)"
        )
        log(f"reminder SMS: {rate(sms_times)}")
        log(f"webhooks:     {rate(hook_times)}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the worker and its pool
        cpu = usage.ru_utime + usage.ru_stime
        if every:
            log(
                f"worker CPU:   {cpu:.1f}s = {cpu * 1000 / len(every):.1f} ms per job (its own"
                " processes: less sensitive to other load on the machine than the rates)"
            )
            total = max(every) - spawned
            log(
                f"all:          {len(every)} in {total:.1f}s from the worker's spawn (startup"
                f" included) = {len(every) / total:.0f} jobs/s"
            )
        log(
            f"reminder SMS: {sms_lost} lost, {sms_duplicated} duplicated ({sms_extra} extra sends);"
            f" rows not 'sent': {not_sent.count()}"
        )
        log(
            f"webhooks:     {hooks_lost} lost, {hooks_duplicated} duplicated ({hooks_extra} extra"
            f" requests); deliveries not 'succeeded': {not_succeeded.count()}"
        )
        ok = not (sms_lost or sms_duplicated or hooks_lost or hooks_duplicated)
        ok = ok and not not_sent.exists() and not not_succeeded.exists()
        log("goal (none lost, none duplicated): " + ("met" if ok else "MISSED"))
        return 0 if ok else 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if worker is not None:
            stop_worker(worker)
        receiver.close()


if __name__ == "__main__":
    sys.exit(main())
