"""The LLM receptionist: an OpenAI-compatible chat model calling the same ClinicTools.

Configured by three settings (read with ``getattr`` defaults, so nothing is
required): ``LLM_BASE_URL`` (e.g. ``https://api.openai.com/v1`` or a local
vLLM/Ollama ``http://127.0.0.1:11434/v1``), ``LLM_API_KEY`` (sent as a bearer
token when set), ``LLM_MODEL``; optionally ``LLM_TIMEOUT_SECONDS`` (default 8) per
HTTP request and ``LLM_TURN_BUDGET_SECONDS`` (default 12) for a whole turn, tool
rounds included -- a caller should not wait in silence longer than that before the
rules answer. Both base URL and model must be set for the LLM to be used.

Wire format: ``POST {base}/chat/completions`` with ``model``, ``messages``,
``tools`` (``{"type": "function", "function": {name, description, parameters}}``)
and ``tool_choice: "auto"``. An assistant message with ``tool_calls`` is answered
with one ``{"role": "tool", "tool_call_id", "content"}`` message per call (JSON
text), and the model is asked again, up to ``max_rounds`` times per turn.

Falling back: any transport error, timeout, HTTP error or malformed answer
switches the call to the rule-based agent for the rest of the call, not only for
that turn -- an outage rarely lasts one turn, and two brains taking turns would
contradict each other. Both agents share one ``DialogState``, so the rules agent
knows the language, the patient and what was already booked. If the model had
already booked, moved or cancelled something in the failing turn, the agent
reads that result back instead of replaying the caller's words (no double booking).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock

import httpx
from django.conf import settings

from vaani.common.exceptions import ApiError
from voice.agent import dates, nlu, replies
from voice.agent import tools as tools_module
from voice.agent.dialog import (
    EXPECTS,
    AgentReply,
    CallReport,
    DialogState,
    RuleBasedAgent,
    _event,
)
from voice.agent.language import detect_language
from voice.pipeline.tts import split_sentences

logger = logging.getLogger(__name__)

HISTORY_LIMIT = 40  # messages kept between turns (trimmed at a user message)


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    model: str
    api_key: str = ""
    timeout: float = 8.0  # one HTTP request
    turn_budget: float = 12.0  # one caller turn, all tool rounds together
    max_rounds: int = 4
    temperature: float = 0.2

    @classmethod
    def from_settings(cls) -> LLMConfig | None:
        base_url = getattr(settings, "LLM_BASE_URL", "") or ""
        model = getattr(settings, "LLM_MODEL", "") or ""
        if not base_url or not model:
            return None
        return cls(
            base_url=base_url,
            model=model,
            api_key=getattr(settings, "LLM_API_KEY", "") or "",
            timeout=float(getattr(settings, "LLM_TIMEOUT_SECONDS", 8.0) or 8.0),
            turn_budget=float(getattr(settings, "LLM_TURN_BUDGET_SECONDS", 12.0) or 12.0),
        )


class LLMError(Exception):
    """The model could not be reached or answered nonsense."""


class ChatClient:
    """A minimal client of ``/chat/completions`` (OpenAI wire format) over httpx."""

    def __init__(self, config: LLMConfig, *, http: httpx.Client | None = None):
        self.config = config
        self._http = http

    @property
    def url(self) -> str:
        return self.config.base_url.rstrip("/") + "/chat/completions"

    def complete(
        self, messages: list[dict], tools: list[dict], *, timeout: float | None = None
    ) -> dict:
        """The assistant message of the first choice; LLMError on any failure."""
        timeout = timeout or self.config.timeout
        body = {
            "model": self.config.model,
            "messages": messages,
            "tools": tools,
            "tool_choice": "auto",
            "temperature": self.config.temperature,
        }
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        try:
            if self._http is not None:
                response = self._http.post(self.url, json=body, headers=headers, timeout=timeout)
            else:
                with httpx.Client(timeout=timeout) as http:
                    response = http.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise LLMError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise LLMError(f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            message = response.json()["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"malformed answer: {response.text[:200]}") from exc
        if not isinstance(message, dict):
            raise LLMError("malformed answer: message is not an object")
        return message


def _function(name: str, description: str, properties: dict | None = None, required=()):
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties or {},
                "required": list(required),
            },
        },
    }


_START = {
    "type": "string",
    "description": "Clinic local time, YYYY-MM-DDTHH:MM (e.g. 2031-01-16T10:00).",
}
TOOL_SPECS = [
    _function("list_doctors", "The clinic's doctors: id, name, specialization, working days."),
    _function(
        "find_patients",
        "Patients registered on the caller's phone number (families share phones).",
    ),
    _function(
        "create_patient",
        "Register a new patient on the caller's phone number. Ask the name and read it back first.",
        {
            "name": {"type": "string", "description": "Patient's full name as said."},
            "language": {"type": "string", "enum": ["en", "hi", "hi-en"]},
        },
        ["name"],
    ),
    _function(
        "check_availability",
        "Free appointment times of a doctor. With date+time: whether that exact time is "
        "free and, if not, why and the nearest free times. Only offer times returned here.",
        {
            "doctor_id": {"type": "integer"},
            "date": {"type": "string", "description": "YYYY-MM-DD, clinic local date."},
            "time": {"type": "string", "description": "HH:MM, 24-hour clinic local time."},
            "part_of_day": {"type": "string", "enum": list(dates.PERIODS)},
        },
        ["doctor_id"],
    ),
    _function(
        "book_appointment",
        "Book an appointment. Only after the caller clearly said yes to the read-back.",
        {
            "patient_id": {"type": "integer"},
            "doctor_id": {"type": "integer"},
            "start": _START,
            "reason": {"type": "string"},
        },
        ["patient_id", "doctor_id", "start"],
    ),
    _function("list_appointments", "Upcoming appointments of the patients on this phone."),
    _function(
        "reschedule_appointment",
        "Move an appointment to a new time (optionally another doctor), after a clear yes.",
        {
            "appointment_id": {"type": "integer"},
            "start": _START,
            "doctor_id": {"type": "integer"},
        },
        ["appointment_id", "start"],
    ),
    _function(
        "cancel_appointment",
        "Cancel an appointment, after a clear yes.",
        {"appointment_id": {"type": "integer"}, "reason": {"type": "string"}},
        ["appointment_id"],
    ),
    _function(
        "clinic_information",
        "Clinic facts: hours, address, fees, doctors and anything else the clinic recorded.",
        {"topic": {"type": "string", "description": "hours, address, fees, doctors, or other"}},
    ),
    _function(
        "parse_date",
        "Resolve a spoken date/time ('kal subah 10 baje', 'next Monday', '25 tarikh') "
        "to a clinic-local date and time.",
        {"expression": {"type": "string"}},
        ["expression"],
    ),
    _function(
        "transfer_to_human",
        "Hand the call to the front desk: when the caller asks for a person, or you cannot help.",
        {"reason": {"type": "string"}},
    ),
    _function("end_call", "End the call after saying goodbye, when the caller is done."),
]


class LLMAgent(CallReport):
    """Same interface as ``RuleBasedAgent``; the model decides, ``ClinicTools`` acts."""

    kind = "llm"

    def __init__(
        self,
        tools: tools_module.ClinicTools,
        config: LLMConfig,
        *,
        state: DialogState | None = None,
        messages: list[dict] | None = None,
        mode: str = "llm",
        client: ChatClient | None = None,
        channel: str = "voice",
    ):
        self.tools = tools
        self.config = config
        self.client = client or ChatClient(config)
        self.rules = RuleBasedAgent(tools, state, channel=channel)
        self.state = self.rules.state  # one state for both brains
        self.messages: list[dict] = list(messages or [])
        self.mode = mode
        self._writes: list[tuple[str, tools_module.ActionResult]] = []
        self._transfer = self._end = False

    # --- persistence and call-log facts -------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "mode": self.mode,
            "state": self.state.to_dict(),
            "messages": self.messages[-HISTORY_LIMIT:],
        }

    @classmethod
    def from_dict(cls, tools, data: dict, config: LLMConfig, **kwargs) -> LLMAgent:
        return cls(
            tools,
            config,
            state=DialogState.from_dict(data.get("state")),
            messages=data.get("messages") or [],
            mode=data.get("mode", "llm"),
            **kwargs,
        )

    # --- turns ------------------------------------------------------------------------

    def greet(self) -> AgentReply:
        """The greeting is a template: the first words come at once, without a model call."""
        reply = self.rules.greet()
        self.messages.append({"role": "assistant", "content": reply.text})
        return reply

    def respond(self, text: str, *, confidence: float | None = None) -> AgentReply:
        if self.mode != "llm" or self.state.ended:
            return self.rules.respond(text, confidence=confidence)
        self._listen(text)
        content = text
        if confidence is not None and confidence < 0.4:
            content = f"{text}\n(Speech recognition was unsure; confirm before acting.)"
        return self._turn(content, lambda: self.rules.respond(text, confidence=confidence))

    def respond_dtmf(self, digits: str) -> AgentReply:
        if self.mode != "llm" or self.state.ended:
            return self.rules.respond_dtmf(digits)
        self.state.turns += 1
        content = f"(The caller pressed {digits} on the phone keypad.)"
        return self._turn(content, lambda: self.rules.respond_dtmf(digits))

    def _listen(self, text: str) -> None:
        """Bookkeeping the call log needs, from the caller's own words."""
        s = self.state
        s.turns += 1
        u = nlu.understand(
            text or "", now=self.tools.now(), tz=self.tools.tz, doctors=self.rules._doctors()
        )
        self.rules._hear_language(u.language)
        s.mood += u.mood
        for intent in u.intents:
            self.rules._note_intent(intent)

    def _turn(self, content: str, fallback) -> AgentReply:
        self.messages.append({"role": "user", "content": content})
        self._writes = []
        self._transfer = self._end = False
        try:
            return self._run()
        except LLMError as exc:
            logger.warning("LLM failed, the rule-based agent takes over the call: %s", exc)
            self.mode = "rules"
            if self._writes:
                return self._read_back_writes()
            return fallback()

    def _run(self) -> AgentReply:
        deadline = time.monotonic() + self.config.turn_budget
        for _ in range(self.config.max_rounds):
            remaining = deadline - time.monotonic()
            if remaining < 0.05:
                raise LLMError("the turn's time budget is spent")
            message = self.client.complete(
                self._payload(), TOOL_SPECS, timeout=min(self.config.timeout, remaining)
            )
            calls = message.get("tool_calls") or []
            if not isinstance(calls, list):
                raise LLMError("malformed tool_calls")
            entry = {"role": "assistant", "content": message.get("content")}
            if calls:
                entry["tool_calls"] = calls
            self.messages.append(entry)
            if not calls:
                text = (message.get("content") or "").strip()
                if not text:
                    raise LLMError("empty answer")
                return self._finish(text)
            for call in calls:
                result = self._call(call)
                self.messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": call.get("id", ""),
                        "content": json.dumps(result, ensure_ascii=False),
                    }
                )
        raise LLMError("no answer after the maximum number of tool rounds")

    def _finish(self, text: str) -> AgentReply:
        s = self.state
        guess = detect_language(text).language or s.language
        if self._transfer:
            return AgentReply(text, guess, transfer=True, expects=EXPECTS["done"])
        if self._end:
            return AgentReply(text, guess, end_call=True, expects=EXPECTS["done"])
        # Only a new caller is asked a name to register (a family phone's patients
        # are chosen among names the name search may not hold).
        new_caller = s.patient_id is None and not self.tools.caller_patients()
        expects = "name" if new_caller and _asks_for_a_name(text) else "intent"
        return AgentReply(text, guess, expects=expects)

    def _read_back_writes(self) -> AgentReply:
        lang = self.state.language
        now, tz = self.tools.now(), self.tools.tz
        parts = []
        for kind, result in self._writes:
            a = result.appointment
            when = replies.speak_when(a.start, lang, now=now, tz=tz, preposition=kind != "book")
            if kind == "book":
                parts.append(
                    replies.say(
                        "booked",
                        lang,
                        patient=a.patient_name,
                        doctor=a.doctor_name,
                        when=when,
                        id=a.id,
                    )
                )
            elif kind == "reschedule":
                parts.append(replies.say("rescheduled", lang, doctor=a.doctor_name, new=when))
            else:
                item = replies.say(
                    "appointment_item",
                    lang,
                    patient=a.patient_name,
                    doctor=a.doctor_name,
                    when=when,
                )
                parts.append(replies.say("cancelled", lang, item=item))
        return self.rules._anything_else(prefix=replies.sentences(*parts))

    # --- the model's view ---------------------------------------------------------------

    def _payload(self) -> list[dict]:
        history = self.messages[-HISTORY_LIMIT:]
        while history and history[0].get("role") == "tool":
            history = history[1:]  # never start with a tool answer cut from its call
        return [{"role": "system", "content": self._system_prompt()}, *history]

    def _system_prompt(self) -> str:
        tools = self.tools
        local = tools.now().astimezone(tools.tz)
        patients = tools.caller_patients()
        known = (
            "; ".join(f"id {p.id}: {p.name} (language {p.language})" for p in patients)
            if patients
            else "none (a new caller: ask the patient's name, then create_patient)"
        )
        doctors = "; ".join(
            f"id {d.id}: {d.name}, {d.specialization or 'doctor'}"
            + ("" if d.available else " (not taking appointments)")
            for d in tools.doctors()
        )
        language = {"en": "English", "hi": "Hindi in Devanagari", "hi-en": "romanised Hinglish"}
        return (
            f"You are Vaani, the friendly phone receptionist of {tools.clinic.name}, an Indian "
            f"clinic. Now: {local:%A %Y-%m-%d %H:%M} ({tools.clinic.time_zone}); all dates "
            "and times you send or read are clinic local time.\n"
            f"Patients on the caller's phone: {known}.\nDoctors: {doctors}.\n"
            "Rules:\n"
            "- Answer in the caller's language and script: Devanagari Hindi to Devanagari, "
            "romanised Hinglish to romanised Hindi or Hinglish, English to English. "
            f"The caller currently speaks {language.get(self.state.language, 'Hinglish')}.\n"
            "- This is a phone call: one or two short spoken sentences, no lists, no markdown. "
            "Read times naturally ('kal subah 10 baje', 'tomorrow at 10 am').\n"
            "- Offer only times returned by check_availability; never invent a slot.\n"
            "- Before book_appointment, reschedule_appointment or cancel_appointment, read the "
            "details back and wait for a clear yes.\n"
            "- 'kal' means tomorrow when booking; use parse_date when unsure of a date.\n"
            "- Several patients on the phone: ask whom the appointment is for. Unknown caller: "
            "ask the name, read it back ('I have the name as ...; is that right?'), and only "
            "after a yes call create_patient, before booking.\n"
            "- Caller asks for a person, human, receptionist or operator, or you cannot help "
            "after a few tries: call transfer_to_human and say you are connecting them.\n"
            "- Caller is done ('bas', 'that's all', 'dhanyavaad', 'bye'): say goodbye and call "
            "end_call.\n"
            "- Keypad: 1 = yes, 2 = no, N = the N-th option you listed, 0 = a person."
        )

    # --- tools --------------------------------------------------------------------------

    def _call(self, call: dict) -> dict:
        function = call.get("function") or {}
        name = function.get("name", "")
        try:
            arguments = json.loads(function.get("arguments") or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("arguments must be an object")
        except ValueError as exc:
            return {"ok": False, "error": f"arguments are not a JSON object: {exc}"}
        handler = getattr(self, f"_tool_{name}", None)
        if handler is None:
            return {"ok": False, "error": f"unknown tool {name!r}"}
        try:
            return handler(**arguments)
        except TypeError as exc:
            return {"ok": False, "error": f"bad arguments for {name}: {exc}"}
        except (ValueError, ApiError) as exc:  # a bad date, an unknown doctor id...
            return {"ok": False, "error": str(exc)}
        except Exception:  # a bug in one tool must not drop a live call
            logger.exception("Agent tool %s failed", name)
            return {"ok": False, "error": "internal error; apologise and offer a person"}

    def _local(self, value: datetime) -> str:
        return value.astimezone(self.tools.tz).strftime("%Y-%m-%dT%H:%M")

    def _slot(self, value: datetime) -> dict:
        spoken = replies.speak_when(
            value, self.state.language, now=self.tools.now(), tz=self.tools.tz
        )
        return {"start": self._local(value), "spoken": spoken}

    def _parse_start(self, value: str) -> datetime:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.tools.tz)
        return moment

    def _appointment(self, a: tools_module.AppointmentInfo) -> dict:
        return {
            "appointment_id": a.id,
            "patient_id": a.patient_id,
            "patient": a.patient_name,
            "doctor_id": a.doctor_id,
            "doctor": a.doctor_name,
            **self._slot(a.start),
            "status": a.status,
        }

    def _action(self, kind: str, result: tools_module.ActionResult) -> dict:
        if result.ok:
            self._writes.append((kind, result))
            return {"ok": True, "appointment": self._appointment(result.appointment)}
        return {
            "ok": False,
            "problem": result.problem,
            "message": result.message,
            "alternatives": [self._slot(s) for s in result.alternatives],
        }

    def _tool_list_doctors(self) -> dict:
        out = []
        for d in self.tools.doctors():
            days, opens, closes = self.tools.working_week(d.id)
            out.append(
                {
                    "doctor_id": d.id,
                    "name": d.name,
                    "specialization": d.specialization,
                    "taking_appointments": d.available,
                    "usual_hours": replies.speak_hours(days, opens, closes, "en") if days else "",
                }
            )
        return {"doctors": out}

    def _tool_find_patients(self) -> dict:
        return {"patients": [tools_module.as_json(p) for p in self.tools.caller_patients()]}

    def _tool_create_patient(self, name: str, language: str | None = None) -> dict:
        patient = self.tools.create_patient(name, language or self.state.language)
        self.rules._set_patient(patient.id, patient.name)
        self.state.events.append(
            {"type": "patient_created", "patient_id": patient.id, "name": patient.name}
        )
        return {"ok": True, "patient": tools_module.as_json(patient)}

    def _tool_check_availability(
        self, doctor_id, date: str | None = None, time: str | None = None, part_of_day=None
    ) -> dict:
        self.rules._note_intent(nlu.AVAILABILITY)
        search = self.tools.search_slots(
            doctor_id,
            day=_parse_date(date),
            at=_parse_time(time),
            period=part_of_day if part_of_day in dates.PERIODS else None,
        )
        return {
            "doctor": {"doctor_id": search.doctor.id, "name": search.doctor.name},
            "date": search.day.isoformat() if search.day else None,
            "requested": self._slot(search.requested) if search.requested else None,
            "requested_is_free": search.exact_free,
            "problem": search.problem,
            "free_times": [self._slot(s) for s in search.slots],
        }

    def _tool_book_appointment(self, patient_id, doctor_id, start, reason: str = "") -> dict:
        result = self.tools.book(patient_id, doctor_id, self._parse_start(start), reason=reason)
        if result.ok:
            a = result.appointment
            self.state.appointment_created = a.id
            self.state.events.append(_event("booked", a))
            self.rules._note_intent(nlu.BOOK)
            self.rules._set_patient(a.patient_id, a.patient_name)
        return self._action("book", result)

    def _tool_list_appointments(self) -> dict:
        return {"appointments": [self._appointment(a) for a in self.tools.upcoming_appointments()]}

    def _tool_reschedule_appointment(self, appointment_id, start, doctor_id=None) -> dict:
        old = next(
            (a for a in self.tools.upcoming_appointments() if a.id == int(appointment_id)), None
        )
        result = self.tools.reschedule(
            appointment_id, self._parse_start(start), doctor_id=doctor_id
        )
        if result.ok:
            a = result.appointment
            self.state.events.append(_event("rescheduled", a, old_start=old.start if old else None))
            self.rules._note_intent(nlu.RESCHEDULE)
            self.rules._set_patient(a.patient_id, a.patient_name)
        return self._action("reschedule", result)

    def _tool_cancel_appointment(self, appointment_id, reason: str = "") -> dict:
        result = self.tools.cancel(appointment_id, reason)
        if result.ok:
            self.state.events.append(_event("cancelled", result.appointment))
            self.rules._note_intent(nlu.CANCEL)
        return self._action("cancel", result)

    def _tool_clinic_information(self, topic: str | None = None) -> dict:
        info = self.tools.clinic_info()
        self.rules._note_intent(nlu.INFO)
        self.state.events.append({"type": "info", "topics": [topic or "general"]})
        days = info.open_days
        derived = (
            replies.speak_hours(days, info.opens, info.closes, "en") if days and info.opens else ""
        )
        return {
            "name": info.name,
            "address": info.address,
            "hours": info.hours or derived,
            "fees": info.fees,
            "other": info.facts,
            "doctors": [{"name": d.name, "specialization": d.specialization} for d in info.doctors],
        }

    def _tool_parse_date(self, expression: str) -> dict:
        when = dates.parse_when(expression, self.tools.now(), self.tools.tz)
        return {"understood": not when.empty, **when.to_dict()}

    def _tool_transfer_to_human(self, reason: str = "") -> dict:
        if not self.tools.transfer_number():
            return {"ok": False, "error": "Nobody is at the front desk; keep helping the caller."}
        self._transfer = True
        self.state.transferred = True
        self.rules._note_intent(nlu.TRANSFER)
        self.state.events.append({"type": "transfer", "reason": "requested"})
        return {"ok": True}

    def _tool_end_call(self) -> dict:
        self._end = True
        self.state.ended = True
        self.state.events.append({"type": "goodbye"})
        return {"ok": True}


# "May I have your name?", "aapka naam kya hai?", "आपका नाम क्या है?", and the
# read-back "I have the name as Meera Nair. Is that right?" (yes and no are in the
# name search too).
_NAME_WORD = re.compile(r"\b(name|naam)\b|नाम", re.IGNORECASE)


def _asks_for_a_name(text: str) -> bool:
    """Whether the model's reply ends with a question about the caller's name.

    The model says what it asks only in words, so this is read from them: the
    recogniser then listens with the name search (``expects="name"``) for the answer,
    as it does when the rules agent asks.  The question, or the sentence before it
    (a read-back), must speak of a name.
    """
    sentences = split_sentences(text)  # the sentences the voice will say
    return (
        bool(sentences)
        and sentences[-1].endswith("?")
        and any(_NAME_WORD.search(t) for t in sentences[-2:])
    )


def _parse_date(value) -> date | None:
    return date.fromisoformat(str(value)) if value else None


def _parse_time(value) -> clock | None:
    return clock.fromisoformat(str(value)) if value else None
