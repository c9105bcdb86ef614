"""Fixtures shared by every app's tests."""

from datetime import date, datetime, time, timedelta

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.tests.factories import UserFactory
from accounts.tokens import issue_tokens
from clinic.tests.factories import ClinicFactory


def _clear_cache():
    if hasattr(cache, "delete_pattern"):  # Redis: only this test process's keys (its prefix);
        cache.delete_pattern("*")  # FLUSHDB would pull cached rows from under parallel workers
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters, revocations and cached users must not leak between tests."""
    _clear_cache()
    yield
    _clear_cache()


@pytest.fixture
def clinic(db):
    return ClinicFactory()


@pytest.fixture
def other_clinic(db):
    return ClinicFactory(name="Elsewhere Clinic")


def _user(clinic, role):
    return UserFactory(clinic=clinic, role=role)


@pytest.fixture
def admin_user(clinic):
    return _user(clinic, Role.ADMIN)


@pytest.fixture
def receptionist(clinic):
    return _user(clinic, Role.RECEPTIONIST)


@pytest.fixture
def doctor_user(clinic):
    return _user(clinic, Role.DOCTOR)


@pytest.fixture
def make_client():
    """An API client signed in as ``user`` with a real JWT (or anonymous)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            tokens = issue_tokens(user)
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
            client.tokens = tokens
        return client

    return make


@pytest.fixture
def api(make_client, receptionist):
    """Signed in as a receptionist of ``clinic``."""
    return make_client(receptionist)


@pytest.fixture
def admin_api(make_client, admin_user):
    return make_client(admin_user)


def local_datetime(clinic, day: date, clock: str) -> datetime:
    hour, minute = map(int, clock.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=clinic.tzinfo)


@pytest.fixture
def future_day(clinic):
    """A local date a few days ahead (factory doctors work every day)."""
    from django.utils import timezone

    return timezone.localdate(timezone=clinic.tzinfo) + timedelta(days=3)


@pytest.fixture
def at(clinic, future_day):
    """``at("10:00")``: that clock time on ``future_day`` in the clinic's zone."""
    return lambda clock, day=None: local_datetime(clinic, day or future_day, clock)
