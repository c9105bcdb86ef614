"""HTTPS receivers: the guarded client connects to the checked address, yet TLS names and
verifies the URL's host (SNI and certificate), as it would without the guard."""

import ssl
from datetime import UTC, datetime, timedelta

import pytest

from webhooks import services, ssrf
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.tests.conftest import Receiver
from webhooks.tests.factories import WebhookDeliveryFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db
x509 = pytest.importorskip("cryptography.x509")


def _self_signed(tmp_path, name: str):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch, dns, settings):
    cert, key = _self_signed(tmp_path, "hooks.example.com")
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    client_side = ssl.create_default_context(cafile=str(cert))  # trusts only this certificate
    monkeypatch.setattr(ssrf, "_tls_context", lambda: client_side)
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
    dns["hooks.example.com"] = ["127.0.0.1"]
    dns["impostor.example.com"] = ["127.0.0.1"]
    server = Receiver(tls=server_side)
    yield server
    server.close()


def _try(clinic, url):
    delivery = WebhookDeliveryFactory(endpoint=WebhookEndpointFactory(clinic=clinic, url=url))
    outcome = services.attempt_delivery(delivery.pk)
    delivery.refresh_from_db()
    return outcome, delivery


def test_https_to_the_checked_address_verifies_the_host_name(clinic, tls_receiver):
    outcome, delivery = _try(clinic, tls_receiver.url(host="hooks.example.com"))
    assert outcome == "succeeded", delivery.last_error
    assert delivery.status == DeliveryStatus.SUCCEEDED
    (request,) = tls_receiver.requests
    assert request.headers["Host"] == f"hooks.example.com:{tls_receiver.port}"


def test_a_certificate_for_another_name_is_refused(clinic, tls_receiver):
    outcome, delivery = _try(clinic, tls_receiver.url(host="impostor.example.com"))
    assert outcome == "retrying"
    assert "CERTIFICATE_VERIFY_FAILED" in delivery.last_error or "certificate" in (
        delivery.last_error.lower()
    )
    assert tls_receiver.requests == []
    assert WebhookDelivery.objects.get(pk=delivery.pk).log.get().status_code is None
