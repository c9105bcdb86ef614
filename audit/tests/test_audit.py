"""The audit trail: one entry per API request that reads or changes patient data."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser
from django.test import Client, RequestFactory

from accounts.models import User
from audit.models import AuditEntry
from clinic.models import Appointment, Patient
from clinic.tests.factories import AppointmentFactory, DoctorFactory, PatientFactory
from voice.tests.factories import CallLogFactory

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def data(clinic, at):
    patient = PatientFactory(clinic=clinic)
    second = PatientFactory(clinic=clinic)
    doctor = DoctorFactory(clinic=clinic)
    appointment = AppointmentFactory(
        clinic=clinic, patient=patient, doctor=doctor, scheduled_time=at("10:00")
    )
    call = CallLogFactory(clinic=clinic, patient=patient)
    return {
        "patient": patient,
        "second": second,
        "doctor": doctor,
        "appointment": appointment,
        "call": call,
    }


def one_entry(response, *, user, resource, action, object_ids, status=200) -> AuditEntry:
    assert response.status_code == status, response.content
    entries = list(AuditEntry.objects.all())
    assert len(entries) == 1, [(e.resource, e.action) for e in entries]
    entry = entries[0]
    assert entry.user == user
    assert entry.clinic_id == user.clinic_id
    assert entry.resource == resource
    assert entry.action == action
    assert entry.object_ids == object_ids
    assert entry.request_id
    assert response["X-Request-ID"] == entry.request_id
    assert entry.path.startswith(API)
    return entry


def test_each_patient_data_request_writes_exactly_one_entry(api, receptionist, clinic, data, at):
    patient, appointment, call = data["patient"], data["appointment"], data["call"]
    patients_in_order = sorted([patient, data["second"]], key=lambda p: (p.name, p.pk))

    def check(response, resource, action, object_ids, status=200):
        entry = one_entry(
            response,
            user=receptionist,
            resource=resource,
            action=action,
            object_ids=object_ids,
            status=status,
        )
        AuditEntry.objects.all().delete()
        return entry

    check(api.get(f"{API}/patients"), "patient", "list", [p.pk for p in patients_in_order])
    check(
        api.get(f"{API}/patients", {"limit": 1, "page": 2}),
        "patient",
        "list",
        [patients_in_order[1].pk],
    )
    check(api.get(f"{API}/patients/{patient.pk}"), "patient", "read", [patient.pk])
    created = api.post(f"{API}/patients", {"phone": "+919876543210", "name": "New"})
    check(created, "patient", "create", [created.json()["data"]["id"]], status=201)
    check(
        api.patch(f"{API}/patients/{patient.pk}", {"name": "Renamed"}),
        "patient",
        "update",
        [patient.pk],
    )
    check(
        api.put(f"{API}/patients/{patient.pk}", {"language_preference": "en"}),
        "patient",
        "update",
        [patient.pk],
    )

    check(api.get(f"{API}/appointments"), "appointment", "list", [appointment.pk])
    check(api.get(f"{API}/appointments/{appointment.pk}"), "appointment", "read", [appointment.pk])
    booked = api.post(
        f"{API}/appointments",
        {
            "patient_id": patient.pk,
            "doctor_id": data["doctor"].pk,
            "scheduled_time": at("12:00").isoformat(),
        },
    )
    check(booked, "appointment", "create", [booked.json()["data"]["id"]], status=201)
    check(
        api.patch(f"{API}/appointments/{appointment.pk}", {"reason": "Fever"}),
        "appointment",
        "update",
        [appointment.pk],
    )
    check(
        api.put(f"{API}/appointments/{appointment.pk}", {"notes": "Bring reports"}),
        "appointment",
        "update",
        [appointment.pk],
    )
    check(
        api.delete(f"{API}/appointments/{appointment.pk}?reason=Away"),
        "appointment",
        "cancel",
        [appointment.pk],
    )

    check(api.get(f"{API}/call-logs"), "call_log", "list", [call.pk])
    check(api.get(f"{API}/call-logs/{call.pk}"), "call_log", "read", [call.pk])

    # An empty page is still a read of the list, with no ids.
    check(api.get(f"{API}/call-logs", {"direction": "outbound"}), "call_log", "list", [])


def test_the_callers_request_id_is_recorded_and_echoed(api, receptionist, data):
    response = api.get(f"{API}/patients/{data['patient'].pk}", HTTP_X_REQUEST_ID="req-1234abcd")
    entry = one_entry(
        response,
        user=receptionist,
        resource="patient",
        action="read",
        object_ids=[data["patient"].pk],
    )
    assert entry.request_id == "req-1234abcd" == response["X-Request-ID"]
    assert entry.ip_address == "127.0.0.1"
    # A header that is not a sane id is replaced, never stored as sent.
    AuditEntry.objects.all().delete()
    response = api.get(f"{API}/patients", HTTP_X_REQUEST_ID="bad id; DROP TABLE")
    entry = one_entry(
        response,
        user=receptionist,
        resource="patient",
        action="list",
        object_ids=[
            p.pk for p in sorted([data["patient"], data["second"]], key=lambda p: (p.name, p.pk))
        ],
    )
    assert entry.request_id != "bad id; DROP TABLE"
    assert entry.request_id == response["X-Request-ID"]


def test_two_requests_have_two_request_ids(api, data):
    first = api.get(f"{API}/patients")
    second = api.get(f"{API}/patients")
    ids = list(AuditEntry.objects.order_by("id").values_list("request_id", flat=True))
    assert ids == [first["X-Request-ID"], second["X-Request-ID"]]
    assert ids[0] != ids[1]


def test_doctor_reads_are_not_patient_data(api, data):
    doctor = data["doctor"]
    for path in (
        "/doctors",
        f"/doctors/{doctor.pk}",
        f"/doctors/{doctor.pk}/schedule",
        "/auth/me",
    ):
        assert api.get(API + path).status_code == 200, path
    assert not AuditEntry.objects.exists()


def test_refused_and_failed_requests_write_nothing(make_client, api, doctor_user, data):
    patient = data["patient"]
    assert api.post(f"{API}/patients", {"phone": "12", "name": "X"}).status_code == 400
    assert api.get(f"{API}/patients/999999").status_code == 404
    assert api.patch(f"{API}/patients/{patient.pk}", {"bogus": 1}).status_code == 400
    assert make_client().get(f"{API}/patients").status_code == 401
    doctor_api = make_client(doctor_user)
    assert doctor_api.patch(f"{API}/patients/{patient.pk}", {"name": "Y"}).status_code == 403
    assert not AuditEntry.objects.exists()
    assert Patient.objects.get(pk=patient.pk).name == patient.name
    assert Appointment.objects.count() == 1


# --- Admin ------------------------------------------------------------------------------------


@pytest.fixture
def superuser_client(settings, db):
    # The manifest storage needs collectstatic; the admin pages only need URLs here.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    user = User.objects.create_superuser(
        username="root@vaani.test", email="root@vaani.test", password="x"
    )
    client = Client()
    client.force_login(user)
    return client


def test_audit_admin_is_read_only_even_for_a_superuser(superuser_client, api, data):
    assert api.get(f"{API}/patients/{data['patient'].pk}").status_code == 200
    entry = AuditEntry.objects.get()
    snapshot = AuditEntry.objects.values().get()
    base = "/admin/audit/auditentry/"

    listing = superuser_client.get(base)
    assert listing.status_code == 200
    assert entry.request_id.encode() in listing.content
    assert b"/admin/audit/auditentry/add/" not in listing.content

    assert superuser_client.get(f"{base}add/").status_code == 403
    created = superuser_client.post(
        f"{base}add/", {"resource": "patient", "action": "read", "request_id": "x" * 10}
    )
    assert created.status_code == 403

    page = superuser_client.get(f"{base}{entry.pk}/change/")
    assert page.status_code == 200  # viewable...
    assert b'name="_save"' not in page.content  # ...but not savable
    changed = superuser_client.post(
        f"{base}{entry.pk}/change/",
        {"resource": "tampered", "action": "delete", "request_id": "forged-id-123", "path": "/"},
    )
    assert changed.status_code == 403

    assert superuser_client.get(f"{base}{entry.pk}/delete/").status_code == 403
    assert superuser_client.post(f"{base}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = superuser_client.post(
        base, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)

    assert list(AuditEntry.objects.values()) == [snapshot]

    model_admin = admin.site._registry[AuditEntry]
    request = RequestFactory().get(base)
    request.user = User.objects.get(is_superuser=True)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, entry)
    assert not model_admin.has_delete_permission(request, entry)
    assert model_admin.has_view_permission(request, entry)
    assert "delete_selected" not in model_admin.get_actions(request)


def test_the_entry_is_the_row_the_model_would_write(receptionist, django_assert_num_queries):
    """record_access sends its own INSERT (built from the model's fields): the row reads
    back as ``AuditEntry.objects.create`` would have written it, in one query."""
    from django.utils import timezone

    from audit.services import record_access

    request = RequestFactory().get("/api/v1/patients/7?x=1", REMOTE_ADDR="2001:db8::1")
    request.user = receptionist
    request.request_id = "req-12345678"
    before = timezone.now()
    with django_assert_num_queries(1):
        record_access(request, "patient", "read", 7)
    entry = AuditEntry.objects.get()
    assert before <= entry.timestamp <= timezone.now()
    expected = AuditEntry.objects.create(
        user=receptionist,
        clinic_id=receptionist.clinic_id,
        resource="patient",
        action="read",
        object_ids=[7],
        request_id="req-12345678",
        ip_address="2001:db8::1",
        path="/api/v1/patients/7?x=1",
    )
    expected.refresh_from_db()
    fields = [
        f.attname for f in AuditEntry._meta.concrete_fields if f.name not in ("id", "timestamp")
    ]
    assert {f: getattr(entry, f) for f in fields} == {f: getattr(expected, f) for f in fields}

    anonymous = RequestFactory().get("/api/v1/patients", REMOTE_ADDR="")
    anonymous.user = AnonymousUser()
    record_access(anonymous, "patient", "list", (1, 2))
    last = AuditEntry.objects.order_by("-id").first()
    assert (last.user_id, last.clinic_id, last.object_ids, last.request_id, last.ip_address) == (
        None,
        None,
        [1, 2],
        "",
        None,
    )
