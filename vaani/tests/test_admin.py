"""Operators work in the Django admin: every model's pages open, search and filter."""

import pytest
from django.contrib import admin
from django.urls import reverse

from clinic.tests.factories import AppointmentFactory, DoctorFactory
from voice.tests.factories import CallLogFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(admin_user):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    return admin_user


def test_every_registered_model_has_working_changelist_and_search(client, operator, clinic):
    AppointmentFactory(clinic=clinic)
    CallLogFactory(clinic=clinic)
    DoctorFactory(clinic=clinic)
    client.force_login(operator)
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert client.get(url).status_code == 200, url
        if model_admin.search_fields:
            assert client.get(url, {"q": "a"}).status_code == 200, url
        if model_admin.has_add_permission(_request(operator)):
            add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
            assert client.get(add).status_code == 200, add


def test_clinic_models_are_registered_with_search_and_filters():
    from clinic.models import Appointment, Clinic, Doctor, Patient
    from voice.models import CallLog

    for model in (Clinic, Doctor, Patient, Appointment, CallLog):
        model_admin = admin.site._registry[model]
        assert model_admin.search_fields and model_admin.list_filter, model


def _request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_admin_shows_times_in_the_clinic_time_zone(client, operator, clinic):
    from datetime import UTC, datetime

    AppointmentFactory(clinic=clinic, scheduled_time=datetime(2030, 1, 7, 3, 30, tzinfo=UTC))
    client.force_login(operator)
    page = client.get(reverse("admin:clinic_appointment_changelist")).content.decode()
    assert "9 a.m." in page  # 03:30 UTC is 09:00 in Asia/Kolkata
