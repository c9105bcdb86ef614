"""The life of a phone call: identify, log, attach the stream, record status, finalize.

Called by the Twilio webhooks, the Media Streams consumer, the gather fallback and
tasks alike. ``call_completed`` is sent once per call, after the final record commits.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from clinic.models import Clinic, ClinicPhoneNumber, Language, Patient
from vaani.common.phone import normalize_e164
from voice.models import FINAL_CALL_STATUSES, CallDirection, CallLog, CallStatus

# Sent with: call_log (finalized). Jobs (webhooks, analytics) attach here.
call_completed = Signal()

_STATUS_RANK = {
    CallStatus.QUEUED: 0,
    CallStatus.RINGING: 1,
    CallStatus.IN_PROGRESS: 2,
    **{status: 3 for status in FINAL_CALL_STATUSES},
}


class StreamRefused(Exception):
    """A media stream that does not belong to a live call of ours."""


def normalize_caller(number: str) -> str:
    """E.164 when it is a phone number; Twilio also sends ``anonymous`` or ``client:...``."""
    try:
        return normalize_e164(number)
    except ValidationError:
        return (number or "").strip()[:32]


def clinic_for_number(dialled: str) -> Clinic | None:
    number = normalize_caller(dialled)
    entry = ClinicPhoneNumber.objects.select_related("clinic").filter(number=number).first()
    return entry.clinic if entry else None


def patients_for_caller(clinic: Clinic, caller: str) -> list[Patient]:
    return list(Patient.objects.filter(clinic=clinic, phone=caller).order_by("name", "id"))


def caller_language(clinic: Clinic, patients: list[Patient]) -> str:
    languages = {p.language_preference for p in patients}
    return languages.pop() if len(languages) == 1 else clinic.default_language or Language.HINGLISH


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class IncomingCall:
    call_log: CallLog
    clinic: Clinic
    patients: list[Patient] = field(default_factory=list)
    language: str = Language.HINGLISH
    stream_token: str = ""


def start_inbound_call(
    *, clinic: Clinic, call_sid: str, from_number: str, to_number: str, channel: str = "stream"
) -> IncomingCall:
    """Logs the call (idempotent: Twilio retries webhooks) and issues the stream token.

    A retried webhook gets a fresh token; only the latest one opens the stream.
    """
    caller = normalize_caller(from_number)
    patients = patients_for_caller(clinic, caller)
    token = secrets.token_urlsafe(24) if channel == "stream" else ""
    with transaction.atomic():
        call_log, created = CallLog.objects.select_for_update().get_or_create(
            call_sid=call_sid,
            defaults={
                "clinic": clinic,
                "direction": CallDirection.INBOUND,
                "from_number": caller,
                "to_number": normalize_caller(to_number),
                "status": CallStatus.RINGING,
                "patient": patients[0] if len(patients) == 1 else None,
                "channel": channel,
                "started_at": timezone.now(),
            },
        )
        if call_log.clinic_id != clinic.pk:
            raise StreamRefused("Call SID belongs to another clinic")
        if not created and call_log.stream_connected_at is None:
            call_log.channel = channel
        if token and call_log.stream_connected_at is None:
            call_log.stream_token_hash = _hash_token(token)
        call_log.save(update_fields=["channel", "stream_token_hash", "updated_at"])
    return IncomingCall(
        call_log=call_log,
        clinic=clinic,
        patients=patients,
        language=caller_language(clinic, patients),
        stream_token=token,
    )


def claim_stream(*, call_sid: str, token: str) -> CallLog:
    """The stream's handshake: right token for this call, and the first socket only."""
    with transaction.atomic():
        call_log = (
            # Lock the call only: FOR UPDATE cannot reach the nullable side of a join.
            CallLog.objects.select_for_update(of=("self",))
            .select_related("clinic", "patient")
            .filter(call_sid=call_sid)
            .first()
        )
        if call_log is None or not call_log.stream_token_hash:
            raise StreamRefused("Unknown call")
        if not hmac.compare_digest(call_log.stream_token_hash, _hash_token(token or "")):
            raise StreamRefused("Bad stream token")
        if call_log.stream_connected_at is not None:
            raise StreamRefused("The call already has a stream")
        if call_log.status in FINAL_CALL_STATUSES:
            raise StreamRefused("The call has ended")
        call_log.stream_connected_at = timezone.now()
        call_log.status = CallStatus.IN_PROGRESS
        call_log.save(update_fields=["stream_connected_at", "status", "updated_at"])
    return call_log


def record_status(*, call_sid: str, status: str, duration_seconds: int | None) -> CallLog | None:
    """Twilio's status callback. Late or repeated callbacks never undo a final state."""
    if status not in _STATUS_RANK:
        raise ValidationError({"CallStatus": f"Unknown call status {status!r}"})
    with transaction.atomic():
        call_log = CallLog.objects.select_for_update().filter(call_sid=call_sid).first()
        if call_log is None:
            return None
        current_rank = _STATUS_RANK.get(call_log.status, 0)
        if call_log.status in FINAL_CALL_STATUSES or _STATUS_RANK[status] < current_rank:
            return call_log
        call_log.status = status
        fields = ["status", "updated_at"]
        if duration_seconds is not None:
            call_log.duration_seconds = duration_seconds
            fields.append("duration_seconds")
        if status in FINAL_CALL_STATUSES and call_log.ended_at is None:
            call_log.ended_at = timezone.now()
            fields.append("ended_at")
        call_log.save(update_fields=fields)
    return call_log


@dataclass
class CallOutcome:
    """What the conversation produced; the agent fills it, finalize stores it."""

    turns: list[dict] = field(default_factory=list)
    summary: str = ""
    sentiment: str = ""
    intents: list[str] = field(default_factory=list)
    appointment_id: int | None = None
    patient_id: int | None = None
    language: str = ""
    latency: dict = field(default_factory=dict)
    providers: dict = field(default_factory=dict)


def transcript_text(turns: list[dict]) -> str:
    return "\n".join(f"{t.get('speaker', '?')}: {t.get('text', '')}" for t in turns)


def finalize_call(*, call_sid: str, outcome: CallOutcome) -> CallLog | None:
    """Stores the conversation once; later calls (a second end path) change nothing."""
    with transaction.atomic():
        call_log = CallLog.objects.select_for_update().filter(call_sid=call_sid).first()
        if call_log is None or call_log.finalized_at is not None:
            return call_log
        now = timezone.now()
        call_log.turns = outcome.turns
        call_log.transcript = transcript_text(outcome.turns)
        call_log.summary = outcome.summary
        call_log.sentiment = outcome.sentiment
        call_log.intents_detected = outcome.intents
        call_log.language = outcome.language or call_log.language
        call_log.latency = outcome.latency
        call_log.providers = outcome.providers
        if outcome.appointment_id:
            call_log.appointment_created_id = outcome.appointment_id
        if outcome.patient_id:
            call_log.patient_id = outcome.patient_id
        call_log.ended_at = call_log.ended_at or now
        if call_log.status not in FINAL_CALL_STATUSES:
            call_log.status = CallStatus.COMPLETED
        if not call_log.duration_seconds and call_log.started_at:
            call_log.duration_seconds = max(int((now - call_log.started_at).total_seconds()), 0)
        call_log.finalized_at = now
        call_log.save()
        transaction.on_commit(lambda: call_completed.send(sender=CallLog, call_log=call_log))
    return call_log
