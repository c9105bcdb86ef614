"""API benchmark: real Daphne over loopback against a filled PostgreSQL database.

Run from the repository root::

    .venv/bin/python bench/api.py                 # fill once (re-used), serve, measure
    .venv/bin/python bench/api.py --refill        # drop the bench database and fill again
    .venv/bin/python bench/api.py --requests 500 --concurrency 8

What it does, in one run:

1. Creates (if needed) and migrates the database of ``DATABASE_URL`` (default
   ``postgres://postgres@127.0.0.1:5432/vaani_bench``) and fills it with bulk_create:
   1 clinic, 50 doctors, 20,000 patients, 200,000 appointments over 300 past and 100
   future days, never overlapping per doctor. A filled database is re-used.
2. Starts Daphne on a free loopback port with ``DJANGO_SETTINGS_MODULE=bench.settings``
   (the app's settings plus ``/bench/floor``, a bare Django view returning fixed JSON),
   DEBUG off, a SECRET_KEY set and the rate limits raised.
3. Measures p50/p95 latency of each endpoint over HTTP keep-alive: sequentially, then
   with a little concurrency, after a warm-up.
4. Counts SQL queries per request in-process (Django test client +
   ``CaptureQueriesContext``, same database) for two page sizes or two data sizes
   of each endpoint, and checks the goals.

Redis is used for the cache and rate limits like in production (``REDIS_URL``, default
``redis://127.0.0.1:6379/9`` with its own key prefix); ``--no-redis`` uses the
local-memory cache instead.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/vaani_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
BENCH_SECRET_KEY = "bench-only-secret-key-never-used-outside-bench-api-py-0123456789"
BENCH_RATE_LIMIT = "1000000"

CLINIC_SLUG = "bench-clinic"
FILL_VERSION = 1
N_DOCTORS = 50
N_PATIENTS = 20_000
DAYS_PAST = 300
DAYS_FUTURE = 100
PER_DOCTOR_DAY = 10  # 50 doctors x 400 days x 10 = 200,000 appointments
N_APPOINTMENTS = N_DOCTORS * (DAYS_PAST + DAYS_FUTURE) * PER_DOCTOR_DAY
N_HEAVY_PATIENTS = 20  # each gets HEAVY_SHARE appointments: long histories
HEAVY_SHARE = 500
SLOTS_PER_DAY = 16  # 09:00-13:00 and 14:00-18:00 in 30-minute steps
RESERVED_SLOT = 15  # 17:30-18:00 is never filled: the benchmark books it
CREATE_REASON = "bench-create"
BATCH = 5000
TZ = ZoneInfo("Asia/Kolkata")
WORKING_HOURS = {
    day: ["09:00-13:00", "14:00-18:00"]
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}
READ_GOAL_RATIO = 4.0
SLOTS_GOAL_QUERIES = 3


def log(message: str) -> None:
    print(message, flush=True)


# --- Environment and database ------------------------------------------------------------


def configure_environment(args) -> None:
    """Everything the in-process Django and the Daphne child read from the environment."""
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    if args.no_redis:
        os.environ.pop("REDIS_URL", None)
    else:
        os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
        os.environ.setdefault("CACHE_KEY_PREFIX", "vaani-bench")
        os.environ.setdefault("CHANNEL_PREFIX", "vaani-bench:asgi")
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", BENCH_SECRET_KEY)
    for category in ("AUTH", "API", "ADMIN", "PUBLIC"):
        os.environ[f"RATE_LIMIT_{category}"] = BENCH_RATE_LIMIT
    # "testserver" is the host of the in-process Django test client.
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )


def _admin_connection():
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(os.environ["DATABASE_URL"])
    if not config["ENGINE"].endswith("postgresql"):
        raise SystemExit("The benchmark needs PostgreSQL: DATABASE_URL=postgres://...")
    conn = psycopg.connect(
        dbname="postgres",
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        autocommit=True,
    )
    return conn, config["NAME"]


def ensure_database(*, drop: bool) -> None:
    from psycopg import sql

    conn, name = _admin_connection()
    if "bench" not in name:
        raise SystemExit(
            f"Refusing to use database {name!r}: the benchmark may drop and refill it, so its "
            "name must contain 'bench' (e.g. vaani_bench)."
        )
    with conn:
        if drop:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log(f"created database {name}")


def migrate() -> None:
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    log(f"migrate: {time.perf_counter() - started:.1f}s")


# --- Fill ----------------------------------------------------------------------------------


def is_filled() -> bool:
    from clinic.models import Appointment, Clinic, Doctor, Patient

    clinic = Clinic.objects.filter(slug=CLINIC_SLUG).first()
    if clinic is None or clinic.information.get("bench_fill") != FILL_VERSION:
        return False
    return (
        Doctor.objects.filter(clinic=clinic).count() == N_DOCTORS
        and Patient.objects.filter(clinic=clinic).count() == N_PATIENTS
        and Appointment.objects.filter(clinic=clinic).exclude(reason=CREATE_REASON).count()
        == N_APPOINTMENTS
    )


def anything_there() -> bool:
    from clinic.models import Clinic

    return Clinic.objects.exists()


def slot_start(day: date, index: int) -> datetime:
    """Start of the ``index``-th 30-minute slot of a local day, as an aware UTC datetime."""
    base_hour = 9 if index < 8 else 14
    minutes = (index % 8) * 30
    local = datetime(day.year, day.month, day.day, base_hour, 0, tzinfo=TZ)
    return (local + timedelta(minutes=minutes)).astimezone(UTC)


def fill() -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Role, User
    from clinic.models import (
        Appointment,
        AppointmentStatus,
        BookingSource,
        Clinic,
        Doctor,
        Patient,
    )

    rng = random.Random(20260120)
    total_started = time.perf_counter()
    today = timezone.localdate(timezone=TZ)

    started = time.perf_counter()
    with transaction.atomic():
        clinic = Clinic.objects.create(
            name="Bench Clinic",
            slug=CLINIC_SLUG,
            time_zone="Asia/Kolkata",
            information={"bench_fill": FILL_VERSION, "filled_on": today.isoformat()},
        )
        User.objects.create_user(
            email="bench@vaani.test",
            password="bench-password-1234",
            clinic=clinic,
            role=Role.RECEPTIONIST,
        )
        specializations = ["General Physician", "Cardiologist", "Pediatrician", "Dermatologist"]
        Doctor.objects.bulk_create(
            Doctor(
                clinic=clinic,
                name=f"Dr. Bench {i:02d}",
                specialization=specializations[i % len(specializations)],
                phone=f"+91981100{i:04d}",
                email=f"doctor{i}@bench.test",
                working_hours=WORKING_HOURS,
            )
            for i in range(N_DOCTORS)
        )
    log(f"fill: clinic, user, {N_DOCTORS} doctors: {time.perf_counter() - started:.1f}s")

    started = time.perf_counter()
    languages = ["hi", "en", "hi-en"]
    first_names = ["Rajesh", "Priya", "Amit", "Sunita", "Vikram", "Anjali", "Rahul", "Meera"]
    with transaction.atomic():
        Patient.objects.bulk_create(
            (
                Patient(
                    clinic=clinic,
                    phone=f"+9190{i:08d}",
                    name=f"{first_names[i % len(first_names)]} Patient{i:05d}",
                    date_of_birth=date(1940 + i % 80, 1 + i % 12, 1 + i % 28),
                    language_preference=languages[i % 3],
                )
                for i in range(N_PATIENTS)
            ),
            batch_size=BATCH,
        )
    log(f"fill: {N_PATIENTS:,} patients: {time.perf_counter() - started:.1f}s")

    started = time.perf_counter()
    doctor_ids = list(
        Doctor.objects.filter(clinic=clinic).order_by("id").values_list("id", flat=True)
    )
    patient_ids = list(
        Patient.objects.filter(clinic=clinic).order_by("id").values_list("id", flat=True)
    )
    heavy, others = patient_ids[:N_HEAVY_PATIENTS], patient_ids[N_HEAVY_PATIENTS:]
    owners = [pid for pid in heavy for _ in range(HEAVY_SHARE)]
    owners += rng.choices(others, k=N_APPOINTMENTS - len(owners))
    rng.shuffle(owners)
    reasons = ["Checkup", "Follow-up", "Fever", "Consultation", "Vaccination", "Report review"]
    sources = [BookingSource.API, BookingSource.VOICE, BookingSource.UI]
    fillable = [i for i in range(SLOTS_PER_DAY) if i != RESERVED_SLOT]
    now = timezone.now()
    owner_iter = iter(owners)

    def rows():
        for offset in range(-DAYS_PAST, DAYS_FUTURE):
            day = today + timedelta(days=offset)
            for doctor_id in doctor_ids:
                for index in rng.sample(fillable, PER_DOCTOR_DAY):
                    start = slot_start(day, index)
                    minutes = 15 if rng.random() < 0.2 else 30
                    roll = rng.random()
                    if start < now:
                        status = (
                            AppointmentStatus.CANCELLED
                            if roll < 0.10
                            else AppointmentStatus.NO_SHOW
                            if roll < 0.15
                            else AppointmentStatus.COMPLETED
                        )
                    else:
                        status = (
                            AppointmentStatus.CANCELLED
                            if roll < 0.10
                            else AppointmentStatus.SCHEDULED
                        )
                    yield Appointment(
                        clinic=clinic,
                        patient_id=next(owner_iter),
                        doctor_id=doctor_id,
                        scheduled_time=start,
                        end_time=start + timedelta(minutes=minutes),
                        duration_minutes=minutes,
                        status=status,
                        reason=rng.choice(reasons),
                        source=rng.choice(sources),
                        cancelled_at=now if status == AppointmentStatus.CANCELLED else None,
                    )

    written = 0
    batch: list = []
    with transaction.atomic():
        for appointment in rows():
            batch.append(appointment)
            if len(batch) == BATCH:
                Appointment.objects.bulk_create(batch)
                written += len(batch)
                batch = []
                if written % 50_000 == 0:
                    log(f"  {written:,} appointments ({time.perf_counter() - started:.1f}s)")
        if batch:
            Appointment.objects.bulk_create(batch)
            written += len(batch)
    log(f"fill: {written:,} appointments: {time.perf_counter() - started:.1f}s")

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    log(f"fill: VACUUM ANALYZE: {time.perf_counter() - started:.1f}s")
    log(f"fill total: {time.perf_counter() - total_started:.1f}s")


# --- Scenario: what each endpoint is asked -------------------------------------------------


class Scenario:
    """Ids and dates the requests rotate through, and the free slots creates use."""

    def __init__(self):
        from django.utils import timezone

        from accounts.models import User
        from accounts.tokens import issue_tokens
        from clinic.models import Appointment, Clinic, Doctor, Patient

        self.clinic = Clinic.objects.get(slug=CLINIC_SLUG)
        self.today = timezone.localdate(timezone=TZ)
        leftovers = Appointment.objects.filter(clinic=self.clinic, reason=CREATE_REASON)
        # Bookings send messages (notifications) that point at them: on_delete=SET_NULL,
        # done here by hand since the raw delete below skips Django's collector.
        from notifications.models import InboundMessage, OutboundMessage
        from voice.models import CallLog

        for model, field in (
            (OutboundMessage, "appointment"),
            (InboundMessage, "appointment"),
            (CallLog, "appointment_created"),
        ):
            model.objects.filter(**{f"{field}__in": leftovers}).update(**{field: None})
        removed = leftovers._raw_delete(leftovers.db)  # rows of earlier runs
        if removed:
            log(f"removed {removed} appointments booked by an earlier run")
        user = User.objects.get(email="bench@vaani.test")
        self.token = issue_tokens(user)["access_token"]
        self.doctor_ids = list(
            Doctor.objects.filter(clinic=self.clinic).order_by("id").values_list("id", flat=True)
        )
        patient_ids = list(
            Patient.objects.filter(clinic=self.clinic).order_by("id").values_list("id", flat=True)
        )
        self.heavy_patient = patient_ids[0]
        rng = random.Random(7)
        # Mostly ordinary patients (about 10 appointments), some with 500.
        self.patient_ids = (
            rng.sample(patient_ids[N_HEAVY_PATIENTS:], 180) + patient_ids[:N_HEAVY_PATIENTS]
        )
        rng.shuffle(self.patient_ids)
        self.light_patient = next(
            pid
            for pid in patient_ids[N_HEAVY_PATIENTS:]
            if 5 <= Appointment.objects.filter(patient_id=pid).count() <= 15
        )
        # Reserved 17:30 slots from the day after tomorrow on: free and bookable.
        self.free_slots = [
            (doctor_id, slot_start(self.today + timedelta(days=offset), RESERVED_SLOT))
            for offset in range(2, DAYS_FUTURE)
            for doctor_id in self.doctor_ids
        ]
        rng.shuffle(self.free_slots)
        self._next_slot = 0
        self._lock = threading.Lock()
        self.patient_for_create = patient_ids[N_HEAVY_PATIENTS + 1]

    def take_slot(self) -> tuple[int, datetime]:
        with self._lock:
            slot = self.free_slots[self._next_slot]
            self._next_slot += 1
        return slot

    # Each returns (method, path, json body or None) for the i-th request.
    def floor(self, i):
        return "GET", "/bench/floor", None

    def appointment_list(self, i, limit=20):
        doctor = self.doctor_ids[i % len(self.doctor_ids)]
        start = self.today - timedelta(days=(i * 7) % DAYS_PAST)
        return (
            "GET",
            f"/api/v1/appointments?doctor_id={doctor}&start_date={start.isoformat()}&limit={limit}",
            None,
        )

    def patient_detail(self, i, patient_id=None):
        patient = patient_id or self.patient_ids[i % len(self.patient_ids)]
        return "GET", f"/api/v1/patients/{patient}", None

    def available_slots(self, i, day=None):
        doctor = self.doctor_ids[i % len(self.doctor_ids)]
        day = day or self.today + timedelta(days=1 + i % (DAYS_FUTURE - 1))
        return (
            "GET",
            f"/api/v1/appointments/available-slots?doctor_id={doctor}&date={day.isoformat()}",
            None,
        )

    def week_schedule(self, i, day=None):
        doctor = self.doctor_ids[i % len(self.doctor_ids)]
        day = day or self.today + timedelta(days=(i * 3) % (DAYS_PAST + DAYS_FUTURE) - DAYS_PAST)
        return "GET", f"/api/v1/doctors/{doctor}/schedule?date={day.isoformat()}&week=true", None

    def create(self, i):
        doctor, start = self.take_slot()
        body = {
            "patient_id": self.patient_for_create,
            "doctor_id": doctor,
            "scheduled_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration_minutes": 30,
            "reason": CREATE_REASON,
        }
        return "POST", "/api/v1/appointments", body


# (label, scenario method, expected status, is a read)
ENDPOINTS = [
    ("floor: bare Django JSON view", "floor", 200, False),
    ("GET appointments doctor+start_date+limit=20", "appointment_list", 200, True),
    ("GET patients/{id} with history", "patient_detail", 200, True),
    ("GET available-slots doctor-day", "available_slots", 200, True),
    ("GET doctors/{id}/schedule week", "week_schedule", 200, True),
    ("POST appointments (free slot)", "create", 201, False),
]


# --- HTTP measurement ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_daphne(port: int, log_path: Path) -> subprocess.Popen:
    daphne = shutil.which("daphne", path=str(Path(sys.executable).parent)) or "daphne"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [daphne, "-b", "127.0.0.1", "-p", str(port), "-v", "0", "vaani.asgi:application"],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/bench/floor")
            if conn.getresponse().status == 200:
                conn.close()
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"Daphne did not start; its log:\n{log_path.read_text()[-3000:]}")


class Client:
    """One keep-alive connection; ``call`` returns (seconds, status, body)."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body) -> tuple[float, int, bytes]:
        headers = dict(self.headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            started = time.perf_counter()
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        return time.perf_counter() - started, response.status, data

    def close(self):
        self.conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_sequential(port, server_pid, scenario, requests, warmup) -> dict[str, dict]:
    """Every endpoint's sequential latency, the requests of all endpoints interleaved.

    Round after round, one request to each endpoint in turn (each over its own
    keep-alive connection): the floor and the endpoints meet the same machine, so their
    ratio holds even when the load of the machine drifts during the run.  Server CPU is
    read around each request; ``/proc`` counts in clock ticks, so each figure is an
    average over many requests, not a per-request measure.
    """
    clients = {name: Client(port, scenario.token) for _, name, _, _ in ENDPOINTS}
    out = {name: {"seq": [], "cpu": 0.0, "failures": []} for _, name, _, _ in ENDPOINTS}
    for round_index in range(warmup + requests):
        for _, name, expected, _ in ENDPOINTS:
            cpu_before = cpu_seconds(server_pid)
            seconds, status, data = clients[name].call(*getattr(scenario, name)(round_index))
            cpu = cpu_seconds(server_pid) - cpu_before
            record = out[name]
            if status != expected and len(record["failures"]) < 3:
                record["failures"].append(f"{status} {data[:300]!r}")
            if round_index >= warmup:
                record["seq"].append(seconds)
                record["cpu"] += cpu
    for name, record in out.items():
        record["server_cpu"] = record.pop("cpu") / requests
        clients[name].close()
    return out


def run_concurrent(port, scenario, method_name, expected, requests, concurrency, start_index):
    make = getattr(scenario, method_name)
    failures: list[str] = []

    def check(status, data):
        if status != expected and len(failures) < 3:
            failures.append(f"{status} {data[:300]!r}")

    concurrent: list[float] = []
    lock = threading.Lock()
    per_thread = max(1, requests // concurrency)

    def worker(worker_index):
        own = Client(port, scenario.token)
        own.call(*make(start_index + worker_index))  # connect outside the timing
        timings = []
        for j in range(per_thread):
            seconds, status, data = own.call(
                *make(start_index + concurrency + worker_index * per_thread + j)
            )
            check(status, data)
            timings.append(seconds)
        own.close()
        with lock:
            concurrent.extend(timings)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    wall = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall
    return {"conc": concurrent, "throughput": len(concurrent) / wall, "failures": failures}


# --- Query counts (in-process) ---------------------------------------------------------------


def count_queries(scenario) -> dict[str, tuple[str, int, int, str, int, int]]:
    """For each endpoint: (variant A, total, auth, variant B, total, auth) query counts."""
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    client = DjangoClient(HTTP_AUTHORIZATION=f"Bearer {scenario.token}")
    empty_day = scenario.today + timedelta(days=DAYS_FUTURE + 30)  # beyond the filled range
    busy_day = scenario.today + timedelta(days=3)

    def measure(request):
        method, path, body = request
        client.get("/bench/floor")  # connection and caches warm, outside the count
        with CaptureQueriesContext(connection) as ctx:
            if method == "GET":
                response = client.get(path)
            else:
                response = client.post(path, data=body, content_type="application/json")
        if response.status_code >= 400:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.content[:300]!r}")
        auth = sum('FROM "accounts_user"' in q["sql"] for q in ctx.captured_queries)
        return len(ctx.captured_queries), auth, ctx.captured_queries

    variants = {
        "floor": (("-", scenario.floor(0)), ("-", scenario.floor(1))),
        "appointment_list": (
            ("limit=10", scenario.appointment_list(3, limit=10)),
            ("limit=100", scenario.appointment_list(3, limit=100)),
        ),
        "patient_detail": (
            ("~10 appts", scenario.patient_detail(0, scenario.light_patient)),
            ("500 appts", scenario.patient_detail(0, scenario.heavy_patient)),
        ),
        "available_slots": (
            ("empty day", scenario.available_slots(0, empty_day)),
            ("busy day", scenario.available_slots(0, busy_day)),
        ),
        "week_schedule": (
            ("empty week", scenario.week_schedule(0, empty_day)),
            ("busy week", scenario.week_schedule(0, busy_day)),
        ),
        "create": (("1st", scenario.create(0)), ("2nd", scenario.create(1))),
    }
    counts = {}
    sql = {}
    for name, ((label_a, request_a), (label_b, request_b)) in variants.items():
        measure(request_a)  # first request of a kind: nothing lazy left for the count
        total_a, auth_a, _ = measure(request_a if name != "create" else scenario.create(2))
        total_b, auth_b, queries = measure(request_b)
        counts[name] = (label_a, total_a, auth_a, label_b, total_b, auth_b)
        sql[name] = [q["sql"] for q in queries]
    return counts, sql


# --- Report ------------------------------------------------------------------------------------


def report(results, counts, args) -> bool:
    floor = results["floor"]
    floor_p50 = statistics.median(floor["seq"])
    floor_p95 = percentile(floor["seq"], 95)
    head = (
        f"{'endpoint':<46} {'p50 ms':>7} {'p95 ms':>7} {'x fl50':>6} {'x fl95':>6} "
        f"{'cpu ms':>6} {'c' + str(args.concurrency) + ' p50':>7} {'p95':>7} {'req/s':>6}  "
        f"queries (A | B; auth lookups included)"
    )
    log("")
    log(
        f"Sequential: {args.requests} requests after {args.warmup} warm-up, endpoints taking "
        f"turns (one request each per round); concurrent: "
        f"{args.concurrency} keep-alive clients x {args.requests // args.concurrency}."
    )
    log(
        "p50/p95: sequential latency; x fl: ratio to the floor's; cpu ms: Daphne process CPU "
        "per sequential request; c: concurrent latency and throughput."
    )
    log(head)
    log("-" * len(head))
    ok = True
    goals = []
    for label, name, _, is_read in ENDPOINTS:
        result = results[name]
        p50 = statistics.median(result["seq"]) * 1000
        p95 = percentile(result["seq"], 95) * 1000
        r50 = p50 / (floor_p50 * 1000)
        r95 = p95 / (floor_p95 * 1000)
        c50 = statistics.median(result["conc"]) * 1000
        c95 = percentile(result["conc"], 95) * 1000
        label_a, total_a, auth_a, label_b, total_b, auth_b = counts[name]
        queries = f"{label_a}: {total_a} | {label_b}: {total_b}"
        log(
            f"{label:<46} {p50:7.2f} {p95:7.2f} {r50:6.2f} {r95:6.2f} "
            f"{result['server_cpu'] * 1000:6.2f} {c50:7.2f} {c95:7.2f} "
            f"{result['throughput']:6.0f}  {queries}"
        )
        if result["failures"]:
            ok = False
            log(f"    UNEXPECTED ANSWERS: {result['failures']}")
        if total_a != total_b:
            goals.append(f"FAIL {label}: query count grows ({total_a} -> {total_b})")
        if is_read and (r50 > READ_GOAL_RATIO or r95 > READ_GOAL_RATIO):
            goals.append(
                f"FAIL {label}: {r50:.2f}x / {r95:.2f}x the floor (goal {READ_GOAL_RATIO:.0f}x)"
            )
        if name == "available_slots":
            app_queries = max(total_a - auth_a, total_b - auth_b)
            slots_line = (
                f"slots for a doctor-day: {app_queries} queries of its own "
                f"(+{auth_b} for the signed-in user, as every API request), goal <= "
                f"{SLOTS_GOAL_QUERIES}"
            )
            if app_queries > SLOTS_GOAL_QUERIES:
                goals.append("FAIL " + slots_line)
            else:
                goals.append("ok   " + slots_line)
    log("")
    log("Goals:")
    log("  1. no endpoint's query count grows with page size or data size (A == B)")
    log(
        f"  2. every read endpoint within {READ_GOAL_RATIO:.0f}x the floor "
        "(p50 and p95, sequential)"
    )
    log(f"  3. available slots for a doctor-day within {SLOTS_GOAL_QUERIES} queries")
    failures = [g for g in goals if g.startswith("FAIL")]
    for line in goals:
        log("  " + line)
    if not failures:
        log("  all goals met")
    return ok and not failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refill", action="store_true", help="drop the bench database first")
    parser.add_argument("--requests", type=int, default=200, help="measured requests each")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--no-redis", action="store_true", help="local-memory cache instead")
    parser.add_argument("--show-sql", action="store_true", help="print each endpoint's SQL")
    args = parser.parse_args()

    run_started = time.perf_counter()
    configure_environment(args)
    log(f"database {os.environ['DATABASE_URL']}, cache {os.environ.get('REDIS_URL') or 'locmem'}")
    ensure_database(drop=args.refill)

    import django

    django.setup()
    migrate()
    if not is_filled():
        if anything_there():
            log("database holds other or partial data: dropping it and filling again")
            from django.db import connections

            connections.close_all()
            ensure_database(drop=True)
            migrate()
        fill()
    else:
        log(
            f"re-using the filled database ({N_DOCTORS} doctors, {N_PATIENTS:,} patients, "
            f"{N_APPOINTMENTS:,} appointments)"
        )

    scenario = Scenario()
    counts, sql = count_queries(scenario)
    from django.db import connections

    connections.close_all()

    port = free_port()
    daphne_log = Path(tempfile.gettempdir()) / f"vaani-bench-daphne-{port}.log"
    started = time.perf_counter()
    server = start_daphne(port, daphne_log)
    log(
        f"daphne on 127.0.0.1:{port} (pid {server.pid}), up in {time.perf_counter() - started:.1f}s"
    )
    results = {}
    try:
        started = time.perf_counter()
        results = run_sequential(port, server.pid, scenario, args.requests, args.warmup)
        log(
            "measured all endpoints sequentially, interleaved: "
            f"{time.perf_counter() - started:.1f}s"
        )
        for label, name, expected, _ in ENDPOINTS:
            started = time.perf_counter()
            concurrent = run_concurrent(
                port,
                scenario,
                name,
                expected,
                args.requests,
                args.concurrency,
                start_index=args.warmup + args.requests,
            )
            results[name]["failures"] += concurrent.pop("failures")
            results[name].update(concurrent)
            log(
                f"measured {label} with {args.concurrency} clients: "
                f"{time.perf_counter() - started:.1f}s"
            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    ok = report(results, counts, args)
    if args.show_sql:
        for name, queries in sql.items():
            log(f"\n{name} (variant B):")
            for query in queries:
                log(f"  {query[:400]}")
    log(f"\ntotal run: {time.perf_counter() - run_started:.1f}s (daphne log: {daphne_log})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
