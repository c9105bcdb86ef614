"""At-least-once delivery against a real receiver: retries, backoff, claims, the sweeper,
and disabling an endpoint that fails for a day."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from accounts.models import Role
from accounts.tests.factories import UserFactory
from webhooks import services, tasks
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEvent
from webhooks.tests.conftest import Answer
from webhooks.tests.factories import WebhookDeliveryFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(clinic, receiver, allow_local):
    return WebhookEndpointFactory(clinic=clinic, url=receiver.url())


@pytest.fixture
def enqueued(monkeypatch):
    """Records what would go to the broker instead of running it."""
    calls = []
    monkeypatch.setattr(
        services, "enqueue", lambda ids, countdown=None: calls.append((list(ids), countdown))
    )
    return calls


def _publish(clinic, capture):
    with capture(execute=True):
        services.publish_event(
            clinic_id=clinic.pk, event_type=WebhookEvent.APPOINTMENT_CREATED, data={"id": 1}
        )
    return WebhookDelivery.objects.get()


def _make_due(delivery):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


# --- Backoff --------------------------------------------------------------------------------------


def _ceiling(attempt: int) -> float:
    return min(
        settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS,
        settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempt - 1),
    )


def test_waits_of_30_seconds_double_up_to_an_hour(settings):
    # The defaults (set here: the environment may change them on a real deployment).
    settings.WEBHOOK_RETRY_BASE_SECONDS, settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS = 30, 3600
    assert [services.backoff_ceiling(n) for n in (1, 2, 3, 7, 8, 50, 5000)] == [
        30,
        60,
        120,
        1920,
        3600,
        3600,
        3600,
    ]


@pytest.mark.parametrize("attempt", range(1, 16))
def test_backoff_is_exponential_capped_and_jittered(attempt):
    ceiling = _ceiling(attempt)
    delays = [services.backoff_delay(attempt) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jitter: no two workers in lockstep


def test_retries_span_at_least_the_retry_window():
    """Even with the shortest jitter every time, the last try is after 24 hours."""
    elapsed, attempt = 0.0, 0
    while elapsed < settings.WEBHOOK_RETRY_HOURS * 3600:
        attempt += 1
        elapsed += _ceiling(attempt) / 2
    assert attempt < 100  # and a finite number of tries


def test_countdowns_stay_below_the_visibility_timeout():
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert services.max_countdown() < visibility
    assert services.max_countdown() <= visibility / 2


# --- Retries against the receiver -----------------------------------------------------------------


def test_fails_twice_then_succeeds(clinic, endpoint, receiver, django_capture_on_commit_callbacks):
    receiver.respond(500, Answer(status=503, body=b"busy, come back later"), 200)
    before = timezone.now()
    delivery = _publish(clinic, django_capture_on_commit_callbacks)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 15 <= wait <= 30 + 5  # first retry: 30 s with jitter down to half

    _make_due(delivery)
    started = timezone.now()
    assert tasks.deliver_webhook(delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert 30 <= (delivery.next_attempt_at - started).total_seconds() <= 60 + 5
    assert delivery.last_error == "HTTP 503: busy, come back later"

    _make_due(delivery)
    assert tasks.deliver_webhook(delivery.pk) == "succeeded"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 3
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None

    log = list(delivery.log.values_list("number", "status_code", "succeeded"))
    assert log == [(1, 500, False), (2, 503, False), (3, 200, True)]
    assert all(a.latency_ms >= 0 and a.started_at for a in delivery.log.all())
    assert len(receiver.requests) == 3
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.last_success_at is not None


def test_a_timeout_is_retried(clinic, endpoint, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.respond(Answer(delay=1.5))
    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    assert services.attempt_delivery(delivery.pk) == "retrying"
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error == "Timed out after 0.3 seconds"
    assert 250 <= attempt.latency_ms < 1500


def test_a_closed_port_is_retried(clinic, receiver, allow_local):
    receiver.close()
    endpoint = WebhookEndpointFactory(clinic=clinic, url=receiver.url())
    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    assert services.attempt_delivery(delivery.pk) == "retrying"
    assert "ConnectError" in WebhookAttempt.objects.get().error


def test_short_waits_are_countdowns_long_ones_wait_for_the_sweeper(
    endpoint, receiver, enqueued, django_capture_on_commit_callbacks
):
    receiver.respond(500, 500)
    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        services.attempt_delivery(delivery.pk)
    ((ids, countdown),) = enqueued
    assert ids == [delivery.pk] and 15 <= countdown <= 30

    enqueued.clear()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=9)  # the 10th try fails next
    _make_due(delivery)
    with django_capture_on_commit_callbacks(execute=True):
        services.attempt_delivery(delivery.pk)
    assert enqueued == []  # a wait of up to an hour: beat's sweeper takes it
    delivery.refresh_from_db()
    assert delivery.next_attempt_at - timezone.now() > timedelta(seconds=services.max_countdown())


def test_the_retry_waits_come_from_the_settings(
    endpoint, receiver, enqueued, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 2
    settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS = 5
    assert [services.backoff_ceiling(n) for n in (1, 2, 3, 4)] == [2, 4, 5, 5]
    receiver.respond(500, 500, 500)
    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    waits = []
    for _ in range(3):
        started = timezone.now()
        with django_capture_on_commit_callbacks(execute=True):
            assert services.attempt_delivery(delivery.pk) == "retrying"
        delivery.refresh_from_db()
        waits.append((delivery.next_attempt_at - started).total_seconds())
        _make_due(delivery)
    assert 1 <= waits[0] <= 2 + 1 and 2 <= waits[1] <= 4 + 1 and 2.5 <= waits[2] <= 5 + 1
    assert [ids for ids, _ in enqueued] == [[delivery.pk]] * 3
    assert all(1 <= countdown <= 5 for _, countdown in enqueued)


def test_the_sweepers_grace_comes_from_the_settings(endpoint, enqueued, settings):
    due = WebhookDeliveryFactory(
        endpoint=endpoint, next_attempt_at=timezone.now() - timedelta(seconds=10)
    )
    settings.WEBHOOK_SWEEP_GRACE_SECONDS = 30  # the default
    assert services.enqueue_due_deliveries() == 0
    settings.WEBHOOK_SWEEP_GRACE_SECONDS = 5
    assert services.enqueue_due_deliveries() == 1
    assert enqueued == [([], None), ([due.pk], None)]


def test_gives_up_after_the_retry_window(clinic, endpoint, receiver):
    receiver.respond(500, 500)
    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(hours=23)
    )
    assert services.attempt_delivery(delivery.pk) == "retrying"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(hours=24, minutes=1)
    )
    _make_due(delivery)
    assert services.attempt_delivery(delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
    assert services.attempt_delivery(delivery.pk) == "skipped"


# --- Idempotence ----------------------------------------------------------------------------------


def test_a_duplicate_task_sends_once(endpoint, receiver):
    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    assert tasks.deliver_webhook(delivery.pk) == "succeeded"
    assert tasks.deliver_webhook(delivery.pk) == "skipped"
    assert tasks.deliver_webhook.apply(args=(delivery.pk,)).get() == "skipped"
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 1


def test_a_task_before_its_time_does_nothing(endpoint, receiver):
    delivery = WebhookDeliveryFactory(
        endpoint=endpoint, next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert services.attempt_delivery(delivery.pk) == "skipped"
    assert receiver.requests == []


def test_a_delivery_held_by_another_worker_is_left_alone(endpoint, receiver):
    delivery = WebhookDeliveryFactory(
        endpoint=endpoint, locked_until=timezone.now() + timedelta(seconds=30)
    )
    assert services.attempt_delivery(delivery.pk) == "skipped"
    # ...until its lease runs out (that worker died): then it is sent.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )
    assert services.attempt_delivery(delivery.pk) == "succeeded"
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_tasks_send_once(clinic, receiver, allow_local):
    receiver.respond(Answer(delay=0.5))
    endpoint = WebhookEndpointFactory(clinic=clinic, url=receiver.url())
    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    barrier = threading.Barrier(4)
    outcomes = []

    def run():
        barrier.wait()
        try:
            outcomes.append(services.attempt_delivery(delivery.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["skipped", "skipped", "skipped", "succeeded"]
    assert len(receiver.requests) == 1


# --- The sweeper ----------------------------------------------------------------------------------


def test_the_sweeper_sends_what_the_broker_lost(
    clinic, endpoint, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(tasks.deliver_webhook, "apply_async", broker_down)
    delivery = _publish(clinic, django_capture_on_commit_callbacks)  # stored, not enqueued
    assert receiver.requests == []
    assert delivery.status == DeliveryStatus.PENDING
    monkeypatch.undo()

    assert tasks.sweep_webhook_deliveries() == 0  # within the grace for its own task
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=1)
    )
    assert tasks.sweep_webhook_deliveries() == 1
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert tasks.sweep_webhook_deliveries() == 0


def test_the_sweeper_skips_held_finished_and_future_deliveries(endpoint, enqueued):
    past = timezone.now() - timedelta(minutes=5)
    due = WebhookDeliveryFactory(endpoint=endpoint, next_attempt_at=past)
    WebhookDeliveryFactory(endpoint=endpoint, next_attempt_at=past, status=DeliveryStatus.FAILED)
    WebhookDeliveryFactory(endpoint=endpoint, next_attempt_at=past, status="succeeded")
    WebhookDeliveryFactory(
        endpoint=endpoint, next_attempt_at=past, locked_until=timezone.now() + timedelta(minutes=1)
    )
    WebhookDeliveryFactory(endpoint=endpoint, next_attempt_at=timezone.now() + timedelta(hours=1))
    assert services.enqueue_due_deliveries() == 1
    assert enqueued == [([due.pk], None)]


# --- A day of failures ----------------------------------------------------------------------------


@pytest.fixture
def managers(clinic, admin_user, other_clinic):
    """The clinic's owner and admins, who are told; others are not."""
    owner = UserFactory(clinic=clinic, role=Role.OWNER, email="owner@clinic.test")
    UserFactory(clinic=clinic, role=Role.RECEPTIONIST, email="desk@clinic.test")
    UserFactory(clinic=clinic, role=Role.ADMIN, email="gone@clinic.test", is_active=False)
    UserFactory(clinic=other_clinic, role=Role.OWNER, email="elsewhere@clinic.test")
    return sorted([owner.email, admin_user.email])


def test_failing_for_less_than_a_day_keeps_the_endpoint(endpoint, receiver, managers):
    receiver.respond(500)
    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    services.attempt_delivery(delivery.pk)
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.failing_since is not None
    assert mail.outbox == []


def test_failing_for_a_day_disables_and_tells_the_owners(
    endpoint,
    receiver,
    managers,
    admin_api,
    enqueued,
    django_capture_on_commit_callbacks,
):
    receiver.respond(500)
    since = timezone.now() - timedelta(hours=24, minutes=1)
    type(endpoint).objects.filter(pk=endpoint.pk).update(failing_since=since)
    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    waiting = WebhookDeliveryFactory(
        endpoint=endpoint, next_attempt_at=timezone.now() + timedelta(minutes=10)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.attempt_delivery(delivery.pk) == "failed"

    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert endpoint.disabled_at is not None
    assert "HTTP 500" in endpoint.disabled_reason and "24 hours" in endpoint.disabled_reason
    assert set(
        WebhookDelivery.objects.filter(pk__in=[delivery.pk, waiting.pk]).values_list(
            "status", flat=True
        )
    ) == {DeliveryStatus.FAILED}

    (email,) = mail.outbox
    assert sorted(email.to) == managers
    assert endpoint.url in email.body and "disabled" in email.subject

    # The UI's notice.
    data = admin_api.get(f"/api/v1/admin/webhooks/{endpoint.pk}").json()["data"]
    assert data["is_active"] is False
    assert data["disabled_at"] and "HTTP 500" in data["disabled_reason"]

    # A disabled endpoint gets no new events, and is not disabled (or mailed) twice.
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            services.publish_event(
                clinic_id=endpoint.clinic_id, event_type=WebhookEvent.CALL_COMPLETED, data={}
            )
            == []
        )
        assert not services.disable_endpoint(endpoint=endpoint, reason="again")
    assert len(mail.outbox) == 1


def test_a_success_ends_the_failing_streak(endpoint, receiver):
    receiver.respond(500, 200)
    first = WebhookDeliveryFactory(endpoint=endpoint)
    services.attempt_delivery(first.pk)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None
    services.attempt_delivery(WebhookDeliveryFactory(endpoint=endpoint).pk)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.last_success_at is not None


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_deleted_during_a_try(clinic, monkeypatch):
    endpoint = WebhookEndpointFactory(clinic=clinic)
    delivery = WebhookDeliveryFactory(endpoint=endpoint)

    def send_while_deleted(delivery, endpoint, now):
        endpoint.delete()
        return services.SendResult(status_code=200)

    monkeypatch.setattr(services, "send", send_while_deleted)
    assert services.attempt_delivery(delivery.pk) == "skipped"
    assert not WebhookAttempt.objects.exists()


def test_the_send_webhooks_command(endpoint, receiver):
    WebhookDeliveryFactory(endpoint=endpoint, next_attempt_at=timezone.now() - timedelta(hours=1))
    out = StringIO()
    call_command("send_webhooks", stdout=out)
    assert out.getvalue().strip() == "1 due webhook deliveries handed over"
    assert len(receiver.requests) == 1
