"""The gather fallback: the receptionist's dialog over Twilio's ``<Gather>`` and ``<Say>``.

Used when a clinic chooses it (``Clinic.voice_mode``), when streaming is forced off or
the speech providers are down (``voice.fallback``): ``/api/v1/voice/incoming`` then
answers with ``answer_call`` directly, and Twilio can also be pointed at the entry:

- ``POST /api/v1/voice/gather`` (CallSid, From, To): logs the call
  (``channel="gather"``), greets, and listens;
- ``POST /api/v1/voice/gather/collect?turn=N`` (CallSid, SpeechResult, Confidence,
  Digits): one caller turn. Twilio's own recognizer hears the caller, ``<Say>``
  answers; keys work as in the stream (1 yes, 2 no, N the N-th option, 0 a person,
  * repeat). Silence comes through the ``<Redirect>`` after the ``<Gather>``, with no
  input: the first time the agent asks whether the caller is still there (and
  repeats its question), the second time it says goodbye and hangs up.

Between webhooks the agent lives in ``CallLog.agent_state``: ``agent.to_dict()`` plus
one key of this module's own, ``"gather"``: ``turn`` (the number the pending
``<Gather>`` posts back), ``reply`` (the TwiML last answered), ``silence``,
``prompt`` (the pending question) and ``token`` (Twilio's idempotency token).

Retries: Twilio may post the same webhook twice (a timeout, a connection override,
two regions). Each turn's action URL carries its number; the CallLog row is locked
for the whole turn (``select_for_update``, SQLite takes the write lock), so a
repeated turn, however late or concurrent, gets the stored answer again and the
agent never hears it twice: nothing is booked twice. The agent's writes go through
the clinic services inside the same transaction.

Each turn is appended to ``CallLog.turns`` (speaker, text, time, language,
confidence). A goodbye or a transfer (``<Dial>`` to ``clinic.front_desk_phone``)
finalizes the call; a caller who hangs up mid-dialog is finalized by the status
callback (``finish_hung_up``).
"""

import logging
from dataclasses import dataclass

from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from twilio.twiml.voice_response import VoiceResponse

from clinic.models import Clinic, Doctor, Language
from vaani.common.timeutils import iso_utc
from vaani.common.twilio import (
    error_response,
    required_fields,
    twilio_webhook,
    twiml_response,
)
from voice import services, twiml
from voice.agent import AgentReply, build_agent
from voice.agent.nlu import TITLES
from voice.agent.replies import say, sentences
from voice.models import FINAL_CALL_STATUSES, CallLog, CallStatus

logger = logging.getLogger(__name__)

CHANNEL = "gather"
STATE_KEY = "gather"  # this module's bookkeeping inside CallLog.agent_state
PROVIDERS = {"stt": "twilio-gather", "tts": "twilio-say"}
MAX_SILENCES = 2  # no-input turns in a row before the goodbye
MAX_HINTS = 100
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"

# The agent failed (a bug, the database): a person takes over, or a polite goodbye.
TROUBLE = {
    Language.ENGLISH: "Sorry, I'm having trouble right now.",
    Language.HINDI: "माफ़ कीजिए, अभी कुछ तकनीकी दिक्कत है।",
    Language.HINGLISH: "Maaf kijiye, abhi kuch technical dikkat hai.",
}
TROUBLE_TRANSFER = {
    Language.ENGLISH: "Let me connect you to the front desk.",
    Language.HINDI: "मैं आपको रिसेप्शन से जोड़ रही हूँ।",
    Language.HINGLISH: "Main aapko reception se jod rahi hoon.",
}
TROUBLE_GOODBYE = {
    Language.ENGLISH: "Please call again in a few minutes. Goodbye!",
    Language.HINDI: "कृपया थोड़ी देर बाद फिर से कॉल करें। नमस्ते!",
    Language.HINGLISH: "Kripya thodi der baad phir se call kijiye. Namaste!",
}


def _text(table: dict, language: str):
    return table.get(language, table[Language.ENGLISH])


# --- state ------------------------------------------------------------------------------


def _split_state(agent_state: dict | None) -> tuple[dict, dict]:
    """(the agent's own ``to_dict()``, this module's bookkeeping)."""
    state = dict(agent_state or {})
    meta = dict(state.pop(STATE_KEY, None) or {})
    return state, meta


def _is_retry(meta: dict, turn: int | None, token: str) -> bool:
    if not meta.get("reply"):
        return False
    if token and token == meta.get("token"):
        return True
    return turn is not None and turn < int(meta.get("turn") or 0)


def _turn(speaker: str, text: str, language: str, confidence: float | None = None, at=None) -> dict:
    turn = {
        "speaker": speaker,
        "text": text,
        "language": language,
        "time": iso_utc(at or timezone.now()),
    }
    if confidence is not None:
        turn["confidence"] = round(confidence, 3)
    return turn


def _pending_question(agent, reply: AgentReply) -> str:
    """What to ask again after a silence: the rules' pending question, else the reply."""
    state = getattr(agent, "state", None)
    if (
        getattr(agent, "mode", "rules") != "llm"
        and state is not None
        and getattr(state, "last_prompt", "")
        and getattr(state, "prompt_language", "") == reply.language
    ):
        return state.last_prompt
    return reply.text


# --- TwiML ------------------------------------------------------------------------------


def collect_url(turn: int) -> str:
    return f"{reverse('voice-gather-collect')}?turn={turn}"


def doctor_hints(clinic: Clinic) -> list[str]:
    """Phrases Twilio's recognizer should expect: the doctors' names, the clinic's."""
    phrases: dict[str, None] = {}
    for name in Doctor.objects.filter(clinic=clinic).values_list("name", flat=True):
        parts = [p for p in name.replace(".", " ").split() if p.lower() not in TITLES]
        phrases[name] = None
        if parts:
            phrases[" ".join(parts)] = None
            phrases[parts[-1]] = None
            phrases[f"doctor {parts[-1]}"] = None
    phrases[clinic.name] = None
    return list(phrases)[:MAX_HINTS]


def _listen(reply: AgentReply, clinic: Clinic, turn: int) -> str:
    return twiml.gather(
        reply.text,
        language=reply.language,
        action=collect_url(turn),
        hints=doctor_hints(clinic),
        num_digits=1 if len(reply.options) < 10 else None,
    )


def _answer(reply: AgentReply, clinic: Clinic, turn: int) -> tuple[str, bool]:
    """(TwiML, whether our part of the call is over)."""
    if reply.transfer:
        number = clinic.front_desk_phone
        if number:
            return twiml.dial(number, text=reply.text, language=reply.language), True
        return twiml.say_and_hang_up(reply.text, reply.language), True
    if reply.end_call:
        return twiml.say_and_hang_up(reply.text, reply.language), True
    return _listen(reply, clinic, turn), False


def _hang_up() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


# --- the call log -----------------------------------------------------------------------


def _outcome(agent, turns: list[dict]) -> services.CallOutcome:
    return services.CallOutcome(
        turns=turns,
        summary=agent.summary(),
        sentiment=agent.sentiment(),
        intents=list(agent.intents_detected),
        appointment_id=agent.appointment_created,
        patient_id=agent.patient_id,
        language=agent.language,
        providers={**PROVIDERS, "agent": getattr(agent, "kind", "rules")},
    )


def _locked(call_sid: str) -> CallLog | None:
    return CallLog.objects.select_for_update().filter(call_sid=call_sid).first()


def _agent(call_log: CallLog, state: dict | None):
    return build_agent(
        call_log.clinic, call_log.from_number, call_sid=call_log.call_sid, state=state or None
    )


# --- entry ------------------------------------------------------------------------------


@twilio_webhook
def gather_entry(request):
    """A call answered by the gather flow (Twilio's parameters as for /voice/incoming)."""
    fields = required_fields(request, "CallSid", "From", "To")
    if isinstance(fields, JsonResponse):
        return fields
    clinic = services.clinic_for_number(fields["To"])
    if clinic is None:
        logger.warning("Call %s to unknown number %s", fields["CallSid"], fields["To"])
        return twiml_response(twiml.say_and_hang_up(twiml.UNKNOWN_NUMBER))
    return answer_call(clinic, fields)


def answer_call(clinic: Clinic, fields: dict[str, str]) -> HttpResponse:
    """Logs the call, greets and listens; a retried webhook gets the same answer."""
    call_sid = fields["CallSid"]
    try:
        services.start_inbound_call(
            clinic=clinic,
            call_sid=call_sid,
            from_number=fields["From"],
            to_number=fields["To"],
            channel=CHANNEL,
        )
    except services.StreamRefused:
        return error_response(409, "CONFLICT", "This call belongs to another clinic")
    with transaction.atomic():
        call_log = _locked(call_sid)
        _state, meta = _split_state(call_log.agent_state)
        if meta.get("reply"):
            return twiml_response(meta["reply"])
        call_log.clinic = clinic
        agent = _agent(call_log, None)
        reply = agent.greet()
        body = _listen(reply, clinic, turn=1)
        meta = {"turn": 1, "reply": body, "silence": 0, "prompt": _pending_question(agent, reply)}
        call_log.agent_state = {**agent.to_dict(), STATE_KEY: meta}
        call_log.turns = [*(call_log.turns or []), _turn("agent", reply.text, reply.language)]
        fields_changed = ["agent_state", "turns", "updated_at"]
        if call_log.status not in FINAL_CALL_STATUSES:
            call_log.status = CallStatus.IN_PROGRESS
            fields_changed.append("status")
        call_log.save(update_fields=fields_changed)
    return twiml_response(body)


# --- one caller turn --------------------------------------------------------------------


@dataclass
class Heard:
    speech: str = ""
    digits: str = ""
    confidence: float | None = None

    @classmethod
    def from_request(cls, request) -> "Heard":
        raw = request.POST.get("Confidence", "").strip()
        try:
            confidence = min(float(raw), 1.0) if raw else None
        except ValueError:
            confidence = None
        if confidence is not None and not confidence > 0:
            confidence = None  # Twilio sends 0 when its model gives no score: unknown
        return cls(
            speech=request.POST.get("SpeechResult", "").strip(),
            digits=request.POST.get("Digits", "").strip(),
            confidence=confidence,
        )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@twilio_webhook
def gather_collect(request):
    """What Twilio heard (or nothing) -> the agent's reply as TwiML."""
    fields = required_fields(request, "CallSid")
    if isinstance(fields, JsonResponse):
        return fields
    call_sid = fields["CallSid"]
    heard = Heard.from_request(request)
    turn = _int(request.GET.get("turn"))
    token = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    try:
        with transaction.atomic():
            body = _collect(call_sid, heard, turn, token)
    except Exception:
        logger.exception("Call %s: gather turn failed", call_sid)
        body = _trouble(call_sid)
    return twiml_response(body)


def _collect(call_sid: str, heard: Heard, turn: int | None, token: str) -> str:
    call_log = _locked(call_sid)
    if call_log is None:
        logger.warning("Gather turn for unknown call %s", call_sid)
        return twiml.say_and_hang_up(
            sentences(TROUBLE[Language.ENGLISH], TROUBLE_GOODBYE[Language.ENGLISH])
        )
    agent_state, meta = _split_state(call_log.agent_state)
    if _is_retry(meta, turn, token):
        logger.info("Call %s: repeated gather turn %s answered again", call_sid, turn)
        return meta["reply"]
    if call_log.finalized_at is not None or meta.get("ended"):
        return _hang_up()

    clinic = call_log.clinic
    agent = _agent(call_log, agent_state)
    turns = list(call_log.turns or [])
    heard_at = timezone.now()
    if heard.digits:
        reply = agent.respond_dtmf(heard.digits)
        turns.append(_turn("patient", f"[keypad {heard.digits}]", agent.language, 1.0, heard_at))
    elif heard.speech:
        reply = agent.respond(heard.speech, confidence=heard.confidence)
        turns.append(_turn("patient", heard.speech, agent.language, heard.confidence, heard_at))
    else:
        meta["silence"] = int(meta.get("silence") or 0) + 1
        reply = _no_input(agent, meta)
    if heard.digits or heard.speech:
        meta["silence"] = 0
    turns.append(_turn("agent", reply.text, reply.language))

    next_turn = int(meta.get("turn") or 0) + 1
    body, ended = _answer(reply, clinic, next_turn)
    meta.update(turn=next_turn, reply=body, ended=ended, token=token)
    if not ended and (heard.digits or heard.speech):
        meta["prompt"] = _pending_question(agent, reply)
    call_log.agent_state = {**agent.to_dict(), STATE_KEY: meta}
    call_log.turns = turns
    call_log.save(update_fields=["agent_state", "turns", "updated_at"])
    if ended:
        services.finalize_call(call_sid=call_sid, outcome=_outcome(agent, turns))
    return body


def _no_input(agent, meta: dict) -> AgentReply:
    language = agent.language
    if meta["silence"] >= MAX_SILENCES:
        goodbye = say("no_answer_goodbye", language)
        return AgentReply(goodbye, language, end_call=True, expects="nothing")
    return AgentReply(sentences(say("still_there", language), meta.get("prompt", "")), language)


def _trouble(call_sid: str) -> str:
    """The agent failed mid-call: hand the caller to a person rather than drop them."""
    call_log = CallLog.objects.select_related("clinic").filter(call_sid=call_sid).first()
    language, number = Language.ENGLISH, ""
    if call_log is not None:
        agent_state, _meta = _split_state(call_log.agent_state)
        language = (agent_state.get("state") or {}).get("language") or language
        number = call_log.clinic.front_desk_phone
    if number:
        text = sentences(_text(TROUBLE, language), _text(TROUBLE_TRANSFER, language))
        return twiml.dial(number, text=text, language=language)
    text = sentences(_text(TROUBLE, language), _text(TROUBLE_GOODBYE, language))
    return twiml.say_and_hang_up(text, language)


# --- the caller hung up -----------------------------------------------------------------


def finish_hung_up(call_log: CallLog) -> None:
    """Status callback of a gather call that ended without our goodbye: store what the
    dialog produced (summary, appointment, turns) once, as the goodbye would have."""
    if call_log.channel != CHANNEL or call_log.status not in FINAL_CALL_STATUSES:
        return
    with transaction.atomic():
        current = _locked(call_log.call_sid)
        if current is None or current.finalized_at is not None:
            return
        agent_state, _meta = _split_state(current.agent_state)
        agent = _agent(current, agent_state)
        services.finalize_call(
            call_sid=current.call_sid, outcome=_outcome(agent, list(current.turns or []))
        )
