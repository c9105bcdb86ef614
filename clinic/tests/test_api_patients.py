"""``/api/v1/patients`` (§5): list, detail, create, update, and what each answer holds."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic.models import AppointmentStatus, Patient
from clinic.tests.factories import AppointmentFactory, DoctorFactory, PatientFactory
from vaani.common.timeutils import iso_utc

pytestmark = pytest.mark.django_db

URL = "/api/v1/patients"
E164_MESSAGE = "Phone number must be in E.164 format (+919876543210)"
LIST_KEYS = {
    "id",
    "phone",
    "name",
    "date_of_birth",
    "age",
    "language_preference",
    "total_appointments",
    "last_appointment",
    "created_at",
}
UTC_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Staff fixtures hash a password each; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def ok(response, status=200):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is True
    assert UTC_FORMAT.match(body["timestamp"])
    return body["data"]


def error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert UTC_FORMAT.match(body["timestamp"])
    return body["error"]


def years_before(day: date, years: int) -> date:
    return day.replace(year=day.year - years)


def local_today(clinic) -> date:
    return timezone.localdate(timezone=clinic.tzinfo)


def names(data) -> list[str]:
    return [p["name"] for p in data["patients"]]


# --- List -----------------------------------------------------------------------------------


def test_list_item_has_documented_keys_and_correct_figures(api, clinic):
    now = timezone.now()
    today = local_today(clinic)
    tomorrow = today + timedelta(days=1)
    if (tomorrow.month, tomorrow.day) == (2, 29):
        tomorrow += timedelta(days=1)
    # Birthday tomorrow (clinic time): still 29, not 30.
    patient = PatientFactory(
        clinic=clinic,
        name="Rajesh Kumar",
        phone="+919876543210",
        date_of_birth=years_before(tomorrow, 30),
        language_preference="hi-en",
    )
    doctor = DoctorFactory(clinic=clinic)

    def book(days, status):
        return AppointmentFactory(
            clinic=clinic,
            patient=patient,
            doctor=doctor,
            scheduled_time=now + timedelta(days=days),
            status=status,
        )

    book(-40, AppointmentStatus.COMPLETED)
    latest_past = book(-5, AppointmentStatus.COMPLETED)
    book(-1, AppointmentStatus.CANCELLED)  # later, but cancelled: neither counted nor "last"
    book(3, AppointmentStatus.SCHEDULED)  # upcoming: counted, but not "last"
    book(4, AppointmentStatus.CANCELLED)
    new_year_baby = PatientFactory(
        clinic=clinic, name="Sunita Devi", date_of_birth=date(2000, 1, 1)
    )
    no_dob = PatientFactory(clinic=clinic, name="Zoya Khan", date_of_birth=None)

    data = ok(api.get(URL))
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 3, "total_pages": 1}
    items = {item["id"]: item for item in data["patients"]}
    for item in items.values():
        assert set(item) >= LIST_KEYS
    patient.refresh_from_db()
    item = items[patient.pk]
    assert {key: item[key] for key in LIST_KEYS} == {
        "id": patient.pk,
        "phone": "+919876543210",
        "name": "Rajesh Kumar",
        "date_of_birth": patient.date_of_birth.isoformat(),
        "age": 29,
        "language_preference": "hi-en",
        "total_appointments": 3,
        "last_appointment": iso_utc(latest_past.scheduled_time),
        "created_at": iso_utc(patient.created_at),
    }
    expected_age = today.year - 2000
    assert items[new_year_baby.pk]["age"] == expected_age
    assert items[no_dob.pk]["age"] is None
    assert items[no_dob.pk]["date_of_birth"] is None
    assert items[no_dob.pk]["total_appointments"] == 0
    assert items[no_dob.pk]["last_appointment"] is None


def test_age_changes_on_the_birthday_itself(api, clinic):
    today = local_today(clinic)
    if (today.month, today.day) == (2, 29):
        pytest.skip("no birthday on 29 February thirty years ago")
    patient = PatientFactory(clinic=clinic, date_of_birth=years_before(today, 30))
    data = ok(api.get(URL))
    assert data["patients"][0]["id"] == patient.pk
    assert data["patients"][0]["age"] == 30


def test_search_by_name_and_by_phone_digits(api, clinic):
    PatientFactory(clinic=clinic, name="Rajesh Kumar", phone="+919876543210")
    PatientFactory(clinic=clinic, name="Priya Patel", phone="+919812312312")
    PatientFactory(clinic=clinic, name="Anil RAJESHWAR", phone="+919900011122")

    assert names(ok(api.get(URL, {"search": "rajesh"}))) == ["Anil RAJESHWAR", "Rajesh Kumar"]
    assert names(ok(api.get(URL, {"search": "  patel "}))) == ["Priya Patel"]
    assert names(ok(api.get(URL, {"search": "43210"}))) == ["Rajesh Kumar"]
    # Spaces and the country code as people type them.
    assert names(ok(api.get(URL, {"search": "+91 98123 12312"}))) == ["Priya Patel"]
    assert names(ok(api.get(URL, {"search": "nobody"}))) == []
    assert len(names(ok(api.get(URL, {"search": ""})))) == 3


def test_filter_by_language(api, clinic):
    PatientFactory(clinic=clinic, name="A Hindi", language_preference="hi")
    PatientFactory(clinic=clinic, name="B English", language_preference="en")
    PatientFactory(clinic=clinic, name="C Hinglish", language_preference="hi-en")
    assert names(ok(api.get(URL, {"language_preference": "en"}))) == ["B English"]
    assert names(ok(api.get(URL, {"language_preference": "hi-en"}))) == ["C Hinglish"]
    assert names(ok(api.get(URL, {"language_preference": "hi"}))) == ["A Hindi"]
    error(api.get(URL, {"language_preference": "fr"}), 400, "VALIDATION_ERROR")


def test_filter_by_exact_phone_lists_the_whole_family(api, clinic):
    family = "+919876543210"
    for name in ("Rajesh Kumar", "Sunita Kumar", "Aarav Kumar"):
        PatientFactory(clinic=clinic, name=name, phone=family)
    PatientFactory(clinic=clinic, name="Neighbour", phone="+919876543211")
    PatientFactory(clinic=clinic, name="Longer", phone="+9198765432109")

    data = ok(api.get(URL, {"phone": family}))
    assert names(data) == ["Aarav Kumar", "Rajesh Kumar", "Sunita Kumar"]
    assert data["pagination"]["total"] == 3
    # The same number written with spaces is the same number.
    assert names(ok(api.get(URL, {"phone": "+91 98765 43210"}))) == names(data)
    detail = error(api.get(URL, {"phone": "9876543210"}), 400, "VALIDATION_ERROR")
    assert detail["details"]["phone"] == E164_MESSAGE


def test_pagination(api, clinic):
    for index in range(7):
        PatientFactory(clinic=clinic, name=f"Patient {index:02d}")
    first = ok(api.get(URL, {"limit": 3}))
    assert names(first) == ["Patient 00", "Patient 01", "Patient 02"]
    assert first["pagination"] == {"page": 1, "limit": 3, "total": 7, "total_pages": 3}
    last = ok(api.get(URL, {"limit": 3, "page": 3}))
    assert names(last) == ["Patient 06"]
    assert last["pagination"] == {"page": 3, "limit": 3, "total": 7, "total_pages": 3}
    beyond = ok(api.get(URL, {"limit": 3, "page": 9}))
    assert beyond["patients"] == []
    assert beyond["pagination"]["total"] == 7
    error(api.get(URL, {"limit": 101}), 400, "VALIDATION_ERROR")
    error(api.get(URL, {"page": 0}), 400, "VALIDATION_ERROR")


def _list_query_count(api, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(URL, params)
    assert response.status_code == 200
    return len(queries)


def test_list_query_count_does_not_grow_with_page_size_or_appointments(api, clinic):
    doctor = DoctorFactory(clinic=clinic)
    patients = [PatientFactory(clinic=clinic) for _ in range(12)]
    AppointmentFactory(clinic=clinic, patient=patients[0], doctor=doctor)
    api.get(URL)  # warms the session-revocation cache, which the first request fills
    small_page = _list_query_count(api, limit=2)
    large_page = _list_query_count(api, limit=12)
    assert small_page == large_page

    now = timezone.now()
    for index, patient in enumerate(patients):
        for days in range(1, 6):
            AppointmentFactory(
                clinic=clinic,
                patient=patient,
                doctor=doctor,
                scheduled_time=now - timedelta(days=days, hours=index),
                status=AppointmentStatus.COMPLETED,
            )
    assert _list_query_count(api, limit=12) == large_page
    data = ok(api.get(URL, {"limit": 12}))
    assert {p["total_appointments"] for p in data["patients"]} >= {5, 6}


# --- Detail ---------------------------------------------------------------------------------


def _detail_query_count(api, patient) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"{URL}/{patient.pk}")
    assert response.status_code == 200
    return len(queries)


def test_detail_query_count_does_not_grow_with_the_history(api, clinic):
    doctor = DoctorFactory(clinic=clinic)
    patient = PatientFactory(clinic=clinic)
    AppointmentFactory(clinic=clinic, patient=patient, doctor=doctor)
    api.get(f"{URL}/{patient.pk}")  # warms the signed-in user's cache entry
    one = _detail_query_count(api, patient)
    now = timezone.now()
    for days in range(1, 30):
        AppointmentFactory(
            clinic=clinic,
            patient=patient,
            doctor=DoctorFactory(clinic=clinic) if days % 3 else doctor,
            scheduled_time=now - timedelta(days=days),
            status=AppointmentStatus.COMPLETED,
        )
    assert _detail_query_count(api, patient) == one <= 3  # patient, audit entry, history
    assert len(ok(api.get(f"{URL}/{patient.pk}"))["appointment_history"]) == 30


def test_detail_has_history_newest_first_and_upcoming_count(api, clinic):
    now = timezone.now()
    patient = PatientFactory(clinic=clinic, date_of_birth=date(1985, 5, 15))
    doctor = DoctorFactory(clinic=clinic, name="Dr. Priya Sharma")
    other_patient = PatientFactory(clinic=clinic)

    def book(days, status, who=patient):
        return AppointmentFactory(
            clinic=clinic,
            patient=who,
            doctor=doctor,
            scheduled_time=now + timedelta(days=days),
            status=status,
            reason=f"Visit {days}",
        )

    old = book(-60, AppointmentStatus.COMPLETED)
    missed = book(-10, AppointmentStatus.NO_SHOW)
    cancelled = book(-2, AppointmentStatus.CANCELLED)
    soon = book(2, AppointmentStatus.SCHEDULED)
    later = book(9, AppointmentStatus.SCHEDULED)
    book(5, AppointmentStatus.SCHEDULED, who=other_patient)

    data = ok(api.get(f"{URL}/{patient.pk}"))
    assert data["id"] == patient.pk
    assert data["name"] == patient.name
    assert data["phone"] == patient.phone
    assert data["date_of_birth"] == "1985-05-15"
    assert isinstance(data["age"], int) and data["age"] >= 40
    assert data["language_preference"] == "hi"
    assert UTC_FORMAT.match(data["created_at"])
    history = data["appointment_history"]
    assert [item["id"] for item in history] == [later.pk, soon.pk, cancelled.pk, missed.pk, old.pk]
    assert {
        key: history[-1][key] for key in ("doctor_name", "scheduled_time", "status", "reason")
    } == {
        "doctor_name": "Dr. Priya Sharma",
        "scheduled_time": iso_utc(old.scheduled_time),
        "status": "completed",
        "reason": "Visit -60",
    }
    assert data["total_appointments"] == 4  # cancelled not counted
    assert data["upcoming_appointments"] == 2
    assert data["last_appointment"] == iso_utc(missed.scheduled_time)


def test_detail_of_unknown_patient_is_404(api, clinic):
    body = error(api.get(f"{URL}/999999"), 404, "NOT_FOUND")
    assert body["details"] == {"resource": "patient", "id": 999999}


# --- Create ---------------------------------------------------------------------------------


def test_create_answers_201_with_documented_body(api, clinic):
    payload = {
        "phone": "+919876543210",
        "name": "Rajesh Kumar",
        "date_of_birth": "1985-05-15",
        "language_preference": "hi",
    }
    response = api.post(URL, payload, format="json")
    data = ok(response, 201)
    patient = Patient.objects.get()
    assert patient.clinic == clinic
    assert (patient.phone, patient.name, patient.date_of_birth, patient.language_preference) == (
        "+919876543210",
        "Rajesh Kumar",
        date(1985, 5, 15),
        "hi",
    )
    assert data["id"] == patient.pk
    assert data["phone"] == "+919876543210"
    assert data["name"] == "Rajesh Kumar"
    assert data["created_at"] == iso_utc(patient.created_at)
    assert data["total_appointments"] == 0


def test_create_defaults_and_normalizes_phone(api, clinic):
    for raw, name in (("+91 98765 43210", "Spaces"), ("+91-98765-43210", "Dashes")):
        data = ok(api.post(URL, {"phone": raw, "name": f"  {name}  "}, format="json"), 201)
        assert data["phone"] == "+919876543210"
        assert data["name"] == name
        stored = Patient.objects.get(pk=data["id"])
        assert stored.phone == "+919876543210"
        assert stored.language_preference == "hi"
        assert stored.date_of_birth is None


@pytest.mark.parametrize(
    "phone", ["9876543210", "+91 12345", "+abc", "", "00919876543210", "+1 555 000"]
)
def test_create_with_invalid_phone_is_400_with_the_documented_message(api, clinic, phone):
    body = error(
        api.post(URL, {"phone": phone, "name": "Rajesh"}, format="json"), 400, "VALIDATION_ERROR"
    )
    if phone:
        assert body["details"]["phone"] == E164_MESSAGE
    else:
        assert "phone" in body["details"]
    assert not Patient.objects.exists()


def test_duplicate_name_and_phone_is_409_but_family_members_are_fine(api, clinic, other_clinic):
    first = ok(
        api.post(URL, {"phone": "+919876543210", "name": "Rajesh Kumar"}, format="json"), 201
    )
    again = api.post(URL, {"phone": "+91 98765 43210", "name": "rajesh kumar "}, format="json")
    body = error(again, 409, "CONFLICT")
    assert body["details"]["existing_patient_id"] == first["id"]
    ok(api.post(URL, {"phone": "+919876543210", "name": "Sunita Kumar"}, format="json"), 201)
    # Another clinic's twin is no conflict here.
    PatientFactory(clinic=other_clinic, phone="+919876543211", name="Meera")
    ok(api.post(URL, {"phone": "+919876543211", "name": "Meera"}, format="json"), 201)
    assert Patient.objects.filter(clinic=clinic).count() == 3


def test_date_of_birth_in_the_future_is_400(api, clinic):
    tomorrow = (local_today(clinic) + timedelta(days=2)).isoformat()
    body = error(
        api.post(URL, {"phone": "+919876543210", "name": "Baby", "date_of_birth": tomorrow}),
        400,
        "VALIDATION_ERROR",
    )
    assert "date_of_birth" in body["details"]
    assert not Patient.objects.exists()
    today = local_today(clinic).isoformat()
    ok(api.post(URL, {"phone": "+919876543210", "name": "Newborn", "date_of_birth": today}), 201)


def test_missing_required_fields_are_named(api, clinic):
    body = error(api.post(URL, {}, format="json"), 400, "VALIDATION_ERROR")
    assert set(body["details"]) == {"phone", "name"}


# --- Update ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_changes_only_what_is_sent(api, clinic, method):
    patient = PatientFactory(
        clinic=clinic,
        name="Rajesh Kumar",
        phone="+919876543210",
        date_of_birth=date(1985, 5, 15),
        language_preference="hi",
    )
    before = Patient.objects.get(pk=patient.pk)
    response = getattr(api, method)(
        f"{URL}/{patient.pk}",
        {"name": "Rajesh Kumar Sharma", "language_preference": "hi-en"},
        format="json",
    )
    data = ok(response)
    patient.refresh_from_db()
    assert (patient.name, patient.language_preference) == ("Rajesh Kumar Sharma", "hi-en")
    assert (patient.phone, patient.date_of_birth) == (before.phone, before.date_of_birth)
    assert patient.updated_at > before.updated_at
    assert data["id"] == patient.pk
    assert data["name"] == "Rajesh Kumar Sharma"
    assert data["language_preference"] == "hi-en"
    assert data["updated_at"] == iso_utc(patient.updated_at)


def test_update_phone_is_normalized_and_dob_can_be_cleared(api, clinic):
    patient = PatientFactory(clinic=clinic, date_of_birth=date(1990, 1, 1))
    data = ok(
        api.patch(
            f"{URL}/{patient.pk}",
            {"phone": "+91 99000 11122", "date_of_birth": None},
            format="json",
        )
    )
    patient.refresh_from_db()
    assert patient.phone == data["phone"] == "+919900011122"
    assert patient.date_of_birth is None


def test_update_rejects_bad_values_and_twins(api, clinic):
    PatientFactory(clinic=clinic, name="Sunita Kumar", phone="+919876543210")
    patient = PatientFactory(clinic=clinic, name="Rajesh Kumar", phone="+919876543210")
    snapshot = Patient.objects.values().get(pk=patient.pk)
    url = f"{URL}/{patient.pk}"

    body = error(api.patch(url, {"phone": "98765"}, format="json"), 400, "VALIDATION_ERROR")
    assert body["details"]["phone"] == E164_MESSAGE
    future = (local_today(clinic) + timedelta(days=30)).isoformat()
    error(api.put(url, {"date_of_birth": future}, format="json"), 400, "VALIDATION_ERROR")
    error(api.patch(url, {"name": "   "}, format="json"), 400, "VALIDATION_ERROR")
    error(api.patch(url, {}, format="json"), 400, "VALIDATION_ERROR")
    error(api.patch(url, {"name": "SUNITA KUMAR"}, format="json"), 409, "CONFLICT")
    assert Patient.objects.values().get(pk=patient.pk) == snapshot


def test_update_unknown_patient_is_404(api, clinic):
    error(api.patch(f"{URL}/424242", {"name": "X"}, format="json"), 404, "NOT_FOUND")


# --- The clinic's calendar, not the server's ------------------------------------------------


@pytest.fixture
def early_morning_in_india(monkeypatch):
    """01:30 on 20 January in Kolkata, still 19 January in UTC (the server's zone)."""
    moment = datetime(2026, 1, 19, 20, 0, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: moment)
    return moment


def test_a_baby_born_today_in_the_clinics_time_zone_can_be_registered(
    api, clinic, early_morning_in_india
):
    response = api.post(
        URL, {"phone": "+919876543210", "name": "Newborn", "date_of_birth": "2026-01-20"}
    )
    assert ok(response, 201)["age"] == 0
    tomorrow = api.post(
        URL, {"phone": "+919876543210", "name": "Not Yet", "date_of_birth": "2026-01-21"}
    )
    assert "date_of_birth" in error(tomorrow, 400, "VALIDATION_ERROR")["details"]


def test_ages_change_at_local_midnight(api, clinic, early_morning_in_india):
    patient = PatientFactory(clinic=clinic, date_of_birth=date(1996, 1, 20))
    assert ok(api.get(f"{URL}/{patient.pk}"))["age"] == 30
