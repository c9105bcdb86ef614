"""``/api/v1/admin/webhooks`` (§12.1): CRUD, roles, tenancy, the write-only secret."""

import re

import pytest
from django.conf import settings

from accounts.models import Role
from accounts.tests.factories import UserFactory
from webhooks.models import DeliveryStatus, WebhookEndpoint
from webhooks.tests.factories import WebhookDeliveryFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/admin/webhooks"
SPEC_BODY = {
    "url": "https://your-app.com/webhooks/vaani",
    "events": [
        "appointment.created",
        "appointment.updated",
        "appointment.cancelled",
        "call.completed",
    ],
    "secret": "your-webhook-secret",
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture
def webhook(clinic):
    return WebhookEndpointFactory(clinic=clinic, secret="a-long-secret-abcd")


@pytest.fixture
def foreign(other_clinic):
    return WebhookEndpointFactory(clinic=other_clinic)


def _no_secret(data: dict):
    assert "secret" not in data
    assert "your-webhook-secret" not in str(data)


# --- Create ----------------------------------------------------------------------------------


def test_create_with_the_documented_body(admin_api, clinic, admin_user):
    response = admin_api.post(URL, SPEC_BODY, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {"success", "data", "message", "timestamp"}
    assert body["success"] is True and body["message"] == "Webhook created"
    data = body["data"]
    assert data["url"] == SPEC_BODY["url"]
    assert data["events"] == SPEC_BODY["events"]
    assert data["is_active"] is True
    assert data["secret_hint"] == "…cret"
    assert data["disabled_at"] is None and data["disabled_reason"] == ""
    assert TIMESTAMP.match(data["created_at"])
    _no_secret(data)
    stored = WebhookEndpoint.objects.get(pk=data["id"])
    assert stored.clinic == clinic and stored.secret == "your-webhook-secret"
    assert stored.created_by == admin_user


def test_owner_may_create(make_client, clinic):
    owner = UserFactory(clinic=clinic, role=Role.OWNER)
    assert make_client(owner).post(URL, SPEC_BODY, format="json").status_code == 201


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"events": []}, "events"),
        ({"events": ["appointment.deleted"]}, "events"),
        ({"events": "call.completed"}, "events"),
        ({"secret": "short"}, "secret"),
        ({"secret": "whsec_not-base64!!!!!!!!!!!!!!"}, "secret"),
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://your-app.com/hook"}, "url"),
        ({"url": "https://user:pass@your-app.com/hook"}, "url"),
        ({"url": "http://10.0.0.1/hook"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url"),
        ({"clinic": 999}, "clinic"),
        ({"is_active": "perhaps"}, "is_active"),
    ],
)
def test_create_refuses_bad_input(admin_api, change, field):
    response = admin_api.post(URL, {**SPEC_BODY, **change}, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert any(key.split(".")[0] == field for key in error["details"]), error
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("missing", ["url", "events", "secret"])
def test_create_requires_url_events_and_secret(admin_api, missing):
    body = {k: v for k, v in SPEC_BODY.items() if k != missing}
    response = admin_api.post(URL, body, format="json")
    assert response.status_code == 400
    assert missing in response.json()["error"]["details"]


def test_the_same_url_twice_is_a_conflict(admin_api, clinic):
    assert admin_api.post(URL, SPEC_BODY, format="json").status_code == 201
    response = admin_api.post(URL, SPEC_BODY, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CONFLICT"
    assert WebhookEndpoint.objects.filter(clinic=clinic).count() == 1


def test_another_clinic_may_use_the_same_url(admin_api, foreign):
    body = {**SPEC_BODY, "url": foreign.url}
    assert admin_api.post(URL, body, format="json").status_code == 201


def test_events_are_deduplicated(admin_api):
    body = {**SPEC_BODY, "events": ["call.completed", "call.completed"]}
    assert admin_api.post(URL, body, format="json").json()["data"]["events"] == ["call.completed"]


# --- Read ----------------------------------------------------------------------------------


def test_list_is_paginated_under_webhooks_and_scoped(admin_api, webhook, foreign):
    WebhookEndpointFactory(clinic=webhook.clinic)
    response = admin_api.get(URL, {"limit": 1})
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"webhooks", "pagination"}
    assert data["pagination"] == {"page": 1, "limit": 1, "total": 2, "total_pages": 2}
    assert [w["id"] for w in data["webhooks"]] == [webhook.pk]
    _no_secret(data["webhooks"][0])
    all_ids = {w["id"] for w in admin_api.get(URL).json()["data"]["webhooks"]}
    assert foreign.pk not in all_ids


def test_retrieve(admin_api, webhook):
    data = admin_api.get(f"{URL}/{webhook.pk}").json()["data"]
    assert data["id"] == webhook.pk and data["secret_hint"] == "…abcd"
    _no_secret(data)
    assert "a-long-secret-abcd" not in str(data)


# --- Tenancy: another clinic's webhook is not found ---------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("put", "", {"events": ["call.completed"]}),
        ("patch", "", {"events": ["call.completed"]}),
        ("delete", "", None),
        ("post", "/test", None),
        ("get", "/deliveries", None),
    ],
)
def test_another_clinics_webhook_is_not_found(admin_api, foreign, method, suffix, body):
    response = getattr(admin_api, method)(f"{URL}/{foreign.pk}{suffix}", body, format="json")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "NOT_FOUND",
        "message": "Webhook not found",
        "details": {"resource": "webhook", "id": foreign.pk},
    }
    foreign.refresh_from_db()
    assert foreign.events != ["call.completed"]


# --- Roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.RECEPTIONIST, Role.DOCTOR])
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("post", ""), ("get", "/{id}"), ("patch", "/{id}"), ("delete", "/{id}")],
)
def test_only_owners_and_admins(make_client, clinic, webhook, role, method, suffix):
    client = make_client(UserFactory(clinic=clinic, role=role))
    path = URL + suffix.format(id=webhook.pk)
    response = getattr(client, method)(path, SPEC_BODY, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert WebhookEndpoint.objects.filter(pk=webhook.pk, events=webhook.events).exists()


def test_signed_out_is_401(make_client):
    response = make_client().get(URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


def test_counts_against_the_admin_rate_limit(admin_api):
    response = admin_api.get(URL)
    assert response["X-RateLimit-Limit"] == str(settings.RATE_LIMITS["admin"])


# --- Update and delete --------------------------------------------------------------------------


def test_patch_changes_only_what_is_sent(admin_api, webhook):
    response = admin_api.patch(
        f"{URL}/{webhook.pk}", {"events": ["call.completed"], "secret": "a-new-secret-wxyz"}
    )
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["events"] == ["call.completed"]
    assert data["url"] == webhook.url
    assert data["secret_hint"] == "…wxyz"
    _no_secret(data)
    webhook.refresh_from_db()
    assert webhook.secret == "a-new-secret-wxyz"


def test_put_checks_the_new_url(admin_api, webhook):
    response = admin_api.put(f"{URL}/{webhook.pk}", {"url": "http://[::ffff:127.0.0.1]/x"})
    assert response.status_code == 400
    assert "url" in response.json()["error"]["details"]
    ok = admin_api.put(f"{URL}/{webhook.pk}", {"url": "https://new.example.com/hook"})
    assert ok.status_code == 200 and ok.json()["data"]["url"] == "https://new.example.com/hook"


def test_re_enabling_clears_the_notice(admin_api, webhook):
    admin_api.patch(f"{URL}/{webhook.pk}", {"is_active": False})
    webhook.refresh_from_db()
    assert webhook.disabled_at is not None and webhook.disabled_reason
    data = admin_api.patch(f"{URL}/{webhook.pk}", {"is_active": True}).json()["data"]
    assert data["is_active"] is True
    assert data["disabled_at"] is None and data["disabled_reason"] == ""
    assert data["failing_since"] is None


def test_delete(admin_api, webhook):
    WebhookDeliveryFactory(endpoint=webhook)
    response = admin_api.delete(f"{URL}/{webhook.pk}")
    assert response.status_code == 200
    assert response.json()["data"] == {"id": webhook.pk, "deleted": True}
    assert admin_api.get(f"{URL}/{webhook.pk}").status_code == 404


# --- Test event and deliveries -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_test_sends_a_signed_ping(admin_api, clinic, receiver, allow_local):
    webhook = WebhookEndpointFactory(clinic=clinic, url=receiver.url())
    response = admin_api.post(f"{URL}/{webhook.pk}/test")
    assert response.status_code == 202, response.json()
    data = response.json()["data"]
    assert data["event_type"] == "ping" and data["status"] == DeliveryStatus.SUCCEEDED
    assert data["attempt_log"][0]["status_code"] == 200
    (request,) = receiver.requests
    assert request.json()["event"] == "ping"
    assert request.json()["id"] == data["event_id"] == request.headers["webhook-id"]
    assert request.headers["X-VAANI-Signature"].startswith("sha256=")


@pytest.mark.django_db(transaction=True)
def test_a_failed_ping_is_not_retried_and_says_why(admin_api, clinic, receiver, allow_local):
    receiver.respond(500)
    webhook = WebhookEndpointFactory(clinic=clinic, url=receiver.url())
    data = admin_api.post(f"{URL}/{webhook.pk}/test").json()["data"]
    assert data["status"] == DeliveryStatus.FAILED
    assert data["last_status_code"] == 500 and "HTTP 500" in data["last_error"]
    webhook.refresh_from_db()
    assert webhook.failing_since is None  # a test says nothing of the endpoint's health


def test_deliveries_list(admin_api, webhook):
    failed = WebhookDeliveryFactory(endpoint=webhook, status=DeliveryStatus.FAILED)
    WebhookDeliveryFactory(endpoint=webhook)
    WebhookDeliveryFactory()  # another endpoint's
    data = admin_api.get(f"{URL}/{webhook.pk}/deliveries").json()["data"]
    assert set(data) == {"deliveries", "pagination"}
    assert data["pagination"]["total"] == 2
    only_failed = admin_api.get(f"{URL}/{webhook.pk}/deliveries", {"status": "failed"})
    assert [d["id"] for d in only_failed.json()["data"]["deliveries"]] == [failed.pk]
    item = only_failed.json()["data"]["deliveries"][0]
    assert item["payload"]["id"] == failed.event_id and item["attempt_log"] == []
