"""Writes for outgoing webhooks: endpoints, queued events, and the sending itself.

Delivery is at least once. An event becomes one ``WebhookDelivery`` per subscribed
endpoint, stored before anything is sent; its task is enqueued when that row has
committed. A try claims the row with a conditional UPDATE (pending, due, not held by
another worker), so a duplicated or redelivered task never sends a succeeded
delivery again. Timeouts, connection errors and non-2xx answers (redirects too: they
are not followed) are retried with exponential backoff and jitter for
``WEBHOOK_RETRY_HOURS``; short waits are task countdowns, long ones are left to the
sweeper (``enqueue_due_deliveries``, run by beat every minute), so no countdown comes
near the broker's visibility timeout. An endpoint that has failed for
``WEBHOOK_DISABLE_AFTER_HOURS`` is disabled and the clinic's owners and admins are
e-mailed; the API shows ``disabled_at`` and ``disabled_reason``.
"""

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Role, User
from vaani.common.exceptions import BookingValidationError, ConflictError, UnprocessableError
from vaani.common.timeutils import iso_utc
from webhooks import events as payloads
from webhooks import signing, ssrf
from webhooks.models import (
    CREATED_DISABLED,
    DISABLED_BY_USER,
    PING_EVENT,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

logger = logging.getLogger(__name__)

MAX_ENDPOINTS_PER_CLINIC = 20
# Backoff: the n-th failed try waits between half and all of min(CAP, BASE * 2**(n-1)),
# BASE = WEBHOOK_RETRY_BASE_SECONDS (30), CAP = WEBHOOK_RETRY_MAX_DELAY_SECONDS (3600).
# Waits up to this long are Celery countdowns; longer ones are picked up by the sweeper.
MAX_COUNTDOWN_SECONDS = 300
# The sweeper leaves a due delivery alone WEBHOOK_SWEEP_GRACE_SECONDS (30), for its
# countdown task to take it.
SWEEP_BATCH = 500
# A task may run a moment before its countdown's due time on another host's clock.
EARLY_TOLERANCE = timedelta(seconds=2)
# How much of the receiver's answer is read (for the error message only).
MAX_RESPONSE_BYTES = 1024


# --- Endpoints ---------------------------------------------------------------------------------


def _checked_url(url: str) -> str:
    try:
        return ssrf.check_url(url)
    except ssrf.UnsafeURL as exc:
        raise BookingValidationError(details={"url": str(exc)}) from None


def _refuse_duplicate_url(*, clinic, url: str, exclude_id: int | None = None) -> None:
    existing = WebhookEndpoint.objects.filter(clinic=clinic, url=url).exclude(pk=exclude_id)
    other = existing.values_list("pk", flat=True).first()
    if other is not None:
        raise ConflictError(
            "A webhook for this URL already exists",
            details={"url": url, "conflicting_webhook_id": other},
        )


def create_endpoint(
    *,
    clinic,
    url: str,
    events: list[str],
    secret: str,
    description: str = "",
    is_active: bool = True,
    created_by=None,
) -> WebhookEndpoint:
    url = _checked_url(url)
    if WebhookEndpoint.objects.filter(clinic=clinic).count() >= MAX_ENDPOINTS_PER_CLINIC:
        raise UnprocessableError(
            f"A clinic may have at most {MAX_ENDPOINTS_PER_CLINIC} webhooks",
            details={"limit": MAX_ENDPOINTS_PER_CLINIC},
        )
    _refuse_duplicate_url(clinic=clinic, url=url)
    endpoint = WebhookEndpoint(
        clinic=clinic,
        url=url,
        events=list(events),
        secret=secret,
        description=description,
        is_active=is_active,
        created_by=created_by,
    )
    if not is_active:
        endpoint.disabled_at = timezone.now()
        endpoint.disabled_reason = CREATED_DISABLED
    try:
        with transaction.atomic():
            endpoint.save()
    except IntegrityError:  # the same URL saved meanwhile
        _refuse_duplicate_url(clinic=clinic, url=url)
        raise
    return endpoint


_EDITABLE = {"url", "events", "secret", "description", "is_active"}


def update_endpoint(*, endpoint: WebhookEndpoint, changes: dict) -> WebhookEndpoint:
    unknown = set(changes) - _EDITABLE
    if unknown:
        raise BookingValidationError(
            details={name: "This field cannot be changed" for name in unknown}
        )
    if "url" in changes and changes["url"] != endpoint.url:
        changes["url"] = _checked_url(changes["url"])
        _refuse_duplicate_url(clinic=endpoint.clinic, url=changes["url"], exclude_id=endpoint.pk)
    now = timezone.now()
    with transaction.atomic():
        current = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        for field in ("url", "events", "secret", "description"):
            if field in changes:
                setattr(current, field, changes[field])
        if "is_active" in changes and changes["is_active"] != current.is_active:
            current.is_active = changes["is_active"]
            if current.is_active:  # re-enabled: a fresh start
                current.disabled_at = None
                current.disabled_reason = ""
                current.failing_since = None
            else:
                current.disabled_at = now
                current.disabled_reason = DISABLED_BY_USER
        try:
            with transaction.atomic():
                current.save()
        except IntegrityError:
            _refuse_duplicate_url(clinic=current.clinic, url=current.url, exclude_id=current.pk)
            raise
    return current


def delete_endpoint(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def disable_endpoint(
    *, endpoint: WebhookEndpoint, reason: str, now: datetime | None = None
) -> bool:
    """Stops deliveries to a failing endpoint and tells its clinic's managers (once)."""
    now = now or timezone.now()
    with transaction.atomic():
        changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
            is_active=False, disabled_at=now, disabled_reason=reason[:500], updated_at=now
        )
        if not changed:
            return False
        WebhookDelivery.objects.filter(
            endpoint_id=endpoint.pk, status=DeliveryStatus.PENDING
        ).update(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            last_error="The endpoint was disabled.",
            updated_at=now,
        )
        transaction.on_commit(lambda: notify_endpoint_disabled(endpoint.pk), robust=True)
    logger.warning("Webhook endpoint %s disabled: %s", endpoint.pk, reason)
    return True


def notify_endpoint_disabled(endpoint_id: int) -> int:
    """E-mails the clinic's owners and admins that their webhook stopped receiving."""
    endpoint = WebhookEndpoint.objects.select_related("clinic").get(pk=endpoint_id)
    recipients = list(
        User.objects.filter(clinic_id=endpoint.clinic_id, role__in=Role.MANAGERS, is_active=True)
        .exclude(email="")
        .order_by("pk")
        .values_list("email", flat=True)
    )
    if not recipients:
        return 0
    subject = f"Vaani: webhook disabled for {endpoint.clinic.name}"
    message = (
        f"Vaani stopped sending events to your webhook {endpoint.url}\n\n"
        f"Reason: {endpoint.disabled_reason}\n"
        f"Disabled at: {iso_utc(endpoint.disabled_at)}\n\n"
        "Events of the last day that it did not accept are marked failed. Fix the receiver,\n"
        "then enable the webhook again (PATCH /api/v1/admin/webhooks/"
        f'{endpoint.pk} with {{"is_active": true}}) and send a test event.\n'
    )
    return send_mail(subject, message, None, recipients)


# --- Events ---------------------------------------------------------------------------------------


def publish_event(
    *, clinic_id: int, event_type: str, data: dict, occurred_at: datetime | None = None
) -> list[WebhookDelivery]:
    """Stores one delivery per active endpoint subscribed to ``event_type``; sends on commit."""
    endpoints = [
        e
        for e in WebhookEndpoint.objects.filter(clinic_id=clinic_id, is_active=True)
        if e.subscribes_to(event_type)
    ]
    if not endpoints:
        return []
    return _store(endpoints, event_type=event_type, data=data, occurred_at=occurred_at)


def send_test_event(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A ``ping`` to this endpoint only (even a disabled one): one try, no retries."""
    (delivery,) = _store([endpoint], event_type=PING_EVENT, data=payloads.ping_data(endpoint))
    delivery.refresh_from_db()
    return delivery


def _store(
    endpoints, *, event_type: str, data: dict, occurred_at: datetime | None = None
) -> list[WebhookDelivery]:
    now = timezone.now()
    event_id = payloads.new_event_id()
    text = payloads.body(
        event_id=event_id, event_type=event_type, data=data, occurred_at=occurred_at or now
    )
    with transaction.atomic():
        deliveries = [
            WebhookDelivery.objects.create(
                clinic_id=endpoint.clinic_id,
                endpoint=endpoint,
                event_id=event_id,
                event_type=event_type,
                payload=text,
                next_attempt_at=now,
            )
            for endpoint in endpoints
        ]
        ids = [d.pk for d in deliveries]
        transaction.on_commit(lambda: enqueue(ids), robust=True)
    return deliveries


def enqueue(delivery_ids, countdown: float | None = None) -> None:
    """Hands deliveries to the workers. If the broker is down they stay pending: the
    sweeper sends them later."""
    from webhooks.tasks import deliver_webhook

    for delivery_id in delivery_ids:
        try:
            deliver_webhook.apply_async((delivery_id,), countdown=countdown)
        except Exception:
            logger.exception("Webhook delivery %s not enqueued; the sweeper will", delivery_id)


def enqueue_due_deliveries(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> int:
    """The sweeper: enqueues pending deliveries that are due and held by nobody."""
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now - sweep_grace()
        )
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    enqueue(due)
    return len(due)


# --- Sending --------------------------------------------------------------------------------------


def backoff_ceiling(attempt: int) -> float:
    """The longest wait after the ``attempt``-th failed try (the settings' doubling, capped)."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    cap = settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS
    # The cap is reached after a few tries; bounding the exponent keeps the float finite.
    doublings = min(max(attempt - 1, 0), 64)
    return min(cap, base * 2**doublings)


def backoff_delay(attempt: int) -> float:
    """Seconds to wait after the ``attempt``-th failed try: exponential, capped, jittered."""
    ceiling = backoff_ceiling(attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def sweep_grace() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_SWEEP_GRACE_SECONDS)


def max_countdown() -> float:
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    return min(MAX_COUNTDOWN_SECONDS, visibility / 2)


def retry_window() -> timedelta:
    return timedelta(hours=settings.WEBHOOK_RETRY_HOURS)


def disable_after() -> timedelta:
    return timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS)


@dataclass
class SendResult:
    status_code: int | None = None
    latency_ms: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _claim(delivery_id: int, now: datetime) -> uuid.UUID | None:
    """Takes the delivery for one try (atomic: one worker wins), or None."""
    token = uuid.uuid4()
    lease = timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 3 + 60)
    claimed = (
        WebhookDelivery.objects.filter(
            pk=delivery_id,
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now + EARLY_TOLERANCE,
        )
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .update(
            locked_until=now + lease,
            claim_token=token,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    )
    return token if claimed else None


def attempt_delivery(delivery_id: int) -> str:
    """One try at one delivery: claim, send the stored body, record what happened.

    Answers what it did: ``skipped`` (not pending, not due, or another worker has it),
    ``succeeded``, ``retrying``, ``failed``.
    """
    token = _claim(delivery_id, timezone.now())
    if token is None:
        return "skipped"
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:  # deleted with its endpoint just now
        return "skipped"
    endpoint = delivery.endpoint
    is_ping = delivery.event_type == PING_EVENT
    started_at = timezone.now()
    if not endpoint.is_active and not is_ping:
        result = SendResult(error="The endpoint is disabled.")
    else:
        result = send(delivery, endpoint, started_at)
    try:
        return _record(delivery, endpoint, token, result, started_at, retryable=not is_ping)
    except IntegrityError:
        if WebhookDelivery.objects.filter(pk=delivery_id).exists():
            raise
        return "skipped"  # the endpoint was deleted while this try was under way


def send(delivery: WebhookDelivery, endpoint: WebhookEndpoint, now: datetime) -> SendResult:
    """POSTs the stored body, signed, through the SSRF-guarded client."""
    body = delivery.body
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Vaani-Webhooks/{settings.VERSION}",
        "X-VAANI-Event": delivery.event_type,
        "X-VAANI-Delivery": str(delivery.pk),
        "X-VAANI-Attempt": str(delivery.attempts),
        **signing.signature_headers(
            secret=endpoint.secret,
            event_id=delivery.event_id,
            timestamp=int(now.timestamp()),
            body=body,
        ),
    }
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    started = time.perf_counter()
    result = SendResult()
    try:
        ssrf.parse_url(endpoint.url)
        with (
            ssrf.guarded_client(timeout) as client,
            client.stream("POST", endpoint.url, content=body, headers=headers) as response,
        ):
            result.status_code = response.status_code
            answer = _read_some(response)
            if response.is_redirect:
                where = response.headers.get("location", "")
                result.error = f"HTTP {response.status_code}: redirect to {where!r} not followed"
            elif not result.ok:
                result.error = f"HTTP {response.status_code}: {answer}".strip()
    except ssrf.UnsafeURL as exc:
        result.error = str(exc)
    except httpx.TimeoutException:
        result.error = f"Timed out after {timeout:g} seconds"
    except httpx.HTTPError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.latency_ms = round((time.perf_counter() - started) * 1000)
    result.error = result.error[:500]
    return result


def _read_some(response: httpx.Response) -> str:
    received = b""
    for chunk in response.iter_raw():
        received += chunk
        if len(received) >= MAX_RESPONSE_BYTES:
            break
    return received[:MAX_RESPONSE_BYTES].decode("utf-8", "replace")[:200]


def _record(
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    token: uuid.UUID,
    result: SendResult,
    started_at: datetime,
    *,
    retryable: bool,
) -> str:
    now = timezone.now()
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            started_at=started_at,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
            succeeded=result.ok,
        )
        mine = WebhookDelivery.objects.filter(pk=delivery.pk, claim_token=token)
        common = {
            "locked_until": None,
            "claim_token": None,
            "last_status_code": result.status_code,
            "last_error": result.error,
            "updated_at": now,
        }
        if result.ok:
            outcome = "succeeded"
            updated = mine.update(
                status=DeliveryStatus.SUCCEEDED, delivered_at=now, next_attempt_at=None, **common
            )
        elif not retryable or now >= delivery.created_at + retry_window() or not endpoint.is_active:
            outcome = "failed"
            updated = mine.update(status=DeliveryStatus.FAILED, next_attempt_at=None, **common)
        else:
            outcome = "retrying"
            delay = backoff_delay(delivery.attempts)
            updated = mine.update(next_attempt_at=now + timedelta(seconds=delay), **common)
            if updated and delay <= max_countdown():
                pk = delivery.pk
                transaction.on_commit(lambda: enqueue([pk], countdown=delay), robust=True)
        if not updated:
            logger.warning("Webhook delivery %s was taken over during its try", delivery.pk)
        if retryable and endpoint.is_active:
            if result.ok:
                _endpoint_succeeded(endpoint, now)
            elif _endpoint_failed(endpoint, started_at, now, result.error):
                outcome = "failed"  # disabling failed every pending delivery, this one too
    return outcome


def _endpoint_succeeded(endpoint: WebhookEndpoint, now: datetime) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=None, last_success_at=now, updated_at=now
    )


def _endpoint_failed(
    endpoint: WebhookEndpoint, started_at: datetime, now: datetime, error: str
) -> bool:
    """Notes the failure; disables the endpoint (True) once it has failed for long enough."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=Coalesce("failing_since", Value(started_at)),
        last_failure_at=now,
        updated_at=now,
    )
    failing_since = (
        WebhookEndpoint.objects.filter(pk=endpoint.pk).values_list("failing_since", flat=True).get()
    )
    if failing_since is None or now - failing_since < disable_after():
        return False
    hours = settings.WEBHOOK_DISABLE_AFTER_HOURS
    return disable_endpoint(
        endpoint=endpoint,
        reason=(
            f"Every delivery failed for {hours:g} hours (since {iso_utc(failing_since)}). "
            f"Last error: {error}"
        ),
        now=now,
    )
