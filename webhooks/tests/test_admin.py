"""Operators are told in the admin when Vaani disabled a clinic's webhook, and re-enable it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from clinic.tests.factories import ClinicFactory
from webhooks import selectors, services
from webhooks.models import CREATED_DISABLED, DISABLED_BY_USER, WebhookEndpoint
from webhooks.tests.factories import WebhookEndpointFactory

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")
CHANGELIST = reverse("admin:webhooks_webhookendpoint_changelist")
WHEN = datetime(2030, 1, 7, 3, 30, tzinfo=UTC)
FAILED_REASON = (
    "Every delivery failed for 24 hours (since 2030-01-06T03:00:00Z). Last error: HTTP 503: down"
)


@pytest.fixture
def operator(admin_user):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    return admin_user


@pytest.fixture
def signed_in(client, operator):
    client.force_login(operator)
    return client


def auto_disabled(clinic, *, when=WHEN, reason=FAILED_REASON, **kwargs):
    """An endpoint as ``services.disable_endpoint`` leaves it."""
    return WebhookEndpointFactory(
        clinic=clinic,
        is_active=False,
        disabled_at=when,
        disabled_reason=reason,
        failing_since=when - timedelta(hours=24),
        **kwargs,
    )


def healthy_and_switched_off(clinic):
    """The two endpoints the notice and the filter must leave out: an active one, and one
    a person switched off."""
    WebhookEndpointFactory(clinic=clinic, url="https://healthy.example.com/hook")
    WebhookEndpointFactory(
        clinic=clinic,
        url="https://switched-off.example.com/hook",
        is_active=False,
        disabled_at=WHEN,
        disabled_reason=DISABLED_BY_USER,
    )


def _notice(response) -> str:
    page = response.content.decode()
    start = page.find('id="webhooks-disabled"')
    if start == -1:
        return ""
    return page[start : page.index("</section>", start)]


# --- The notice on the admin index ----------------------------------------------------------------


def test_index_lists_automatically_disabled_endpoints_only(signed_in, clinic):
    failed = auto_disabled(clinic, url="https://broken.example.com/hook")
    healthy_and_switched_off(clinic)
    WebhookEndpointFactory(
        clinic=clinic,
        url="https://born-off.example.com/hook",
        is_active=False,
        disabled_at=WHEN,
        disabled_reason=CREATED_DISABLED,
    )
    # Switched off in the admin's form before its switch went through the service.
    WebhookEndpointFactory(clinic=clinic, url="https://form-off.example.com/hook", is_active=False)

    response = signed_in.get(INDEX)

    assert response.status_code == 200
    notice = _notice(response)
    assert "1 webhook endpoint was" in notice
    assert "https://broken.example.com/hook" in notice
    assert clinic.name in notice
    assert "HTTP 503: down" in notice
    assert reverse("admin:webhooks_webhookendpoint_change", args=[failed.pk]) in notice
    for url in ("healthy", "switched-off", "born-off", "form-off"):
        assert f"https://{url}.example.com/hook" not in notice
    assert "Asia/Kolkata" in notice


def test_index_shows_each_endpoint_in_its_own_clinic_time_zone(signed_in, clinic):
    auto_disabled(clinic)  # the operator's clinic: Asia/Kolkata
    auto_disabled(ClinicFactory(name="Lakeside Clinic", time_zone="America/New_York"))

    notice = _notice(signed_in.get(INDEX))

    assert "7 Jan 2030, 09:00</time> Asia/Kolkata" in notice  # 03:30 UTC
    assert "6 Jan 2030, 22:30</time> America/New_York" in notice  # the day before there
    assert "Lakeside Clinic" in notice
    assert 'datetime="2030-01-07T03:30:00+00:00"' in notice


def test_index_escapes_what_the_receiver_answered(signed_in, clinic):
    auto_disabled(
        clinic, reason="Every delivery failed. Last error: HTTP 500: <script>x()</script>"
    )

    notice = _notice(signed_in.get(INDEX))

    assert "<script>" not in notice
    assert "&lt;script&gt;" in notice


def test_index_without_disabled_endpoints_has_no_notice(signed_in, clinic):
    WebhookEndpointFactory(clinic=clinic)
    response = signed_in.get(INDEX)
    assert response.status_code == 200
    assert 'id="webhooks-disabled"' not in response.content.decode()


def test_notice_is_on_the_index_only(signed_in, clinic):
    auto_disabled(clinic)
    for url in (reverse("admin:app_list", args=["webhooks"]), CHANGELIST):
        response = signed_in.get(url)
        assert response.status_code == 200, url
        assert 'id="webhooks-disabled"' not in response.content.decode(), url


def test_index_caps_the_list_and_links_to_all(signed_in, clinic):
    for minutes in range(22):
        auto_disabled(clinic, when=WHEN + timedelta(minutes=minutes))

    notice = _notice(signed_in.get(INDEX))

    assert "22 webhook endpoints were" in notice
    assert notice.count("<tr>") == 1 + 20  # the header and 20 rows
    assert "And 2 more" in notice
    assert f"{CHANGELIST}?disabled_automatically=yes" in notice


def test_staff_without_webhook_permission_sees_no_notice(client, clinic, receptionist):
    auto_disabled(clinic)
    receptionist.is_staff = True
    receptionist.save()
    client.force_login(receptionist)
    response = client.get(INDEX)
    assert response.status_code == 200
    assert 'id="webhooks-disabled"' not in response.content.decode()


@pytest.mark.parametrize("who", ["anonymous", "receptionist"])
def test_non_staff_cannot_see_the_admin_index(client, clinic, receptionist, who):
    auto_disabled(clinic)
    if who == "receptionist":
        assert not receptionist.is_staff
        client.force_login(receptionist)
    response = client.get(INDEX)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert response["Location"].endswith(f"?next={INDEX}")


# --- The selector ---------------------------------------------------------------------------------


def test_selector_is_one_query_when_all_fit(clinic, django_assert_num_queries):
    for minutes in range(3):
        auto_disabled(clinic, when=WHEN + timedelta(minutes=minutes))
    with django_assert_num_queries(1):
        result = selectors.automatically_disabled_endpoints(limit=20)
        shown = [
            (e.clinic.name, e.clinic.time_zone, e.url, e.disabled_at) for e in result.endpoints
        ]
    assert result.total == 3 and result.more == 0
    assert [when for *_, when in shown] == sorted((when for *_, when in shown), reverse=True)


def test_selector_counts_only_when_there_are_more(clinic, django_assert_num_queries):
    for minutes in range(4):
        auto_disabled(clinic, when=WHEN + timedelta(minutes=minutes))
    with django_assert_num_queries(2):
        result = selectors.automatically_disabled_endpoints(limit=3)
    assert len(result.endpoints) == 3 and result.total == 4 and result.more == 1


# --- The list filter and the action ---------------------------------------------------------------


def test_filter_disabled_automatically(signed_in, clinic):
    auto_disabled(clinic, url="https://broken.example.com/hook")
    healthy_and_switched_off(clinic)

    yes = signed_in.get(CHANGELIST, {"disabled_automatically": "yes"})
    no = signed_in.get(CHANGELIST, {"disabled_automatically": "no"})

    assert [e.url for e in yes.context["cl"].result_list] == ["https://broken.example.com/hook"]
    assert sorted(e.url for e in no.context["cl"].result_list) == [
        "https://healthy.example.com/hook",
        "https://switched-off.example.com/hook",
    ]
    assert "disabled automatically" in yes.content.decode()


def test_re_enable_action_goes_through_the_service(signed_in, clinic, monkeypatch):
    failed = auto_disabled(clinic)
    active = WebhookEndpointFactory(clinic=clinic)
    calls = []
    real = services.update_endpoint

    def spy(*, endpoint, changes):
        calls.append((endpoint.pk, dict(changes)))
        return real(endpoint=endpoint, changes=changes)

    monkeypatch.setattr(services, "update_endpoint", spy)

    response = signed_in.post(
        CHANGELIST,
        {"action": "re_enable", "_selected_action": [failed.pk, active.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert calls == [(failed.pk, {"is_active": True})]  # the already active one is left alone
    failed.refresh_from_db()
    assert failed.is_active is True
    assert failed.disabled_at is None and failed.disabled_reason == ""
    assert failed.failing_since is None
    page = response.content.decode()
    assert "Re-enabled 1 webhook endpoint" in page
    assert "1 selected webhook endpoint was already enabled" in page
    assert LogEntry.objects.filter(object_id=str(failed.pk), change_message="Re-enabled.").exists()
    # Off the notice and out of the filter.
    assert 'id="webhooks-disabled"' not in signed_in.get(INDEX).content.decode()


def test_re_enable_from_the_filtered_list_reports_no_phantom_skips(signed_in, clinic):
    """Run from "disabled automatically: yes" (the notice's link), the list's filter no
    longer matches the endpoints once they are re-enabled: the counts come from the
    selection as it was."""
    failed = auto_disabled(clinic)

    response = signed_in.post(
        CHANGELIST + "?disabled_automatically=yes",
        {"action": "re_enable", "_selected_action": [failed.pk]},
        follow=True,
    )

    page = response.content.decode()
    assert "Re-enabled 1 webhook endpoint" in page
    assert "already enabled" not in page


def test_switching_is_active_in_the_change_form_follows_the_service(signed_in, clinic):
    failed = auto_disabled(clinic, url="https://broken.example.com/hook")
    change = reverse("admin:webhooks_webhookendpoint_change", args=[failed.pk])
    form = {
        "clinic": clinic.pk,
        "url": failed.url,
        "events": '["appointment.created"]',
        "secret": failed.secret,
        "description": "fixed",
    }

    response = signed_in.post(change, {**form, "is_active": "on"})

    assert response.status_code == 302, response.content.decode()
    endpoint = WebhookEndpoint.objects.get(pk=failed.pk)
    assert endpoint.is_active and endpoint.description == "fixed"
    assert endpoint.events == ["appointment.created"]
    # A fresh start: otherwise its next failure would disable it again at once.
    assert endpoint.failing_since is None
    assert endpoint.disabled_at is None and endpoint.disabled_reason == ""

    response = signed_in.post(change, form)  # unticked

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert endpoint.disabled_at is not None and endpoint.disabled_reason == DISABLED_BY_USER
    assert 'id="webhooks-disabled"' not in signed_in.get(INDEX).content.decode()
