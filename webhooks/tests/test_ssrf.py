"""Receivers' URLs may not reach our own network: on save, and again on every connection."""

from datetime import timedelta

import pytest
from django.utils import timezone

from webhooks import services, ssrf
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent
from webhooks.tests.conftest import Answer
from webhooks.tests.factories import WebhookDeliveryFactory, WebhookEndpointFactory

REFUSED = [
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.10/hook",
    "http://127.0.0.1/hook",
    "http://127.0.0.1:8000/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:7f00:1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://0x7f000001/hook",
    "http://2130706433/hook",
    "http://0x7f.0.0.1/hook",
    "http://127.1/hook",
    "http://0.0.0.0/hook",
    "http://0/hook",
    "http://100.64.0.1/hook",  # shared address space (carrier NAT)
    "http://224.0.0.1/hook",  # multicast
    "http://240.0.0.1/hook",  # reserved
    "http://255.255.255.255/hook",
    "http://[fe80::1]/hook",  # link-local
    "http://[fc00::1]/hook",  # unique local
    "http://[ff02::1]/hook",  # multicast
    "http://[::]/hook",
    "http://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 around 169.254.169.254
    "http://localhost/hook",
    "http://LOCALHOST./hook",
]
MALFORMED = [
    "",
    "your-app.com/hook",
    "ftp://your-app.com/hook",
    "file:///etc/passwd",
    "gopher://your-app.com:70/",
    "javascript:alert(1)",
    "https://user:password@your-app.com/hook",
    "https://user@your-app.com/hook",
    "http://0177.0.0.1/hook",  # octal: httpx refuses leading zeros outright
    "https://your-app.com /hook",
    "https://your-app.com/\r\nX-Injected: 1",
    "https://" + "a" * 2000 + ".com/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_addresses_are_refused(url, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = []
    with pytest.raises(ssrf.UnsafeURL, match="public addresses only"):
        ssrf.check_url(url)


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_are_refused(url):
    with pytest.raises(ssrf.UnsafeURL):
        ssrf.check_url(url)


def test_a_name_resolving_to_a_private_address_is_refused(dns):
    dns["hooks.internal.example.com"] = ["10.20.30.40"]
    with pytest.raises(ssrf.UnsafeURL, match=r"10\.20\.30\.40"):
        ssrf.check_url("https://hooks.internal.example.com/vaani")


def test_one_private_address_among_public_ones_is_enough_to_refuse(dns):
    dns["mixed.example.com"] = ["93.184.216.34", "127.0.0.1"]
    with pytest.raises(ssrf.UnsafeURL):
        ssrf.check_url("https://mixed.example.com/vaani")


def test_unresolvable_hosts_are_refused(monkeypatch):
    def fail(host, port):
        raise OSError("Name or service not known")

    monkeypatch.setattr(ssrf, "resolve", fail)
    with pytest.raises(ssrf.UnsafeURL, match="could not be resolved"):
        ssrf.check_url("https://nowhere.invalid/hook")


@pytest.mark.parametrize(
    "url",
    [
        "https://your-app.com/webhooks/vaani",
        "http://your-app.com:8080/webhooks/vaani?token=abc",
        "https://93.184.216.34/hook",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
    ],
)
def test_public_urls_are_accepted(url):
    assert ssrf.check_url(url) == url


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        (["127.0.0.1"], "http://127.0.0.1:8080/hook"),
        (["127.0.0.1"], "http://[::ffff:127.0.0.1]:8080/hook"),
        (["localhost"], "http://localhost:8080/hook"),
        (["hooks.clinic.lan"], "http://hooks.clinic.lan/hook"),
        (["10.0.0.0/8"], "http://10.1.2.3/hook"),
        (["fd00::/8"], "http://[fd12::1]/hook"),
    ],
)
def test_allowed_private_hosts(settings, dns, allowed, url):
    dns["hooks.clinic.lan"] = ["192.168.10.5"]
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = allowed
    assert ssrf.check_url(url) == url


def test_an_allowance_is_not_a_blank_cheque(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = ["10.0.0.0/8", "localhost"]
    for url in ("http://192.168.1.1/", "http://169.254.169.254/", "http://127.0.0.1/"):
        with pytest.raises(ssrf.UnsafeURL):
            ssrf.check_url(url)


def test_the_api_refuses_them_too(admin_api, db):
    for url in ("http://10.0.0.1/hook", "http://2130706433/", "http://[::1]/"):
        response = admin_api.post(
            "/api/v1/admin/webhooks",
            {"url": url, "events": ["call.completed"], "secret": "your-webhook-secret"},
            format="json",
        )
        assert response.status_code == 400, url
        assert "public addresses only" in response.json()["error"]["details"]["url"]


# --- At connection time ---------------------------------------------------------------------------


def _due(endpoint):
    return WebhookDeliveryFactory(
        endpoint=endpoint,
        event_type=WebhookEvent.CALL_COMPLETED,
        next_attempt_at=timezone.now() - timedelta(seconds=1),
    )


@pytest.mark.django_db
def test_dns_rebinding_is_caught_when_connecting(clinic, receiver, dns, settings):
    """Public when saved, 127.0.0.1 when sent: nothing reaches the private address."""
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = []
    url = receiver.url(host="rebind.example.com")
    ssrf.check_url(url)  # passes: the name is public now
    endpoint = WebhookEndpointFactory(clinic=clinic, url=url)
    dns["rebind.example.com"] = ["127.0.0.1"]
    delivery = _due(endpoint)
    assert services.attempt_delivery(delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert "public addresses only" in delivery.last_error
    assert delivery.last_status_code is None
    assert receiver.requests == []


@pytest.mark.django_db
def test_a_private_url_stored_anyhow_is_not_reached(clinic, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = []
    endpoint = WebhookEndpointFactory(clinic=clinic, url=receiver.url(host="2130706433"))
    delivery = _due(endpoint)
    services.attempt_delivery(delivery.pk)
    assert receiver.requests == []
    delivery.refresh_from_db()
    assert "127.0.0.1" in delivery.last_error


@pytest.mark.django_db
def test_connects_to_the_checked_address_with_the_original_host(clinic, receiver, dns, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
    dns["hooks.example.com"] = ["127.0.0.1"]
    endpoint = WebhookEndpointFactory(clinic=clinic, url=receiver.url(host="hooks.example.com"))
    delivery = _due(endpoint)
    assert services.attempt_delivery(delivery.pk) == "succeeded"
    (request,) = receiver.requests
    assert request.headers["Host"] == f"hooks.example.com:{receiver.port}"


@pytest.mark.django_db
def test_redirects_are_not_followed(clinic, receiver, allow_local):
    receiver.respond(Answer(status=302, headers={"Location": receiver.url("/elsewhere")}))
    endpoint = WebhookEndpointFactory(clinic=clinic, url=receiver.url())
    delivery = _due(endpoint)
    assert services.attempt_delivery(delivery.pk) == "retrying"
    assert [r.path for r in receiver.requests] == ["/hook"]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code == 302
    assert "not followed" in delivery.last_error
    assert WebhookDelivery.objects.get().log.get().status_code == 302


@pytest.mark.django_db
def test_no_proxy_from_the_environment(clinic, receiver, allow_local, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.9.9.9:3128")
    endpoint = WebhookEndpointFactory(clinic=clinic, url=receiver.url())
    assert services.attempt_delivery(_due(endpoint).pk) == "succeeded"
    assert len(receiver.requests) == 1
