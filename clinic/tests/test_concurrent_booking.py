"""Double booking is impossible, not just unlikely, under concurrent requests.

The race test goes through a real socket (pytest-django's ``live_server``, one thread
per request) so the requests really overlap inside the database: on PostgreSQL the
doctor row lock and the ``appointment_no_overlap`` exclusion constraint decide, on
SQLite the ``BEGIN IMMEDIATE`` write lock does. Either way one request wins (201) and
every other one is a documented 409 CONFLICT: never a 500, never a 400.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.tokens import issue_tokens
from clinic import services
from clinic.models import Appointment, AppointmentStatus
from clinic.tests.factories import AppointmentFactory, DoctorFactory, PatientFactory
from vaani.common.exceptions import ConflictError

CONCURRENT_REQUESTS = 32

# Every one of these intervals contains 10:15-10:30, so any two of them overlap and at
# most one can be booked: the same slot, and the same slot shifted by 15 minutes.
RACING_BOOKINGS = [
    ("10:00", 30),
    ("10:15", 30),
    ("10:00", 60),
    ("10:15", 15),
]

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the exclusion constraint exists on PostgreSQL only (SQLite relies on the lock)",
)


def _active(doctor):
    return Appointment.objects.filter(doctor=doctor).exclude(status=AppointmentStatus.CANCELLED)


def _fire_concurrently(
    url: str, warm_up_url: str, token: str, bodies: list[dict]
) -> list[httpx.Response]:
    """POSTs every body at once: each from its own thread, released by one barrier."""
    barrier = threading.Barrier(len(bodies))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(body: dict) -> httpx.Response:
        with httpx.Client(timeout=60.0, headers=headers) as client:
            # Open the connection before the barrier so the POSTs leave together.
            client.get(warm_up_url)
            barrier.wait(timeout=30)
            return client.post(url, json=body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_bookings_only_one_wins(
    live_server, settings, clinic, receptionist, at
):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": 100_000}
    doctor = DoctorFactory(clinic=clinic)
    patients = PatientFactory.create_batch(4, clinic=clinic)
    token = issue_tokens(receptionist)["access_token"]
    bodies = []
    for index in range(CONCURRENT_REQUESTS):
        clock, minutes = RACING_BOOKINGS[index % len(RACING_BOOKINGS)]
        bodies.append(
            {
                "patient_id": patients[index % len(patients)].pk,
                "doctor_id": doctor.pk,
                "scheduled_time": at(clock).isoformat(),
                "duration_minutes": minutes,
                "reason": f"race {index}",
            }
        )

    api_url = f"{live_server.url}/api/v1"
    responses = _fire_concurrently(
        f"{api_url}/appointments", f"{api_url}/doctors/{doctor.pk}", token, bodies
    )

    statuses = sorted(r.status_code for r in responses)
    unexpected = [(r.status_code, r.text) for r in responses if r.status_code not in (201, 409)]
    assert not unexpected, unexpected
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == CONCURRENT_REQUESTS - 1, statuses

    winner = next(r.json() for r in responses if r.status_code == 201)
    assert winner["success"] is True
    for response in responses:
        if response.status_code == 409:
            body = response.json()
            assert body["success"] is False
            assert body["error"]["code"] == "CONFLICT"
            assert body["error"]["details"]["doctor_id"] == doctor.pk

    active = list(_active(doctor))
    assert len(active) == 1
    assert active[0].pk == winner["data"]["id"]

    # The loser's slot opens up once the winner is cancelled: a cancelled row blocks nobody.
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30.0) as client:
        cancelled = client.delete(f"/api/v1/appointments/{active[0].pk}")
        assert cancelled.status_code == 200, cancelled.text
        rebooked = client.post("/api/v1/appointments", json=bodies[1])
        assert rebooked.status_code == 201, rebooked.text
    assert _active(doctor).count() == 1
    assert Appointment.objects.filter(doctor=doctor).count() == 2


@pytest.mark.django_db
def test_service_refuses_overlap_but_not_a_cancelled_one(clinic, at):
    doctor = DoctorFactory(clinic=clinic)
    patient = PatientFactory(clinic=clinic)
    first = services.book_appointment(
        clinic=clinic, patient_id=patient.pk, doctor_id=doctor.pk, scheduled_time=at("10:00")
    )
    with pytest.raises(ConflictError) as caught:
        services.book_appointment(
            clinic=clinic, patient_id=patient.pk, doctor_id=doctor.pk, scheduled_time=at("10:15")
        )
    assert caught.value.details["conflicting_appointment_id"] == first.pk
    services.cancel_appointment(appointment=first)
    again = services.book_appointment(
        clinic=clinic, patient_id=patient.pk, doctor_id=doctor.pk, scheduled_time=at("10:15")
    )
    assert again.status == AppointmentStatus.SCHEDULED


@postgres_only
@pytest.mark.postgres
@pytest.mark.django_db
def test_exclusion_constraint_refuses_an_overlap_written_past_the_service(clinic):
    start = timezone.now().replace(microsecond=0) + timedelta(days=5)
    existing = AppointmentFactory(clinic=clinic, scheduled_time=start, duration_minutes=30)
    doctor, patient = existing.doctor, existing.patient

    for shift, minutes in [(0, 30), (15, 30), (-15, 30), (-30, 60), (10, 15)]:
        with pytest.raises(IntegrityError, match="appointment_no_overlap"), transaction.atomic():
            Appointment.objects.create(
                clinic=clinic,
                patient=patient,
                doctor=doctor,
                scheduled_time=start + timedelta(minutes=shift),
                duration_minutes=minutes,
            )

    # Half-open ranges: back-to-back appointments do not overlap.
    before = AppointmentFactory(
        clinic=clinic,
        doctor=doctor,
        patient=patient,
        scheduled_time=start - timedelta(minutes=30),
        duration_minutes=30,
    )
    after = AppointmentFactory(
        clinic=clinic,
        doctor=doctor,
        patient=patient,
        scheduled_time=start + timedelta(minutes=30),
        duration_minutes=30,
    )
    # Another doctor at the same time is fine.
    AppointmentFactory(clinic=clinic, patient=patient, scheduled_time=start, duration_minutes=30)

    # A cancelled row neither blocks nor is blocked.
    AppointmentFactory(
        clinic=clinic,
        doctor=doctor,
        patient=patient,
        scheduled_time=start + timedelta(minutes=15),
        duration_minutes=30,
        status=AppointmentStatus.CANCELLED,
    )
    Appointment.objects.filter(pk=existing.pk).update(status=AppointmentStatus.CANCELLED)
    replacement = Appointment.objects.create(
        clinic=clinic,
        patient=patient,
        doctor=doctor,
        scheduled_time=start,
        duration_minutes=30,
    )
    assert _active(doctor).count() == 3
    active_ids = set(_active(doctor).values_list("pk", flat=True))
    assert active_ids == {before.pk, after.pk, replacement.pk}

    # Un-cancelling into an occupied slot is refused too (an UPDATE, not only INSERTs).
    with pytest.raises(IntegrityError, match="appointment_no_overlap"), transaction.atomic():
        Appointment.objects.filter(pk=existing.pk).update(status=AppointmentStatus.SCHEDULED)
