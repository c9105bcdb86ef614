"""The phone receptionist's brain: caller text or keypad digits in, replies and actions out.

Telephony (Twilio webhooks, media streams) and the text chat call ``build_agent``
once per call or per webhook, then ``greet()``, ``respond(text, confidence=...)``
and ``respond_dtmf(digits)``; each returns an ``AgentReply`` (text, language,
``end_call``, ``transfer`` to ``clinic.front_desk_phone``, ``expects``, ``options``).
Between webhooks keep ``agent.to_dict()`` (JSON) and pass it back as ``state``.
For the call log: ``agent.summary()``, ``agent.sentiment()``,
``agent.intents_detected``, ``agent.appointment_created``, ``agent.patient_id``,
``agent.language``.

Settings (``django.conf.settings``, all optional): ``LLM_BASE_URL``, ``LLM_MODEL``,
``LLM_API_KEY``, ``LLM_TIMEOUT_SECONDS``. With base URL and model set, the LLM agent
answers; otherwise, and whenever the model fails, the rule-based agent does.

Modules: ``language`` (detection, canonical tokens), ``dates`` (spoken dates and
times), ``nlu`` (intents, names, yes/no, choices), ``replies`` (templates in en /
hi / hi-en), ``tools`` (the only ORM access, through ``clinic.services``),
``dialog`` (the rule-based agent), ``llm`` (an OpenAI-compatible model using the
same tools, falling back to the rules).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from voice.agent.dialog import AgentReply, DialogState, RuleBasedAgent
from voice.agent.llm import LLMAgent, LLMConfig
from voice.agent.tools import ClinicTools


class Agent(Protocol):
    kind: str

    def greet(self) -> AgentReply: ...
    def respond(self, text: str, *, confidence: float | None = None) -> AgentReply: ...
    def respond_dtmf(self, digits: str) -> AgentReply: ...
    def to_dict(self) -> dict: ...
    def summary(self) -> str: ...
    def sentiment(self) -> str: ...


def build_agent(
    clinic,
    caller_phone: str,
    *,
    call_sid: str = "",
    now: datetime | None = None,
    state: dict | None = None,
    channel: str = "voice",
) -> Agent:
    """The LLM agent when ``LLM_BASE_URL`` and ``LLM_MODEL`` are set, else the rules.

    ``state`` is a previous ``agent.to_dict()``: a call that fell back to the rules
    stays with the rules; ``now`` fixes the clock (tests, replays); ``channel`` is
    "voice" (keypad hints in menus) or "chat".
    """
    tools = ClinicTools(clinic, caller_phone, call_sid=call_sid, now=now)
    config = LLMConfig.from_settings()
    state = state or {}
    if config is not None and state.get("kind", "llm") == "llm":
        return LLMAgent.from_dict(tools, state, config, channel=channel)
    return RuleBasedAgent.from_dict(tools, state, channel=channel)


__all__ = [
    "Agent",
    "AgentReply",
    "ClinicTools",
    "DialogState",
    "LLMAgent",
    "LLMConfig",
    "RuleBasedAgent",
    "build_agent",
]
