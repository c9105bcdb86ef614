"""Signatures on real deliveries: the reference's own verifier (§12.3), and Standard Webhooks."""

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from webhooks import services, signing
from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.tests.factories import WebhookEndpointFactory

pytestmark = pytest.mark.django_db


# fmt: off
# §12.3 of the API reference, verbatim.
def verify_webhook_signature(payload: bytes, signature: str, secret: str) -> bool:
    expected_signature = hmac.new(
        secret.encode(),
        payload,
        hashlib.sha256
    ).hexdigest()

    return hmac.compare_digest(f"sha256={expected_signature}", signature)
# fmt: on


def _deliver(clinic, receiver, secret, django_capture_on_commit_callbacks):
    WebhookEndpointFactory(clinic=clinic, url=receiver.url(), secret=secret)
    with django_capture_on_commit_callbacks(execute=True):
        services.publish_event(
            clinic_id=clinic.pk,
            event_type=WebhookEvent.APPOINTMENT_CREATED,
            data={"id": 123, "patient_id": 45, "note": "नमस्ते"},  # non-ASCII: bytes matter
        )
    (request,) = receiver.requests
    return request


def test_the_documented_verifier_accepts_a_real_delivery(
    clinic, receiver, allow_local, django_capture_on_commit_callbacks
):
    request = _deliver(clinic, receiver, "your-webhook-secret", django_capture_on_commit_callbacks)
    signature = request.headers["X-VAANI-Signature"]
    assert signature.startswith("sha256=")
    assert verify_webhook_signature(request.body, signature, "your-webhook-secret")
    assert not verify_webhook_signature(request.body + b" ", signature, "your-webhook-secret")
    assert not verify_webhook_signature(request.body, signature, "another-secret-000")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-VAANI-Event"] == "appointment.created"


def test_standard_webhooks_with_a_plain_secret(
    clinic, receiver, allow_local, django_capture_on_commit_callbacks
):
    """A secret that is not whsec_ is keyed with its UTF-8 bytes."""
    secret = "your-webhook-secret"
    request = _deliver(clinic, receiver, secret, django_capture_on_commit_callbacks)
    body = Webhook(secret.encode()).verify(request.body, request.headers)
    assert body["event"] == "appointment.created"
    assert request.headers["webhook-id"] == body["id"]
    # The same key written the standard's way, as receivers in any language would.
    as_whsec = "whsec_" + base64.b64encode(secret.encode()).decode()
    assert Webhook(as_whsec).verify(request.body, request.headers) == body
    with pytest.raises(WebhookVerificationError):
        Webhook(b"wrong-secret-bytes").verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret.encode()).verify(request.body.replace(b"123", b"124"), request.headers)


def test_standard_webhooks_with_a_whsec_secret(
    clinic, receiver, allow_local, django_capture_on_commit_callbacks
):
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    request = _deliver(clinic, receiver, secret, django_capture_on_commit_callbacks)
    assert Webhook(secret).verify(request.body, request.headers)["data"]["id"] == 123
    # The reference's header still uses the secret as written.
    assert verify_webhook_signature(request.body, request.headers["X-VAANI-Signature"], secret)


def test_retries_keep_the_id_and_body_and_sign_each_try(
    clinic, receiver, allow_local, django_capture_on_commit_callbacks
):
    receiver.respond(503, 200)
    request = _deliver(clinic, receiver, "your-webhook-secret", django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.attempt_delivery(delivery.pk) == "succeeded"
    first, second = receiver.requests
    assert first is request
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.event_id
    assert (first.headers["X-VAANI-Attempt"], second.headers["X-VAANI-Attempt"]) == ("1", "2")
    for try_ in (first, second):
        Webhook(b"your-webhook-secret").verify(try_.body, try_.headers)


def test_standard_signature_matches_the_specification_example():
    """The example of the Standard Webhooks specification (its test vector)."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert (
        signing.standard_webhooks_signature(
            secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body
        )
        == expected
    )
