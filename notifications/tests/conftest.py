"""Messages go to memory (``LocmemBackend.outbox``) unless a test picks another backend."""

import pytest
from twilio.request_validator import RequestValidator

from clinic import services as clinic_services
from clinic.tests.factories import DoctorFactory, PatientFactory
from notifications.backends import LocmemBackend
from vaani.celery import app as celery_app

TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://clinic.example.com"


@pytest.fixture(autouse=True)
def outbox(settings):
    settings.SMS_BACKEND = "locmem"
    settings.TWILIO_MESSAGING_FROM = "+14155550100"
    settings.TWILIO_WHATSAPP_FROM = "+14155550199"
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_SKIP_SIGNATURE_CHECK = False
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.SMS_STATUS_CALLBACK_URL = f"{PUBLIC}/api/v1/sms/status"
    settings.SMS_RESCHEDULE_URL = f"{PUBLIC}/reschedule"
    settings.ALLOWED_HOSTS = ["testserver", "clinic.example.com"]
    LocmemBackend.outbox = []
    yield LocmemBackend.outbox
    LocmemBackend.outbox = []


@pytest.fixture(autouse=True)
def eager_celery():
    """Tasks run in the test, also when REDIS_URL makes Celery use the broker."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, True
    yield
    conf.task_always_eager, conf.task_eager_propagates = saved


@pytest.fixture
def commits(django_capture_on_commit_callbacks):
    """``with commits():`` runs what waits for the commit (signals, send tasks) at the end."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def doctor(clinic):
    return DoctorFactory(clinic=clinic, name="Dr. Asha Rao")


@pytest.fixture
def patient(clinic):
    return PatientFactory(
        clinic=clinic, name="Ravi Kumar", phone="+919876543210", language_preference="en"
    )


@pytest.fixture
def book(clinic, doctor, patient, commits):
    """Books through the real service and runs the on-commit work (the messages)."""

    def make(when, *, who=None, with_doctor=None):
        with commits():
            return clinic_services.book_appointment(
                clinic=clinic,
                patient_id=(who or patient).pk,
                doctor_id=(with_doctor or doctor).pk,
                scheduled_time=when,
            )

    return make


def signed_post(client, path, params, *, url=None, token=TOKEN):
    signature = RequestValidator(token).compute_signature(url or PUBLIC + path, params)
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)
