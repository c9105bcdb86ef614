"""A seeded clinic and a fixed clock for the agent's dialogs.

``NOW`` is Wednesday 15 January 2031, 09:00 in Asia/Kolkata: "kal" is Thursday
the 16th, "parso" Friday the 17th. Factory doctors work 09:00-13:00 and
14:00-18:00 every day.
"""

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from clinic.tests.factories import ClinicFactory, DoctorFactory, PatientFactory
from voice.agent import build_agent

IST = ZoneInfo("Asia/Kolkata")
NOW = datetime(2031, 1, 15, 9, 0, tzinfo=IST)
CALL_SID = "CA" + "7" * 32


def utc(year, month, day, hour, minute=0):
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ist(day, hour, minute=0):
    """A clinic-local moment in January 2031."""
    return datetime(2031, 1, day, hour, minute, tzinfo=IST)


@pytest.fixture(autouse=True)
def _no_llm(settings):
    """The rule-based agent unless a test configures a model."""
    settings.LLM_BASE_URL = ""
    settings.LLM_MODEL = ""
    settings.LLM_API_KEY = ""


@pytest.fixture
def clinic(db):
    return ClinicFactory(
        name="Vaani Test Clinic",
        address="12 MG Road, Bengaluru 560001",
        default_language="hi-en",
        information={
            "hours": "Monday to Saturday, 9 am to 6 pm",
            "fees": {"consultation": "500 rupees", "follow_up": "300 rupees"},
            "parking": "Free parking in the basement",
        },
    )


@pytest.fixture
def sharma(clinic):
    return DoctorFactory(clinic=clinic, name="Dr. Priya Sharma", specialization="General Physician")


@pytest.fixture
def gupta(clinic):
    return DoctorFactory(clinic=clinic, name="Dr. Rajesh Gupta", specialization="Cardiologist")


@pytest.fixture
def doctors(sharma, gupta):
    return [sharma, gupta]


@pytest.fixture
def ravi(clinic):
    return PatientFactory(
        clinic=clinic, name="Ravi Kumar", phone="+919876500001", language_preference="hi-en"
    )


@pytest.fixture
def family(clinic):
    phone = "+919876543210"
    return [
        PatientFactory(clinic=clinic, name=name, phone=phone, language_preference="hi")
        for name in ("Rajesh Kumar", "Sunita Kumar", "Aarav Kumar")
    ]


class Call:
    """One phone call: a fresh agent per turn from the JSON of the last one, the way
    two ``<Gather>`` webhooks would run it."""

    def __init__(self, clinic, phone, *, now=NOW, call_sid=CALL_SID, channel="voice"):
        self.clinic, self.phone, self.now = clinic, phone, now
        self.call_sid, self.channel = call_sid, channel
        self.state = None
        self.replies = []

    @property
    def agent(self):
        return build_agent(
            self.clinic,
            self.phone,
            call_sid=self.call_sid,
            now=self.now,
            state=self.state,
            channel=self.channel,
        )

    def _run(self, method, *args, **kwargs):
        agent = self.agent
        reply = getattr(agent, method)(*args, **kwargs)
        self.state = json.loads(json.dumps(agent.to_dict()))
        self.last_agent = agent
        self.replies.append(reply)
        return reply

    def greet(self):
        return self._run("greet")

    def say(self, text, **kwargs):
        return self._run("respond", text, **kwargs)

    def press(self, digits):
        return self._run("respond_dtmf", digits)


@pytest.fixture
def call(clinic, doctors):
    def start(phone="+919876500001", **kwargs):
        c = Call(clinic, phone, **kwargs)
        c.greet()
        return c

    return start
