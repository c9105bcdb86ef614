"""The rule-based receptionist: a small state machine over ``nlu`` and ``ClinicTools``.

It works with no model and no network, answers in the caller's language, and
never invents a slot: every time it offers comes from ``ClinicTools.search_slots``
and every booking goes through the clinic services, after the caller said yes.

The state (``DialogState``) is a plain dataclass of ids, ISO strings and lists,
so a session survives between two Twilio ``<Gather>`` webhooks
(``agent.to_dict()`` / ``RuleBasedAgent.from_dict()``) and the same agent serves a
text chat.

The dialog, in the order a receptionist would go:

1. what the caller wants (book, move, cancel, availability, clinic facts, a person);
2. for a booking: the doctor, then a free time (the one asked for, or the nearest
   ones), then who the patient is -- asked last, so nobody gives a name for a
   slot that does not exist; on the phone a new name is read back before it is
   stored -- then "shall I book it?";
3. for a change or cancellation: which appointment (of the patients on this
   phone), the new time, then "shall I?";
4. "anything else?", and goodbye.

Questions about the clinic can be asked at any point; the agent answers and
repeats its pending question. Three turns in a row it cannot use send the
caller to the front desk.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, datetime, time

from voice.agent import nlu, replies
from voice.agent import tools as tools_module
from voice.agent.dates import in_period
from voice.agent.language import EN, HI, HINGLISH, LanguageGuess, similar
from voice.agent.nlu import Understanding
from voice.agent.replies import say, sentences, speak_day, speak_slots, speak_when

logger = logging.getLogger(__name__)

LOW_CONFIDENCE = 0.4  # recogniser confidence below which a "yes" is asked again
MAX_MISUNDERSTOOD = 3  # turns in a row not understood before going to a person
MAX_NAME_ATTEMPTS = 2  # a heard name the caller rejects this often goes to a person

# Stages: what the last question was.
INTENT, PATIENT, NAME, DOCTOR, WHEN, SLOT = "intent", "patient", "name", "doctor", "when", "slot"
NAME_CHECK = "name_check"  # "I heard the name X, is that right?" (phone only)
CONFIRM, APPOINTMENT, MORE, DONE = "confirm", "appointment", "more", "done"
BOOK, RESCHEDULE, CANCEL = "book", "reschedule", "cancel"

# What the telephony/chat layer should listen for after a reply.
EXPECTS = {
    INTENT: "intent",
    PATIENT: "choice",
    NAME: "name",
    # yes / no, or the name once more: the recogniser listens as for a name
    NAME_CHECK: "name",
    DOCTOR: "choice",
    WHEN: "date_time",
    SLOT: "choice",
    CONFIRM: "yes_no",
    APPOINTMENT: "choice",
    MORE: "yes_no",
    DONE: "nothing",
}


@dataclass
class AgentReply:
    """One turn of the agent: what to say, in which language, and what happens next.

    ``expects`` is one of intent, yes_no, choice, name, date_time, nothing: the phone
    layer gathers DTMF for yes_no/choice, the chat shows ``options`` as buttons.
    """

    text: str
    language: str
    end_call: bool = False
    transfer: bool = False
    expects: str = "intent"
    options: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DialogState:
    language: str = HINGLISH
    language_heard: bool = False  # the language came from the caller, not a default
    stage: str = INTENT
    task: str | None = None  # book | reschedule | cancel
    patient_id: int | None = None
    patient_name: str = ""
    new_patient: bool = False  # "someone else": ask a name even if the phone is known
    pending_name: str = ""  # a new patient's name said before the agent asked for it
    heard_name: str = ""  # a new patient's name read back, awaiting the caller's yes
    name_attempts: int = 0  # read-backs of a name the caller said were wrong
    doctor_id: int | None = None
    doctor_candidates: list[int] = field(default_factory=list)
    any_doctor: bool = False
    day: str | None = None  # ISO local date
    at: str | None = None  # "HH:MM" local
    period: str | None = None
    choices: list = field(default_factory=list)  # what the numbers of the last menu mean
    pending_start: str | None = None  # ISO UTC start awaiting the caller's yes
    appointment_id: int | None = None  # the appointment being moved or cancelled
    offer: str | None = None  # what a bare "yes" accepts at "anything else?"
    misunderstood: int = 0
    misunderstood_total: int = 0
    intents_detected: list[str] = field(default_factory=list)
    appointment_created: int | None = None
    events: list[dict] = field(default_factory=list)
    mood: int = 0
    last_prompt: str = ""
    prompt_language: str = ""  # the language last_prompt was said in
    last_options: list[str] = field(default_factory=list)
    turns: int = 0
    ended: bool = False
    transferred: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> DialogState:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class CallReport:
    """What both brains report for the call log, read off the shared ``DialogState``."""

    state: DialogState
    tools: object

    @property
    def language(self) -> str:
        return self.state.language

    @property
    def expects(self) -> str:
        """What the open question asks for (see ``AgentReply.expects``)."""
        return EXPECTS.get(self.state.stage, "intent")

    @property
    def intents_detected(self) -> list[str]:
        return list(self.state.intents_detected)

    @property
    def appointment_created(self) -> int | None:
        return self.state.appointment_created

    @property
    def patient_id(self) -> int | None:
        return self.state.patient_id

    def summary(self) -> str:
        return summarize(self.state, self.tools.tz)

    def sentiment(self) -> str:
        return guess_sentiment(self.state)


class RuleBasedAgent(CallReport):
    """The deterministic receptionist. ``channel`` "voice" adds keypad hints to menus."""

    kind = "rules"

    def __init__(
        self,
        tools: tools_module.ClinicTools,
        state: DialogState | None = None,
        *,
        channel: str = "voice",
    ):
        self.tools = tools
        self.state = state or DialogState()
        self.channel = channel
        self._doctor_cache: list[tools_module.DoctorInfo] | None = None

    # --- persistence and call-log facts -------------------------------------------------

    def to_dict(self) -> dict:
        return {"kind": self.kind, "state": self.state.to_dict()}

    @classmethod
    def from_dict(cls, tools, data: dict, *, channel: str = "voice") -> RuleBasedAgent:
        return cls(tools, DialogState.from_dict(data.get("state", data)), channel=channel)

    # --- turns ------------------------------------------------------------------------

    def greet(self) -> AgentReply:
        s = self.state
        # Every first turn matches the caller's words against the doctors: load them
        # now, while the greeting plays, not after the caller has spoken.
        self._doctors()
        patients = self.tools.caller_patients()
        clinic = self.tools.clinic.name
        if len(patients) == 1:
            patient = patients[0]
            s.patient_id, s.patient_name = patient.id, patient.name
            if not s.language_heard:
                s.language = replies.lang_or_default(patient.language)
            text = say("greet_known", s.language, name=patient.name.split()[0], clinic=clinic)
        else:
            if not s.language_heard:
                s.language = replies.lang_or_default(self.tools.clinic.default_language)
            text = say("greet", s.language, clinic=clinic)
        return self._ask(text, INTENT)

    def respond(self, text: str, *, confidence: float | None = None) -> AgentReply:
        """The reply to what the caller said (recognised speech or typed chat)."""
        s = self.state
        if s.ended:
            return self._goodbye()
        s.turns += 1
        u = nlu.understand(
            text or "",
            now=self.tools.now(),
            tz=self.tools.tz,
            doctors=self._doctors(),
            info_keys=list((self.tools.clinic.information or {}).keys()),
            expecting_name=s.stage in (NAME, NAME_CHECK),
        )
        if u.language_request:
            s.language, s.language_heard = u.language_request, True
            if s.patient_id is not None:
                self.tools.set_language(s.patient_id, s.language)
        else:
            self._hear_language(u.language)
        s.mood += u.mood
        for intent in u.intents:
            if intent in (nlu.INFO, nlu.TRANSFER, nlu.AVAILABILITY, nlu.CHECK):
                self._note_intent(intent)
        if u.empty:
            return self._misunderstood(heard=False)
        low = confidence is not None and confidence < LOW_CONFIDENCE
        return self._handle(u, low=low)

    def respond_dtmf(self, digits: str) -> AgentReply:
        """Keypad: 1 yes / 2 no at a question, N picks the N-th option of a menu,
        0 asks for a person, * repeats the question."""
        s = self.state
        if s.ended:
            return self._goodbye()
        s.turns += 1
        digits = (digits or "").strip()
        if digits == "0":
            self._note_intent(nlu.TRANSFER)
            return self._transfer()
        if digits in ("*", "#", "**"):
            return self._repeat()
        if not digits.isdigit():
            return self._misunderstood(heard=digits != "")
        u = Understanding(text=digits, tokens=[], language=LanguageGuess(None))
        if s.stage in (CONFIRM, MORE, NAME_CHECK):
            if digits not in ("1", "2"):
                return self._misunderstood()
            u.yes = digits == "1"
        elif s.stage in (PATIENT, DOCTOR, SLOT, APPOINTMENT):
            u.choice = int(digits)
        else:
            return self._misunderstood()
        return self._handle(u, low=False)

    def _handle(self, u: Understanding, *, low: bool) -> AgentReply:
        s = self.state
        if u.transfer:
            return self._transfer()
        if u.repeat and not (u.intents or u.yes is not None or not u.when.empty):
            return self._repeat()
        handler = {
            INTENT: self._on_intent,
            MORE: self._on_more,
            PATIENT: self._on_patient,
            NAME: self._on_name,
            NAME_CHECK: self._on_name_check,
            DOCTOR: self._on_doctor,
            WHEN: self._on_when,
            SLOT: self._on_slot,
            CONFIRM: self._on_confirm,
            APPOINTMENT: self._on_appointment,
        }.get(s.stage, self._on_intent)
        confused_before = s.misunderstood_total
        reply = handler(u, low)
        if reply is None:
            return self._misunderstood(low=low)
        if not reply.transfer and s.misunderstood_total == confused_before:
            s.misunderstood = 0  # understood: the count is of turns in a row
        return reply

    # --- stage handlers (None = not understood) ----------------------------------------

    def _on_intent(self, u: Understanding, low: bool) -> AgentReply | None:
        reply = self._general(u)
        if reply is None and u.yes is True and self.state.offer == BOOK:
            return self._start_booking(u)
        if reply is None and u.yes is False and self.state.offer:
            return self._anything_else()
        return reply

    def _on_more(self, u: Understanding, low: bool) -> AgentReply | None:
        s = self.state
        if not u.task_intents and not u.info_topics and not u.doctor_ids:
            if u.yes is False or u.goodbye or u.thanks:
                return self._goodbye()
            if u.yes is True:
                if s.offer == BOOK:
                    return self._start_booking(u)
                s.offer = None
                return self._ask(say("how_help", s.language), INTENT)
        return self._general(u)

    def _on_patient(self, u: Understanding, low: bool) -> AgentReply | None:
        s = self.state
        patients = self.tools.caller_patients()
        if u.someone_else or (u.choice is not None and u.choice == len(s.choices) + 1):
            s.new_patient = True
            return self._ask(say("ask_name", s.language), NAME)
        index = self._index(u, len(s.choices))
        if index is not None:
            return self._set_patient_and_go(s.choices[index])
        matched = nlu.match_names(u.tokens, [(p.id, p.name) for p in patients], strict=True)
        if len(matched) == 1:
            return self._set_patient_and_go(matched[0])
        if not matched and u.when.empty and _may_be_a_name(u):
            name = nlu.extract_name(u.tokens, expecting=True)
            if name:  # a name not on this phone yet: a new family member
                return self._take_name(name)
        return self._general(u)

    def _on_name(self, u: Understanding, low: bool) -> AgentReply | None:
        name = u.name or u.bare_name
        if name and _may_be_a_name(u):
            return self._take_name(name)
        return self._general(u)

    def _on_name_check(self, u: Understanding, low: bool) -> AgentReply | None:
        s = self.state
        said = u.name or u.bare_name
        said = said if said and _may_be_a_name(u) else None
        if u.yes is True and (said is None or _same_name(said, s.heard_name)):
            heard, s.heard_name, s.name_attempts = s.heard_name, "", 0
            return self._new_patient(heard)
        if u.yes is None and said is None:
            return self._general(u)
        s.name_attempts += 1  # "no", "no, it is Meera Nair", or just the name again
        if s.name_attempts >= MAX_NAME_ATTEMPTS:
            return self._name_not_confirmed(said or s.heard_name)
        if said is not None and not _same_name(said, s.heard_name):
            return self._take_name(said)
        s.heard_name = ""
        return self._ask(say("ask_name_slowly", s.language), NAME)

    def _on_doctor(self, u: Understanding, low: bool) -> AgentReply | None:
        s = self.state
        index = self._index(u, len(s.choices))
        if index is not None:
            s.doctor_id, s.doctor_candidates = s.choices[index], []
        elif u.doctor_ids:
            among = [d for d in u.doctor_ids if d in s.choices] or u.doctor_ids
            if len(among) == 1:
                s.doctor_id, s.doctor_candidates = among[0], []
            else:
                s.doctor_candidates = among
        elif u.any_doctor:
            s.any_doctor = True
        elif u.unknown_doctor and not u.task_intents:
            return self._ask_doctor(prefix=say("unknown_doctor", s.language, name=u.unknown_doctor))
        else:
            return self._general(u)
        self._absorb_when(u)
        return self._advance()

    def _on_when(self, u: Understanding, low: bool) -> AgentReply | None:
        s = self.state
        if _switches(u, s.task):
            return self._general(u)
        self._take_bare_hour(u)
        if not u.when.empty or u.doctor_ids or u.choice == 1 or u.any_doctor:
            self._absorb(u)
            return self._advance_task()
        return self._general(u)

    def _on_slot(self, u: Understanding, low: bool) -> AgentReply | None:
        s = self.state
        slots = [_dt(v) for v in s.choices]
        index = self._index(u, len(slots))
        if index is None:
            self._take_bare_hour(u)
        if index is None and u.when.time is not None:
            local = [slot.astimezone(self.tools.tz) for slot in slots]
            same = [
                i
                for i, moment in enumerate(local)
                if moment.time() == u.when.time and u.when.day in (None, moment.date())
            ]
            index = same[0] if same else None
        if index is None and u.when.period and u.when.day is None and u.when.time is None:
            within = [i for i, slot in enumerate(slots) if _in_period(slot, u.when.period, self)]
            if len(within) == 1:
                index = within[0]
        if index is not None:
            s.pending_start = slots[index].isoformat()
            return self._advance_task()
        if _switches(u, s.task):
            return self._general(u)
        if not u.when.empty or u.doctor_ids or u.any_doctor:
            self._absorb(u)
            return self._advance_task()
        if u.yes is True and slots:
            s.pending_start = slots[0].isoformat()
            return self._advance_task()
        if u.yes is False:
            return self._ask(say("ask_other_time", s.language), WHEN)
        return self._general(u)

    def _on_confirm(self, u: Understanding, low: bool) -> AgentReply | None:
        s = self.state
        switching = [t for t in _task_names(u.task_intents) if t != s.task]
        if s.task == BOOK and switching == [CANCEL] and u.yes is False:
            switching = []  # "no, cancel it": do not book
        if u.yes is True and not switching:
            if low:
                return self._reprompt(
                    prefix=say("unclear_line", s.language), suffix=say("dtmf_yes_no", s.language)
                )
            return self._commit(then_goodbye=u.goodbye)
        if switching:
            return self._general(u)
        if s.task in (BOOK, RESCHEDULE):
            self._take_bare_hour(u)
        changed = not u.when.empty or bool(u.doctor_ids)
        if s.task in (BOOK, RESCHEDULE) and changed:
            self._absorb(u)
            return self._advance_task()
        if u.yes is False:
            if u.goodbye:
                return self._goodbye()
            if s.task == CANCEL:
                self._reset_task()
                return self._anything_else(prefix=say("not_cancelled", s.language))
            s.pending_start = None
            return self._ask(
                say("ask_other_time", s.language),
                WHEN,
                prefix=say("not_booked", s.language) if s.task == BOOK else "",
            )
        return self._general(u)

    def _on_appointment(self, u: Understanding, low: bool) -> AgentReply | None:
        s = self.state
        appointments = {a.id: a for a in self.tools.upcoming_appointments()}
        options = [appointments[i] for i in s.choices if i in appointments]
        index = self._index(u, len(options))
        chosen = options[index] if index is not None else None
        if chosen is None:
            narrowed = self._narrow(options, u)
            if len(narrowed) == 1 and len(narrowed) < len(options):
                chosen = narrowed[0]
        if chosen is not None:
            s.appointment_id = chosen.id
            self._set_patient(chosen.patient_id, chosen.patient_name)
            return self._advance_task()
        return self._general(u)

    # --- general: a new request, a question, goodbye -----------------------------------

    def _general(self, u: Understanding) -> AgentReply | None:
        s = self.state
        tasks = u.task_intents
        info = self._info_text(u.info_topics) if u.info_topics else ""
        if u.goodbye and not tasks:
            return self._goodbye(prefix=info)
        if nlu.CANCEL in tasks:
            return self._start_change(CANCEL, u, prefix=info)
        if nlu.RESCHEDULE in tasks:
            return self._start_change(RESCHEDULE, u, prefix=info)
        if nlu.BOOK in tasks:
            return self._start_booking(u, prefix=info)
        if nlu.AVAILABILITY in tasks:
            return self._availability(u, prefix=info)
        if nlu.CHECK in tasks:
            return self._check_appointments(u, prefix=info)
        if info:
            if s.stage in (INTENT, MORE, DONE):
                return self._anything_else(prefix=info)
            return self._reprompt(prefix=info)
        if u.doctor_ids or u.unknown_doctor or u.any_doctor or u.when.day or u.when.time:
            if s.task in (BOOK, RESCHEDULE) and s.stage not in (INTENT, MORE, DONE):
                # details for the request under way ("Dr Gupta", "Monday 3 pm"), not a new one
                self._absorb(u)
                if s.stage == APPOINTMENT:
                    return self._reprompt()
                return self._advance_task()
            return self._start_booking(u)
        if u.name and s.task == BOOK and s.stage in (DOCTOR, WHEN, SLOT, CONFIRM):
            self._absorb_name(u.name)  # "her name is Kamla Devi": used when booking
            prefix = say("got_name", s.language, name=u.name)
            if s.stage == CONFIRM:  # the read-back named another patient: read it again
                return self._advance_task(prefix)
            return self._reprompt(prefix=prefix)
        if u.language_request:
            if s.stage in (INTENT, MORE, DONE):
                return self._ask(say("how_help", s.language), INTENT)
            return self._reprompt()
        if u.thanks and s.stage in (INTENT, MORE):
            return self._goodbye()
        if u.greeting and s.stage in (INTENT, MORE):
            return self._ask(say("how_help", s.language), INTENT)
        return None

    # --- booking ----------------------------------------------------------------------

    def _start_booking(self, u: Understanding, prefix: str = "") -> AgentReply:
        s = self.state
        self._note_intent(nlu.BOOK)
        self._reset_task()
        s.task = BOOK
        self._absorb(u)
        if s.doctor_id is None and u.unknown_doctor and not s.doctor_candidates:
            prefix = sentences(prefix, say("unknown_doctor", s.language, name=u.unknown_doctor))
        return self._advance(prefix)

    def _availability(self, u: Understanding, prefix: str = "") -> AgentReply:
        """ "Is Dr Sharma available tomorrow?": the free times, ready to book one."""
        s = self.state
        self._reset_task()
        s.task = BOOK
        self._absorb(u)
        if s.doctor_id is not None and u.when.empty:
            doctor = self.tools.doctor(s.doctor_id)
            days, opens, closes = self.tools.working_week(s.doctor_id)
            hours = replies.speak_hours(days, opens, closes, s.language) if days else ""
            if hours:
                prefix = sentences(
                    prefix, say("doctor_hours", s.language, doctor=doctor.name, hours=hours)
                )
        return self._advance(prefix)

    def _advance(self, prefix: str = "") -> AgentReply:
        """Asks for the next missing piece of a booking, or for the final yes."""
        s = self.state
        if s.doctor_id is None:
            picked = self._pick_doctor()
            if picked is None:
                return self._ask_doctor(prefix)
        if s.pending_start is None:
            search = self.tools.search_slots(
                s.doctor_id,
                day=_date(s.day),
                at=_time(s.at),
                period=s.period,
            )
            if not search.exact_free:
                return self._present(search, prefix)
            s.pending_start = search.requested.isoformat()
        if s.patient_id is None or s.new_patient:
            step = self._patient_step(prefix)
            if step is not None:
                return step
        return self._confirm_booking(prefix)

    def _pick_doctor(self) -> int | None:
        s = self.state
        bookable = [d for d in self._doctors() if d.available]
        if s.doctor_candidates:
            return None
        if len(bookable) == 1:
            s.doctor_id = bookable[0].id
        elif s.any_doctor and bookable:
            best = None
            for doctor in bookable:
                search = self.tools.search_slots(
                    doctor.id, day=_date(s.day), at=_time(s.at), period=s.period, limit=1
                )
                if not (search.exact_free or search.slots):
                    continue
                first = search.requested if search.exact_free else search.slots[0]
                key = (not search.exact_free, first)
                if best is None or key < best[0]:
                    best = (key, doctor.id)
            if best is not None:
                s.doctor_id = best[1]
        return s.doctor_id

    def _ask_doctor(self, prefix: str = "") -> AgentReply:
        s = self.state
        doctors = [d for d in self._doctors() if d.available]
        if s.doctor_candidates:
            doctors = [d for d in doctors if d.id in s.doctor_candidates] or doctors
            names = replies.join([d.name for d in doctors], s.language)
            prompt = say("ask_doctor_among", s.language, doctors=names)
        else:
            names = replies.join(
                [f"{d.name} ({d.specialization})" if d.specialization else d.name for d in doctors],
                s.language,
                conjunction="and",
            )
            prompt = say("ask_doctor", s.language, doctors=names)
        s.choices = [d.id for d in doctors]
        return self._ask(prompt, DOCTOR, prefix=prefix, options=[d.name for d in doctors])

    def _present(self, search: tools_module.SlotSearch, prefix: str = "") -> AgentReply:
        """Says why the request cannot be met as asked, and offers the nearest times."""
        s = self.state
        lang = s.language
        doctor = search.doctor.name
        now, tz = self.tools.now(), self.tools.tz
        today = now.astimezone(tz).date()
        if search.problem == tools_module.NOT_ACCEPTING:
            s.doctor_id = None
            s.doctor_candidates = []
            return self._ask_doctor(
                sentences(prefix, say("doctor_not_accepting", lang, doctor=doctor))
            )
        explain = ""
        problem = search.problem
        if problem in tools_module.CLOSED and search.day is not None:
            explain = say(
                f"closed_{problem}", lang, doctor=doctor, day=speak_day(search.day, lang, today)
            )
        elif problem == tools_module.PAST_DAY:
            explain = say("closed_past", lang)
        elif problem in (tools_module.TAKEN, tools_module.OUTSIDE_HOURS, tools_module.PAST_TIME):
            moment = speak_when(search.requested, lang, now=now, tz=tz)
            key = {
                tools_module.TAKEN: "slot_taken",
                tools_module.OUTSIDE_HOURS: "slot_outside_hours",
                tools_module.PAST_TIME: "slot_past",
            }[problem]
            explain = say(key, lang, time=moment, doctor=doctor)
        elif problem in (tools_module.NONE_IN_PERIOD, tools_module.DAY_FULL):
            explain = say("nothing_in_period", lang)
        if not search.slots:
            no_slots = say("no_slots", lang, doctor=doctor)
            if s.task == RESCHEDULE:
                s.pending_start = None
                return self._ask(
                    say("ask_other_time", lang), WHEN, prefix=sentences(prefix, explain, no_slots)
                )
            s.doctor_id = None
            return self._ask_doctor(sentences(prefix, explain, no_slots))
        return self._offer(
            search.slots, doctor, nearest=bool(problem), prefix=sentences(prefix, explain)
        )

    def _offer(self, slots: list[datetime], doctor: str, *, nearest: bool, prefix: str = ""):
        s = self.state
        lang, now, tz = s.language, self.tools.now(), self.tools.tz
        s.choices = [slot.isoformat() for slot in slots]
        spoken = speak_slots(slots, lang, now=now, tz=tz)
        prompt = say(
            "offer_next_slots" if nearest else "offer_slots", lang, doctor=doctor, slots=spoken
        )
        if self.channel == "voice" and len(slots) > 1:
            prompt = sentences(prompt, replies.dtmf_hint(len(slots), lang))
        options = [speak_when(slot, lang, now=now, tz=tz) for slot in slots]
        return self._ask(prompt, SLOT, prefix=prefix, options=options)

    def _reprompt(self, *, prefix: str = "", suffix: str = "") -> AgentReply:
        """The pending question again -- rebuilt if the caller has switched language."""
        s = self.state
        if s.last_prompt and s.prompt_language == s.language:
            return self._ask(
                s.last_prompt, s.stage, prefix=prefix, suffix=suffix, options=s.last_options
            )
        reply = self._rebuild_question(prefix)
        if suffix:
            reply.text = sentences(reply.text, suffix)
        return reply

    def _rebuild_question(self, prefix: str) -> AgentReply:
        s = self.state
        lang = s.language
        if s.stage == SLOT and s.choices:
            doctor = self.tools.doctor(s.doctor_id) if s.doctor_id else None
            if doctor is None:
                appointment = self._current_appointment()
                name = appointment.doctor_name if appointment else ""
            else:
                name = doctor.name
            return self._offer([_dt(v) for v in s.choices], name, nearest=False, prefix=prefix)
        if s.stage == CONFIRM and s.task == BOOK and s.pending_start and s.doctor_id:
            return self._confirm_booking(prefix)
        if s.stage == CONFIRM and s.task in (RESCHEDULE, CANCEL):
            return self._advance_change(prefix)
        if s.stage == DOCTOR:
            return self._ask_doctor(prefix)
        if s.stage == PATIENT:
            return self._patient_step(prefix) or self._confirm_booking(prefix)
        if s.stage == APPOINTMENT:
            by_id = {a.id: a for a in self.tools.upcoming_appointments()}
            return self._ask_appointment([by_id[i] for i in s.choices if i in by_id], prefix)
        if s.stage == NAME:
            return self._ask(say("ask_name", lang), NAME, prefix=prefix)
        if s.stage == NAME_CHECK:
            return self._take_name(s.heard_name, prefix)
        if s.stage == WHEN:
            key = "ask_new_time" if s.task == RESCHEDULE else "ask_when"
            return self._ask(say(key, lang), WHEN, prefix=prefix)
        if s.stage == MORE:
            return self._anything_else(prefix)
        return self._ask(say("how_help", lang), INTENT, prefix=prefix)

    def _patient_step(self, prefix: str) -> AgentReply | None:
        s = self.state
        patients = self.tools.caller_patients()
        if s.pending_name and self.channel == "voice":
            name, s.pending_name = s.pending_name, ""
            return self._take_name(name, prefix)
        if s.pending_name:
            patient = self._register(s.pending_name)
            self._set_patient(patient.id, patient.name)
            s.new_patient, s.pending_name = False, ""
            return None
        if s.new_patient or not patients:
            return self._ask(say("ask_name", s.language), NAME, prefix=prefix)
        if len(patients) == 1:
            self._set_patient(patients[0].id, patients[0].name)
            return None
        s.choices = [p.id for p in patients]
        names = replies.join([p.name for p in patients], s.language, conjunction="and")
        prompt = say("ask_patient", s.language, names=names)
        if self.channel == "voice":
            prompt = sentences(prompt, replies.dtmf_hint(len(patients) + 1, s.language))
        options = [p.name for p in patients] + [_SOMEONE_ELSE[s.language]]
        return self._ask(prompt, PATIENT, prefix=prefix, options=options)

    def _set_patient_and_go(self, patient_id: int) -> AgentReply:
        patient = next((p for p in self.tools.caller_patients() if p.id == patient_id), None)
        if patient is None:
            return self._misunderstood()
        self._set_patient(patient.id, patient.name)
        return self._advance_task()

    def _take_name(self, name: str, prefix: str = "") -> AgentReply:
        """A name the caller gave for the patient.

        On the phone a new name is read back before anything is stored: names are
        what speech recognition gets wrong most, offline most of all, and a patient
        record under a misheard name is worse than a second question.  A name
        already on this phone, or a typed one, is taken as it is.
        """
        s = self.state
        people = [(p.id, p.name) for p in self.tools.caller_patients()]
        known = nlu.match_names(nlu.tokenize(name), people, strict=True)
        if self.channel != "voice" or len(known) == 1:
            return self._new_patient(name, prefix)
        s.heard_name = name
        prompt = sentences(say("check_name", s.language, name=name), say("dtmf_yes_no", s.language))
        return self._ask(prompt, NAME_CHECK, prefix=prefix)

    def _name_not_confirmed(self, heard: str) -> AgentReply:
        """The caller said twice that the name read back is wrong.

        With a front desk to take over, a person takes the name; without one the
        patient is registered under the name as last heard, marked in the call log
        for the front desk to correct, and the caller is told so.
        """
        s = self.state
        s.heard_name, s.name_attempts = "", 0
        if self.tools.transfer_number():
            s.transferred, s.stage = True, DONE
            s.events.append({"type": "transfer", "reason": "name_not_understood"})
            return AgentReply(
                say("transfer_for_name", s.language),
                s.language,
                transfer=True,
                expects=EXPECTS[DONE],
            )
        s.events.append({"type": "name_unconfirmed", "name": heard})
        return self._new_patient(heard, announce="name_noted")

    def _new_patient(
        self, name: str, prefix: str = "", *, announce: str = "got_name"
    ) -> AgentReply:
        """The name answered: a family member already on this phone, or a new patient."""
        s = self.state
        patient = self._register(name)
        s.new_patient, s.pending_name = False, ""
        self._set_patient(patient.id, patient.name)
        prefix = sentences(prefix, say(announce, s.language, name=patient.name))
        if s.task is None:
            return self._ask(say("how_help", s.language), INTENT, prefix=prefix)
        return self._advance_task(prefix)

    def _register(self, name: str):
        patients = self.tools.caller_patients()
        people = [(p.id, p.name) for p in patients]
        known = nlu.match_names(nlu.tokenize(name), people, strict=True)
        if len(known) == 1:  # "for my son" ... "Aarav": already registered
            return next(p for p in patients if p.id == known[0])
        patient = self.tools.create_patient(name, self.state.language)
        self.state.events.append(
            {"type": "patient_created", "patient_id": patient.id, "name": patient.name}
        )
        return patient

    def _confirm_booking(self, prefix: str = "") -> AgentReply:
        s = self.state
        doctor = self.tools.doctor(s.doctor_id)
        when = speak_when(_dt(s.pending_start), s.language, now=self.tools.now(), tz=self.tools.tz)
        prompt = say(
            "confirm_booking", s.language, doctor=doctor.name, when=when, patient=s.patient_name
        )
        return self._ask(prompt, CONFIRM, prefix=prefix)

    # --- changing and cancelling ------------------------------------------------------

    def _start_change(self, task: str, u: Understanding, prefix: str = "") -> AgentReply:
        s = self.state
        appointments = self.tools.upcoming_appointments()
        if task == RESCHEDULE and u.weak_reschedule and not appointments:
            return self._start_booking(u, prefix)  # "appointment parso 5 baje kar do", none yet
        self._note_intent(nlu.CANCEL if task == CANCEL else nlu.RESCHEDULE)
        self._reset_task()
        s.task = task
        if not appointments:
            s.task = None
            s.offer = BOOK
            return self._ask(
                say("offer_booking", s.language),
                MORE,
                prefix=sentences(prefix, say("no_upcoming", s.language)),
            )
        if task == RESCHEDULE:
            self._absorb_when(u)  # the new time
            candidates = [a for a in appointments if a.doctor_id in u.doctor_ids] or appointments
            if len(u.days) >= 2:  # "kal wala appointment parso kar do": from the first day...
                tz = self.tools.tz
                on_day = [a for a in candidates if a.start.astimezone(tz).date() == u.days[0]]
                candidates = on_day or candidates
                s.day = u.days[-1].isoformat()  # ...to the last
        else:
            candidates = self._narrow(appointments, u) or appointments
        if len(candidates) == 1:
            s.appointment_id = candidates[0].id
            self._set_patient(candidates[0].patient_id, candidates[0].patient_name)
            return self._advance_task(prefix)
        return self._ask_appointment(candidates, prefix)

    def _narrow(self, appointments, u: Understanding):
        """The appointments the caller pointed at by doctor or day."""
        tz = self.tools.tz
        out = list(appointments)
        if u.doctor_ids:
            out = [a for a in out if a.doctor_id in u.doctor_ids]
        if u.when.day is not None:
            out = [a for a in out if a.start.astimezone(tz).date() == u.when.day]
        names = nlu.match_names(u.tokens, [(a.patient_id, a.patient_name) for a in out])
        if names and len(names) < len({a.patient_id for a in out}):
            out = [a for a in out if a.patient_id in names]
        return out

    def _ask_appointment(self, appointments, prefix: str = "") -> AgentReply:
        s = self.state
        items = [self._appointment_text(a) for a in appointments]
        s.choices = [a.id for a in appointments]
        prompt = say("ask_which_appointment", s.language, items=replies.join(items, s.language))
        if self.channel == "voice":
            prompt = sentences(prompt, replies.dtmf_hint(len(items), s.language))
        return self._ask(prompt, APPOINTMENT, prefix=prefix, options=items)

    def _appointment_text(self, appointment) -> str:
        when = speak_when(
            appointment.start, self.state.language, now=self.tools.now(), tz=self.tools.tz
        )
        return say(
            "appointment_item",
            self.state.language,
            patient=appointment.patient_name,
            doctor=appointment.doctor_name,
            when=when,
        )

    def _current_appointment(self):
        return next(
            (a for a in self.tools.upcoming_appointments() if a.id == self.state.appointment_id),
            None,
        )

    def _advance_change(self, prefix: str = "") -> AgentReply:
        s = self.state
        appointment = self._current_appointment()
        if appointment is None:
            self._reset_task()
            return self._anything_else(prefix=sentences(prefix, say("cannot_change", s.language)))
        if s.task == CANCEL:
            prompt = say("confirm_cancel", s.language, item=self._appointment_text(appointment))
            return self._ask(prompt, CONFIRM, prefix=prefix)
        if s.pending_start is None:
            if s.day is None and s.at is None and s.period is None:
                return self._ask(say("ask_new_time", s.language), WHEN, prefix=prefix)
            local = appointment.start.astimezone(self.tools.tz)
            day = _date(s.day) or local.date()
            at = _time(s.at)
            if at is None and s.period is None and s.day is not None:
                at = local.time()  # "parso kar do": same time, new day
            search = self.tools.search_slots(
                s.doctor_id or appointment.doctor_id,
                day=day,
                at=at,
                period=s.period,
                duration=appointment.duration_minutes,
                ignore_appointment=appointment.id,
            )
            if not search.exact_free:
                return self._present(search, prefix)
            s.pending_start = search.requested.isoformat()
        now, tz = self.tools.now(), self.tools.tz
        doctor = self.tools.doctor(s.doctor_id) if s.doctor_id else None
        prompt = say(
            "confirm_reschedule",
            s.language,
            patient=appointment.patient_name,
            doctor=(doctor.name if doctor else appointment.doctor_name),
            old=speak_when(appointment.start, s.language, now=now, tz=tz, preposition=False),
            new=speak_when(_dt(s.pending_start), s.language, now=now, tz=tz, preposition=False),
        )
        return self._ask(prompt, CONFIRM, prefix=prefix)

    def _advance_task(self, prefix: str = "") -> AgentReply:
        if self.state.task in (RESCHEDULE, CANCEL):
            return self._advance_change(prefix)
        if self.state.task is None:
            self.state.task = BOOK
        return self._advance(prefix)

    def _check_appointments(self, u: Understanding, prefix: str = "") -> AgentReply:
        s = self.state
        appointments = self.tools.upcoming_appointments()
        appointments = self._narrow(appointments, u) or appointments
        if not appointments:
            s.offer = BOOK
            return self._ask(
                say("offer_booking", s.language),
                MORE,
                prefix=sentences(prefix, say("no_upcoming", s.language)),
            )
        items = replies.join(
            [self._appointment_text(a) for a in appointments[:3]], s.language, conjunction="and"
        )
        return self._anything_else(
            prefix=sentences(prefix, say("upcoming", s.language, items=items))
        )

    # --- doing it ----------------------------------------------------------------------

    def _commit(self, *, then_goodbye: bool = False) -> AgentReply:
        """Does what the caller said yes to; a goodbye in the same breath ends the call."""
        s = self.state
        done = self._goodbye if then_goodbye else self._anything_else
        lang = s.language
        now, tz = self.tools.now(), self.tools.tz
        if s.task == CANCEL:
            appointment = self._current_appointment()
            result = (
                self.tools.cancel(s.appointment_id)
                if appointment
                else tools_module.ActionResult(False, problem=tools_module.NOT_FOUND)
            )
            if not result.ok:
                self._reset_task()
                return done(prefix=say("cannot_change", lang))
            item = self._appointment_text(appointment)
            s.events.append(_event("cancelled", result.appointment))
            self._reset_task()
            return done(prefix=say("cancelled", lang, item=item))
        start = _dt(s.pending_start)
        if s.task == RESCHEDULE:
            old = self._current_appointment()
            result = self.tools.reschedule(s.appointment_id, start, doctor_id=s.doctor_id)
        else:
            result = self.tools.book(s.patient_id, s.doctor_id, start)
        if result.ok:
            appointment = result.appointment
            when = speak_when(appointment.start, lang, now=now, tz=tz)
            if s.task == RESCHEDULE:
                s.events.append(
                    _event("rescheduled", appointment, old_start=old.start if old else None)
                )
                text = say("rescheduled", lang, doctor=appointment.doctor_name, new=when)
            else:
                when = speak_when(appointment.start, lang, now=now, tz=tz, preposition=False)
                s.appointment_created = appointment.id
                s.events.append(_event("booked", appointment))
                self._note_intent(nlu.BOOK)
                text = say(
                    "booked",
                    lang,
                    patient=appointment.patient_name,
                    doctor=appointment.doctor_name,
                    when=when,
                    id=appointment.id,
                )
            self._reset_task(keep_patient=True)
            return done(prefix=text)
        # The slot went between the question and the yes, or the rules said no.
        s.pending_start = None
        doctor = self.tools.doctor(s.doctor_id) if s.doctor_id else None
        if result.problem == tools_module.NOT_CHANGEABLE or doctor is None:
            self._reset_task()
            return self._anything_else(prefix=say("cannot_change", lang))
        search = tools_module.SlotSearch(
            doctor=doctor,
            day=start.astimezone(tz).date(),
            requested=start,
            problem=result.problem,
            slots=result.alternatives,
        )
        return self._present(search)

    # --- endings, transfers, confusion -------------------------------------------------

    def _anything_else(self, prefix: str = "") -> AgentReply:
        return self._ask(say("anything_else", self.state.language), MORE, prefix=prefix)

    def _goodbye(self, prefix: str = "") -> AgentReply:
        s = self.state
        if not s.ended:
            s.events.append({"type": "goodbye"})
        s.ended = True
        text = sentences(prefix, say("goodbye", s.language, clinic=self.tools.clinic.name))
        s.stage = DONE
        return AgentReply(text, s.language, end_call=True, expects=EXPECTS[DONE])

    def _transfer(self, *, after_failures: bool = False) -> AgentReply:
        s = self.state
        if not self.tools.transfer_number():
            s.misunderstood = 0
            return self._ask(
                say("how_help", s.language), INTENT, prefix=say("no_transfer", s.language)
            )
        s.transferred = True
        s.stage = DONE
        s.events.append(
            {"type": "transfer", "reason": "not_understood" if after_failures else "requested"}
        )
        key = "transfer_after_failures" if after_failures else "transfer"
        return AgentReply(say(key, s.language), s.language, transfer=True, expects=EXPECTS[DONE])

    def _misunderstood(self, *, heard: bool = True, low: bool = False) -> AgentReply:
        s = self.state
        s.misunderstood += 1
        s.misunderstood_total += 1
        if s.misunderstood >= MAX_MISUNDERSTOOD:
            return self._transfer(after_failures=True)
        lead = say(
            "not_heard" if not heard else "unclear_line" if low else "not_understood", s.language
        )
        if s.stage == NAME:
            return self._ask(say("ask_name_again", s.language), NAME)
        if s.stage in (INTENT, DONE) or not s.last_prompt:
            return self._ask(say("how_help", s.language), INTENT, prefix=lead)
        suffix = say("dtmf_yes_no", s.language) if s.stage in (CONFIRM, MORE) else ""
        return self._reprompt(prefix=lead, suffix=suffix)

    def _repeat(self) -> AgentReply:
        if not self.state.last_prompt:
            return self._ask(say("how_help", self.state.language), INTENT)
        return self._reprompt()

    # --- helpers -----------------------------------------------------------------------

    def _ask(
        self,
        prompt: str,
        stage: str,
        *,
        prefix: str = "",
        suffix: str = "",
        options: list[str] | None = None,
    ) -> AgentReply:
        s = self.state
        s.stage = stage
        s.last_prompt, s.prompt_language = prompt, s.language
        s.last_options = list(options or [])
        if stage not in (PATIENT, DOCTOR, SLOT, APPOINTMENT):
            s.last_options = []
        return AgentReply(
            sentences(prefix, prompt, suffix),
            s.language,
            expects=EXPECTS.get(stage, "intent"),
            options=list(s.last_options),
        )

    def _doctors(self) -> list[tools_module.DoctorInfo]:
        if self._doctor_cache is None:
            self._doctor_cache = self.tools.doctors()
        return self._doctor_cache

    def _take_bare_hour(self, u: Understanding) -> None:
        """At a time question, "11" / "make it eleven" is 11 o'clock."""
        if u.when.time is None and u.bare_hour is not None:
            u.when = replace(u.when, time=u.bare_hour)

    def _index(self, u: Understanding, count: int) -> int | None:
        if not count:
            return None
        if u.choice is not None:
            if u.choice == -1:
                return count - 1
            if 1 <= u.choice <= count:
                return u.choice - 1
        if u.number is not None and u.when.time is None and 1 <= u.number <= count:
            return u.number - 1
        return None

    def _absorb(self, u: Understanding) -> None:
        """Takes the doctor, the time and the patient the caller mentioned into the state."""
        s = self.state
        if u.doctor_ids:
            if len(u.doctor_ids) == 1:
                if s.doctor_id != u.doctor_ids[0]:
                    s.pending_start = None
                s.doctor_id, s.doctor_candidates = u.doctor_ids[0], []
            else:
                s.doctor_id, s.doctor_candidates = None, list(u.doctor_ids)
                s.pending_start = None
        if u.any_doctor and not u.doctor_ids:
            s.any_doctor = True
        self._absorb_when(u)
        if u.someone_else:
            s.new_patient = True
        if u.name and s.task == BOOK:
            self._absorb_name(u.name)
        patients = self.tools.caller_patients() if s.task == BOOK else []
        if len(patients) > 1 and s.patient_id is None:
            doctor_words = [
                part
                for d in self._doctors()
                if d.id in u.doctor_ids or d.id == s.doctor_id
                for part in d.name.split()
            ]
            tokens = [
                t for t in u.tokens if not any(similar(t.canon, w) >= 0.8 for w in doctor_words)
            ]
            matched = nlu.match_names(tokens, [(p.id, p.name) for p in patients], strict=True)
            if len(matched) == 1:
                patient = next(p for p in patients if p.id == matched[0])
                self._set_patient(patient.id, patient.name)

    def _absorb_name(self, name: str) -> None:
        """A patient named during a booking: one on this phone, or a new one to register."""
        s = self.state
        patients = self.tools.caller_patients()
        people = [(p.id, p.name) for p in patients]
        matched = nlu.match_names(nlu.tokenize(name), people, strict=True)
        if len(matched) == 1:
            patient = next(p for p in patients if p.id == matched[0])
            self._set_patient(patient.id, patient.name)
            s.new_patient, s.pending_name = False, ""
        else:
            s.new_patient, s.pending_name = True, name

    def _absorb_when(self, u: Understanding) -> None:
        s = self.state
        when = u.when
        if when.empty:
            return
        s.pending_start = None
        if when.day is not None:
            s.day = when.day.isoformat()
        if when.time is not None:
            s.at = when.time.strftime("%H:%M")
            s.period = None
        elif when.period is not None:
            s.period, s.at = when.period, None

    def _set_patient(self, patient_id: int, name: str) -> None:
        s = self.state
        s.patient_id, s.patient_name = patient_id, name
        if s.language_heard:
            self.tools.set_language(patient_id, s.language)

    def _hear_language(self, guess: LanguageGuess) -> None:
        s = self.state
        if guess.language is None:
            return
        if s.language_heard and not guess.strong:
            return  # "ok", "yes", "haan" alone do not switch the language mid-call
        changed = guess.language != s.language or not s.language_heard
        s.language, s.language_heard = guess.language, True
        if changed and s.patient_id is not None:
            self.tools.set_language(s.patient_id, s.language)

    def _note_intent(self, intent: str) -> None:
        if intent not in self.state.intents_detected:
            self.state.intents_detected.append(intent)

    def _reset_task(self, *, keep_patient: bool = True) -> None:
        s = self.state
        s.task = None
        s.doctor_id, s.doctor_candidates, s.any_doctor = None, [], False
        s.day = s.at = s.period = None
        s.choices, s.pending_start, s.appointment_id, s.offer = [], None, None, None
        s.new_patient, s.pending_name = False, ""
        if not keep_patient:
            s.patient_id, s.patient_name = None, ""

    def _info_text(self, topics: list[str]) -> str:
        info = self.tools.clinic_info()
        lang = self.state.language
        parts = []
        for topic in topics:
            if topic == nlu.HOURS:
                hours = _localized(info.hours, lang) or (
                    replies.speak_hours(info.open_days, info.opens, info.closes, lang)
                    if info.opens and info.closes
                    else ""
                )
                parts.append(say("info_hours", lang, hours=hours) if hours else "")
            elif topic == nlu.ADDRESS:
                address = _localized(info.address, lang)
                parts.append(say("info_address", lang, address=address) if address else "")
            elif topic == nlu.FEES:
                fees = _localized(info.fees, lang)
                parts.append(say("info_fees", lang, fees=fees) if fees else "")
            elif topic == nlu.DOCTORS:
                names = [
                    f"{d.name} ({d.specialization})" if d.specialization else d.name
                    for d in info.doctors
                ]
                parts.append(
                    say("info_doctors", lang, doctors=replies.join(names, lang, conjunction="and"))
                )
            elif topic in info.facts:
                value = _localized(info.facts[topic], lang)
                label = topic.replace("_", " ").capitalize()
                parts.append(say("info_fact", lang, label=label, value=value) if value else "")
        if not any(parts):
            parts = [say("info_unknown", lang)]
        self.state.events.append({"type": "info", "topics": list(topics)})
        return sentences(*parts)


# --- helpers without state -----------------------------------------------------------------

_SOMEONE_ELSE = {EN: "Someone else", HINGLISH: "Koi aur", HI: "कोई और"}


def _task_names(intents: list[str]) -> list[str]:
    mapping = {nlu.BOOK: BOOK, nlu.RESCHEDULE: RESCHEDULE, nlu.CANCEL: CANCEL}
    return [mapping[i] for i in intents if i in mapping]


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _time(value: str | None) -> time | None:
    return time.fromisoformat(value) if value else None


def _in_period(slot: datetime, period: str, agent: RuleBasedAgent) -> bool:
    return in_period(slot.astimezone(agent.tools.tz), period)


def _switches(u: Understanding, task: str | None) -> bool:
    """The caller asked for another task (book/move/cancel) than the current one."""
    named = _task_names(u.task_intents)
    return bool(named) and task not in named


def _localized(value, language: str) -> str:
    """A fact from ``Clinic.information`` in the caller's language.

    Values may be text, a per-language object (``{"en": ..., "hi": ..., "hi-en": ...}``),
    an object of named amounts (``{"consultation": "500 rupees"}``) or a list.
    """
    if value is None or value == "":
        return ""
    if isinstance(value, dict):
        if value and set(value) <= {EN, HI, HINGLISH}:
            return str(value.get(language) or value.get(EN) or next(iter(value.values())))
        return ", ".join(
            f"{str(k).replace('_', ' ')}: {_localized(v, language)}" for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return ", ".join(_localized(v, language) for v in value)
    return str(value).strip().rstrip(".")


def _event(kind: str, appointment, **extra) -> dict:
    data = {
        "type": kind,
        "appointment_id": appointment.id,
        "patient": appointment.patient_name,
        "doctor": appointment.doctor_name,
        "start": appointment.start.isoformat(),
    }
    for key, value in extra.items():
        data[key] = value.isoformat() if isinstance(value, datetime) else value
    return data


def summarize(state: DialogState, tz) -> str:
    """One or two English sentences for the call log (staff read them, not callers)."""

    def local(value: str | None) -> str:
        if not value:
            return "?"
        moment = datetime.fromisoformat(value).astimezone(tz)
        return moment.strftime("%d %b %Y, %I:%M %p").replace(" 0", " ").lstrip("0")

    parts = []
    for event in state.events:
        kind = event["type"]
        if kind == "patient_created":
            parts.append(f"Registered new patient {event['name']}.")
        elif kind == "booked":
            parts.append(
                f"Booked {event['patient']} with {event['doctor']} for {local(event['start'])}"
                f" (appointment #{event['appointment_id']})."
            )
        elif kind == "rescheduled":
            parts.append(
                f"Moved appointment #{event['appointment_id']} of {event['patient']} with "
                f"{event['doctor']} from {local(event.get('old_start'))}"
                f" to {local(event['start'])}."
            )
        elif kind == "cancelled":
            parts.append(
                f"Cancelled appointment #{event['appointment_id']} of {event['patient']} with "
                f"{event['doctor']} on {local(event['start'])}."
            )
        elif kind == "info":
            topics = ", ".join(t.replace("_", " ") for t in event["topics"])
            parts.append(f"Asked about {topics}.")
        elif kind == "transfer":
            why = {
                "requested": "on request",
                "name_not_understood": "to take the caller's name (not understood)",
            }.get(event["reason"], "after repeated misunderstanding")
            parts.append(f"Transferred to the front desk {why}.")
        elif kind == "name_unconfirmed":
            parts.append(
                f"The caller did not confirm the name as heard ({event['name']}): "
                "please check it with them."
            )
    if not parts:
        asked = ", ".join(i.replace("_", " ") for i in state.intents_detected)
        parts.append(
            f"Caller asked to {asked}; nothing was completed." if asked else "No request completed."
        )
    who = f"{state.patient_name}: " if state.patient_name else ""
    return who + " ".join(dict.fromkeys(parts))


def guess_sentiment(state: DialogState) -> str:
    """positive / neutral / negative from the caller's words and how the call went."""
    score = float(state.mood)
    if any(e["type"] in ("booked", "rescheduled", "cancelled") for e in state.events):
        score += 1
    score -= 0.5 * state.misunderstood_total
    if any(e["type"] == "transfer" and e["reason"] != "requested" for e in state.events):
        score -= 1
    if score >= 1:
        return "positive"
    if score <= -1:
        return "negative"
    return "neutral"


__all__ = ["AgentReply", "DialogState", "RuleBasedAgent", "guess_sentiment", "summarize"]


def _same_name(a: str, b: str) -> bool:
    # Exact: "Meena" and "Meera" are the mistake being corrected, not the same name.
    return a.casefold().split() == b.casefold().split()


def _may_be_a_name(u: Understanding) -> bool:
    """Whether an answer to "who is it for?" / "your name?" can be a new person's name:
    not when it asks for something, names a doctor, or says goodbye ("that is all,
    thank you" once registered a patient called "All")."""
    names_a_doctor = bool(u.doctor_ids) or any(t.canon in nlu.TITLES for t in u.tokens)
    return not (u.task_intents or u.info_topics or u.transfer or u.goodbye or names_a_doctor)
