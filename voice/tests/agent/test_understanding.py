"""Language detection, canonical words, intents, names, yes/no and choices, replies."""

from dataclasses import dataclass
from datetime import time

import pytest

from voice.agent import nlu
from voice.agent.language import canonical, detect_language, phonetic_key, transliterate
from voice.agent.replies import speak_clock, speak_hours, speak_slots, speak_when
from voice.tests.agent.conftest import IST, NOW, ist


@dataclass
class Doc:
    id: int
    name: str
    specialization: str = ""


DOCTORS = [
    Doc(1, "Dr. Priya Sharma", "General Physician"),
    Doc(2, "Dr. Rajesh Gupta", "Cardiologist"),
    Doc(3, "Dr. Anjali Mehta", "Pediatrician"),
    Doc(4, "Dr. Suresh Rao", "Dermatologist"),
    Doc(5, "Dr. Anil Sharma", "Orthopedic"),
]


def understand(text):
    return nlu.understand(text, now=NOW, tz=IST, doctors=DOCTORS, info_keys=["parking"])


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("I want to book an appointment", "en"),
        ("मुझे अपॉइंटमेंट चाहिए", "hi"),
        ("mujhe appointment chahiye", "hi-en"),
        ("Dr Sharma ke saath tomorrow morning", "hi-en"),
        ("kal subah das baje", "hi-en"),
        ("ok", None),
        ("10:30", None),
        ("Sharma", None),
    ],
)
def test_detect_language(text, language):
    assert detect_language(text).language == language


@pytest.mark.parametrize(
    ("word", "roman"),
    [("शर्मा", "sharma"), ("मेहता", "mehta"), ("प्रिया", "priya"), ("अंजलि", "anjali"),
     ("रवि", "ravi"), ("सुनीता", "suneeta"), ("गुप्ता", "gupta")],
)  # fmt: skip
def test_transliteration_with_schwa_deletion(word, roman):
    assert transliterate(word) == roman


def test_canonical_spelling_of_variants():
    assert canonical("kal subha 10 bje, nhi, dhanyawad") == "kal subah 10 baje nahi dhanyavaad"
    assert canonical("कल सुबह 10 बजे डॉ शर्मा") == "kal subah 10 baje doctor sharma"
    assert phonetic_key("Sharma") == phonetic_key("शर्मा") == phonetic_key("sharmaa")
    assert phonetic_key("Sunita") == phonetic_key("सुनीता")


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("I want to book an appointment with Dr. Sharma tomorrow at 10 am", nlu.BOOK),
        ("मुझे कल सुबह 10 बजे डॉक्टर शर्मा से मिलना है", nlu.BOOK),
        ("Dr Sharma ke saath kal subah appointment chahiye", nlu.BOOK),
        ("mera appointment cancel kar do", nlu.CANCEL),
        ("मेरा अपॉइंटमेंट रद्द कर दीजिए", nlu.CANCEL),
        ("I can't come tomorrow", nlu.CANCEL),
        ("appointment parso shaam 5 baje kar do", nlu.RESCHEDULE),
        ("can I reschedule my appointment", nlu.RESCHEDULE),
        ("mera appointment badalna hai", nlu.RESCHEDULE),
        ("Is Dr Mehta available on Saturday?", nlu.AVAILABILITY),
        ("Dr Sharma ki timing kya hai", nlu.AVAILABILITY),
        ("mera appointment kab hai", nlu.CHECK),
        ("what are your fees", nlu.INFO),
        ("clinic kahan hai", nlu.INFO),
        ("I want to talk to a person", nlu.TRANSFER),
        ("insaan se baat karni hai", nlu.TRANSFER),
        ("receptionist", nlu.TRANSFER),
        ("operator please", nlu.TRANSFER),
    ],
)
def test_intents(text, intent):
    assert understand(text).intent == intent


def test_implied_reschedule_is_marked_weak():
    assert understand("appointment parso shaam 5 baje kar do").weak_reschedule
    assert not understand("mera appointment reschedule karna hai").weak_reschedule


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("doctor sharma", [1, 5]),  # two Sharmas: ambiguous
        ("Dr Priya Sharma", [1]),
        ("Priya", [1]),
        ("डॉ शर्मा", [1, 5]),
        ("डॉक्टर प्रिया", [1]),
        ("Mehta ji", [3]),
        ("dr reddy", []),
        ("mujhe bachchon ke doctor chahiye", [3]),
        ("skin doctor", [4]),
        ("this is Rajesh, I want doctor Mehta", [3]),  # the name is not Dr. Rajesh Gupta
    ],
)
def test_doctor_mentions(text, ids):
    assert understand(text).doctor_ids == ids


def test_unknown_doctor_name_is_reported():
    assert understand("doctor Verma se milna hai").unknown_doctor == "Verma"


@pytest.mark.parametrize(
    ("text", "yes"),
    [("yes", True), ("haan ji", True), ("हाँ", True), ("ji", True), ("theek hai", True),
     ("ok please book it", True), ("bilkul", True), ("no", False), ("nahi", False),
     ("ji nahi", False), ("नहीं", False), ("no problem", True), ("kar do na", True),
     ("na", False), ("maybe", None), ("Sharma", None)],
)  # fmt: skip
def test_yes_no(text, yes):
    assert nlu.parse_yes_no(text) is yes


@pytest.mark.parametrize(
    ("text", "choice", "number"),
    [("the second one", 2, None), ("doosra", 2, None), ("pehla wala", 1, None),
     ("teesra", 3, None), ("last one", -1, None), ("aakhri", -1, None), ("2", None, 2),
     ("two", None, 2), ("number 3", 3, 3), ("option two", 2, 2)],
)  # fmt: skip
def test_choices(text, choice, number):
    u = understand(text)
    assert (u.choice, u.number) == (choice, number)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("my name is Ravi Kumar", "Ravi Kumar"),
        ("mera naam Ravi hai", "Ravi"),
        ("मेरा नाम रवि है", "रवि"),
        ("this is Sunita speaking", "Sunita"),
        ("main Amit bol raha hoon", "Amit"),
        ("I'm looking for a doctor", None),
        ("I want to book for tomorrow", None),
    ],
)
def test_names(text, name):
    assert understand(text).name == name


def test_bare_name_when_the_agent_asked_for_one():
    tokens = nlu.tokenize("ji, Pooja Sharma")
    assert nlu.extract_name(tokens, expecting=True) == "Pooja Sharma"
    assert nlu.extract_name(nlu.tokenize("it's for my son Aarav"), expecting=True) == "Aarav"
    assert nlu.extract_name(nlu.tokenize("kal subah 10 baje"), expecting=True) is None


def test_goodbye_thanks_and_custom_info_topics():
    assert understand("thank you bye").goodbye
    assert understand("bas").goodbye
    assert understand("dhanyavaad").thanks
    assert not understand("bas ek sawal tha, fees kitni hai").goodbye
    assert understand("is there parking?").info_topics == ["parking"]
    assert understand("good morning, I need an appointment").when.empty  # a greeting


def test_times_are_read_naturally():
    assert speak_clock(time(10), "en") == "10 am"
    assert speak_clock(time(17, 30), "en") == "5:30 pm"
    assert speak_clock(time(12), "en") == "12 noon"
    assert speak_clock(time(10), "hi-en") == "subah 10 baje"
    assert speak_clock(time(10, 30), "hi-en") == "subah saadhe 10 baje"
    assert speak_clock(time(13, 30), "hi-en") == "dopahar dedh baje"
    assert speak_clock(time(16, 45), "hi") == "शाम पौने 5 बजे"
    assert speak_when(ist(16, 10), "hi-en", now=NOW, tz=IST) == "kal subah 10 baje"
    assert speak_when(ist(16, 10), "en", now=NOW, tz=IST) == "tomorrow at 10 am"
    assert speak_when(ist(16, 10), "hi", now=NOW, tz=IST) == "कल सुबह 10 बजे"
    assert speak_when(ist(17, 17), "en", now=NOW, tz=IST) == "on Friday, 17 January at 5 pm"
    assert speak_when(ist(20, 9), "hi-en", now=NOW, tz=IST) == "Somvar, 20 January ko subah 9 baje"
    slots = [ist(16, 11, 30), ist(16, 12), ist(16, 14)]
    assert speak_slots(slots, "hi-en", now=NOW, tz=IST) == (
        "kal subah saadhe 11 baje, dopahar 12 baje ya 2 baje"
    )
    assert speak_hours([0, 1, 2, 3, 4, 5], time(9), time(19), "hi-en") == (
        "Somvar se Shanivar tak, subah 9 baje se shaam 7 baje tak"
    )
