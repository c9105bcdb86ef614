"""Wording: the patient's language, the clinic's local time, clinic-edited templates."""

from datetime import datetime

import pytest
from django.contrib.admin.sites import AdminSite
from django.core.exceptions import ValidationError

from clinic.tests.factories import AppointmentFactory, ClinicFactory
from notifications import services, texts
from notifications.admin import MessageTemplateAdmin
from notifications.models import MessageKind, MessageTemplate
from vaani.common.exceptions import BookingValidationError

pytestmark = pytest.mark.django_db


@pytest.fixture
def appointment(clinic, doctor, patient):
    # 09:00 UTC is 14:30 in Asia/Kolkata, on Sunday 25 January 2026.
    return AppointmentFactory(
        clinic=clinic,
        doctor=doctor,
        patient=patient,
        scheduled_time=datetime.fromisoformat("2026-01-25T09:00:00+00:00"),
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            "Hi Ravi Kumar, your appointment with Dr. Asha Rao at {clinic} is confirmed for "
            "Sun, 25 Jan at 2:30 PM. Reply C to cancel, R to reschedule.",
        ),
        (
            "hi",
            "नमस्ते Ravi Kumar, {clinic} में Dr. Asha Rao के साथ आपकी अपॉइंटमेंट रविवार, 25 जनवरी "
            "को दोपहर 2:30 बजे पक्की है। रद्द करने के लिए C, समय बदलने के लिए R भेजें।",
        ),
        (
            "hi-en",
            "Namaste Ravi Kumar, {clinic} mein Dr. Asha Rao ke saath aapka appointment Sun, "
            "25 Jan ko dopahar 2:30 baje confirm hai. Cancel ke liye C, time badalne ke liye R "
            "bhejein.",
        ),
    ],
)
def test_confirmation_in_the_patients_language_at_the_clinics_local_time(
    appointment, patient, language, expected
):
    patient.language_preference = language
    patient.save()
    body = services.render_appointment_message(appointment, MessageKind.CONFIRMATION, language)
    assert body == expected.format(clinic=appointment.clinic.name)
    assert services.patient_language(patient, appointment.clinic) == language


def test_local_time_follows_the_clinics_time_zone(appointment):
    appointment.clinic.time_zone = "Europe/London"
    appointment.clinic.save()
    body = services.render_appointment_message(appointment, MessageKind.REMINDER, "en")
    assert "Sun, 25 Jan at 9:00 AM" in body


def test_reschedule_notice_names_the_old_and_new_time(appointment):
    before = datetime.fromisoformat("2026-01-24T04:30:00+00:00")  # 10:00 IST, Saturday
    body = services.render_appointment_message(
        appointment, MessageKind.RESCHEDULE, "hi-en", previous_time=before
    )
    assert "ab Sun, 25 Jan ko dopahar 2:30 baje" in body
    assert "pehle Sat, 24 Jan, subah 10:00 baje" in body


@pytest.mark.parametrize(
    ("hour", "hindi", "hinglish", "english"),
    [
        (0, "रात 12:05", "raat 12:05", "12:05 AM"),
        (7, "सुबह 7:05", "subah 7:05", "7:05 AM"),
        (12, "दोपहर 12:05", "dopahar 12:05", "12:05 PM"),
        (17, "शाम 5:05", "shaam 5:05", "5:05 PM"),
        (21, "रात 9:05", "raat 9:05", "9:05 PM"),
    ],
)
def test_time_of_day_words(hour, hindi, hinglish, english):
    moment = datetime(2026, 1, 25, hour, 5)
    assert texts.format_time(moment, "hi") == hindi
    assert texts.format_time(moment, "hi-en") == hinglish
    assert texts.format_time(moment, "en") == english


def test_unknown_language_falls_back_to_the_clinic_default_then_english(clinic, patient):
    patient.language_preference = ""
    clinic.default_language = "hi"
    assert services.patient_language(patient, clinic) == "hi"
    clinic.default_language = ""
    assert services.patient_language(patient, clinic) == "en"


def test_every_built_in_template_is_valid():
    for kind, by_language in texts.DEFAULTS.items():
        assert set(by_language) == {"en", "hi", "hi-en"}
        for body in by_language.values():
            texts.validate_template(kind, body)


def test_a_clinics_own_template_replaces_the_built_in_one(appointment):
    services.save_template(
        clinic=appointment.clinic,
        kind=MessageKind.CONFIRMATION,
        language="en",
        body="{clinic_name}: see you {date} {time}, {patient_name}. {{Bring reports}}",
    )
    body = services.render_appointment_message(appointment, MessageKind.CONFIRMATION, "en")
    assert (
        body
        == f"{appointment.clinic.name}: see you Sun, 25 Jan 2:30 PM, Ravi Kumar. {{Bring reports}}"
    )
    # Other languages and other clinics keep the defaults.
    assert services.template_body(appointment.clinic, "confirmation", "hi").startswith("नमस्ते")
    assert services.template_body(ClinicFactory(), "confirmation", "en").startswith("Hi ")


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("Hello {patient}", "Unknown placeholder {patient}"),
        ("Was {old_date}", "Unknown placeholder {old_date}"),  # reschedule notices only
        ("Hello {patient_name.__class__}", "Unknown placeholder"),
        ("Hello {0}", "Unknown placeholder {0}"),
        ("Hello {}", "Unknown placeholder {}"),
        ("At {time:>10}", "plainly"),
        ("Unclosed {date", "Unbalanced braces"),
        ("   ", "cannot be empty"),
    ],
)
def test_a_template_with_a_bad_placeholder_is_refused(clinic, body, complaint):
    with pytest.raises(BookingValidationError) as caught:
        services.save_template(clinic=clinic, kind="confirmation", language="en", body=body)
    assert complaint in caught.value.details["body"]
    assert not MessageTemplate.objects.exists()
    with pytest.raises(ValidationError):
        MessageTemplate(clinic=clinic, kind="confirmation", language="en", body=body).full_clean()


def test_reschedule_templates_may_name_the_old_time(clinic):
    template = services.save_template(
        clinic=clinic, kind="reschedule", language="en", body="Moved from {old_date} {old_time}"
    )
    assert template.pk


def test_the_admin_form_refuses_a_bad_placeholder(clinic, rf):
    model_admin = MessageTemplateAdmin(MessageTemplate, AdminSite())
    form_class = model_admin.get_form(rf.get("/"))
    data = {"clinic": clinic.pk, "kind": "reminder", "language": "hi", "body": "कल {when}"}
    form = form_class(data=data)
    assert not form.is_valid()
    assert "Unknown placeholder {when}" in form.errors["body"][0]
    form = form_class(data={**data, "body": "कल {time} बजे, {doctor_name}"})
    assert form.is_valid(), form.errors


def test_rendering_never_evaluates_what_a_stored_body_says():
    body = "{patient_name.__class__} {patient_name!r} {unknown} {patient_name}"
    assert texts.render(body, {"patient_name": "Ravi"}) == (
        "{patient_name.__class__} {patient_name!r} {unknown} Ravi"
    )
