"""The message record in the admin: searchable, filterable, provider fields read-only."""

import pytest

from accounts.models import User
from notifications.models import MessageKind, OutboundMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    operator = User.objects.create_superuser(
        username="ops@vaani.test", email="ops@vaani.test", password="x" * 12
    )
    client.force_login(operator)
    return client


def test_messages_are_listed_searched_and_filtered(operator_client, book, at):
    book(at("10:00"))
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    url = "/admin/notifications/outboundmessage/"
    page = operator_client.get(url, {"q": message.provider_id})
    assert page.status_code == 200
    assert message.to in page.content.decode()
    filtered = operator_client.get(url, {"status__exact": "failed"})
    assert filtered.status_code == 200 and "0 outbound messages" in filtered.content.decode()
    assert (
        operator_client.get(url, {"kind__exact": "reminder", "channel__exact": "sms"}).status_code
        == 200
    )
    assert operator_client.get(url + "add/").status_code == 403


def test_provider_fields_are_read_only(operator_client, book, at):
    book(at("10:00"))
    message = OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)
    page = operator_client.get(f"/admin/notifications/outboundmessage/{message.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert set(form.fields) == {"status"}
    assert message.provider_id in page.content.decode()


def test_the_other_pages_render(operator_client, book, at, client):
    book(at("10:00"))
    for model in ("inboundmessage", "messagetemplate", "notificationsettings", "optout"):
        assert operator_client.get(f"/admin/notifications/{model}/").status_code == 200
    assert operator_client.get("/admin/notifications/messagetemplate/add/").status_code == 200
