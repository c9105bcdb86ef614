"""What a caller's turn means: intents, doctor, when, yes/no, a choice, a name.

ORM-free: the doctors to match against are passed in (anything with ``id``,
``name`` and ``specialization``), so this module is tested without a database and
the LLM path can reuse it to tag intents for the call log.

Rules are written against canonical tokens (``language.tokenize``), so one rule
covers English, romanised Hindi and Devanagari. Phrases are matched on word
boundaries of the canonical text (``" mera naam "``), never as substrings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, tzinfo
from typing import Protocol

from voice.agent.dates import (
    _PERIOD_WORDS,
    ENGLISH_NUMBERS,
    HINDI_NUMBERS,
    MONTH_WORDS,
    WEEKDAY_WORDS,
    When,
    _to_24h,
    parse_days,
    parse_when,
)
from voice.agent.language import (
    ENGLISH_MARKERS,
    HINDI_MARKERS,
    LanguageGuess,
    Token,
    detect_language,
    similar,
    tokenize,
)

BOOK = "book_appointment"
RESCHEDULE = "reschedule_appointment"
CANCEL = "cancel_appointment"
AVAILABILITY = "ask_doctor_availability"
INFO = "clinic_information"
TRANSFER = "transfer_to_human"
CHECK = "check_appointment"
INTENTS = (TRANSFER, CANCEL, RESCHEDULE, BOOK, AVAILABILITY, CHECK, INFO)  # priority order

HOURS, ADDRESS, FEES, DOCTORS = "hours", "address", "fees", "doctors"
STANDARD_TOPICS = (HOURS, ADDRESS, FEES, DOCTORS)

TITLES = frozenset({"dr", "doctor", "doc", "prof", "mr", "mrs", "ms", "shri", "smt"})


class DoctorLike(Protocol):
    id: int
    name: str
    specialization: str


def _phrase_in(canon: str, phrase: str) -> bool:
    return f" {phrase} " in f" {canon} "


def _any_phrase(canon: str, phrases: Iterable[str]) -> bool:
    padded = f" {canon} "
    return any(f" {p} " in padded for p in phrases)


# --- vocabularies -------------------------------------------------------------------------

_CANCEL = (
    "cancel", "radd", "call off", "nahi aa paunga", "nahi aa paungi", "nahi aa sakta",
    "nahi aa sakti", "nahi aa sakenge", "nahi aa payenge", "nahi aana", "can't come",
    "cannot come", "can not come", "won't be able to come", "not coming", "won't come",
)  # fmt: skip
_RESCHEDULE = (
    "reschedule", "postpone", "prepone", "shift", "move", "badal", "badalna", "badlo",
    "badle", "badalkar", "badaliye", "badal do", "change", "aage kar", "peeche kar",
    "aage karna", "peeche karna", "another day", "doosre din", "different time",
    "different day", "time change",
)  # fmt: skip
_WEAK_CHANGE = ("kar do", "kar dijiye", "karwa do", "rakh do", "rakh dijiye", "kar dena",
                "make it", "set it", "karna hai", "kar sakte")  # fmt: skip
_BOOK = (
    "book", "booking", "book karna", "milna", "milne", "dikhana", "dikhane", "checkup",
    "check up", "see the doctor", "see a doctor", "see doctor", "new appointment",
    "naya appointment", "consult", "visit the doctor", "slot chahiye", "time chahiye",
    "aana hai", "aana chahta", "aana chahti", "an appointment", "appointment chahiye",
    "appointment lena", "appointment leni", "appointment le", "appointment karna",
    "appointment fix", "appointment milega", "appointment mil", "appointment for",
    "appointment with", "fix an appointment",
)  # fmt: skip
_BOOK_VERBS = ("want", "need", "like", "chahiye", "get", "make", "schedule", "lena", "fix")
_AVAILABILITY = (
    "available", "availability", "free", "khaali", "slot", "slots", "milenge", "baithte",
    "baithenge", "kab mil", "kab aate", "kab aayenge", "when can i see", "in today",
    "aaye hain", "aaj aaye",
)  # fmt: skip
_CHECK = ("kab hai", "when is", "what time is", "kitne baje hai", "details", "status",
          "check", "confirm hai", "kis din hai", "yaad")  # fmt: skip
_POSSESSIVE = ("my", "mera", "meri", "mere", "hamara", "hamari", "our")

_TOPIC_WORDS = {
    FEES: ("fees", "fee", "charge", "charges", "cost", "price", "paise", "rupaye", "rupees",
           "rupee", "kitne ka", "kitna lagega", "kitna lagta", "kitne lagenge", "how much",
           "kitna hai", "payment"),
    HOURS: ("timing", "timings", "hours", "open", "opens", "opening", "close", "closes",
            "closing", "closed", "khulta", "khulti", "khula", "khuli", "khulega", "band",
            "kab tak", "working hours", "samay kya"),
    ADDRESS: ("address", "location", "located", "where", "kahan", "pata kya", "ka pata",
              "pata bata", "pata bataiye", "directions", "reach", "landmark", "route"),
    DOCTORS: ("which doctors", "what doctors", "kaun kaun", "kaun se doctor", "kaunse doctor",
              "kaunsa doctor", "list of doctors", "doctors", "specialist", "specialists",
              "kaun doctor"),
}  # fmt: skip

# Words that ask for a person by themselves, and "talk to <someone>" patterns.
# ("koi baat nahi" -- "no problem" -- must not transfer, so "baat" alone never does.)
_TRANSFER_WORDS = ("human", "humans", "operator", "receptionist", "reception", "insaan",
                   "manager", "representative", "front desk", "real person", "live person",
                   "transfer me", "connect me", "put me through")  # fmt: skip
_TRANSFER_PATTERNS = (
    re.compile(
        r"\b(talk|speak|speaking|talking)( to| with)( a| the| some| any| your| an)?"
        r" (person|someone|somebody|human|agent|doctor|staff|receptionist|real|live|nurse)\b"
    ),
    re.compile(
        r"\b(kisi|insaan|aadmi|doctor|receptionist|staff|aap ke staff|reception) (se|say)"
        r" (baat|connect)\b"
    ),
    re.compile(r"\bbaat (karwa|karwao|karwaiye|karao|karaiye|kara do|karwa do)\b"),
)
_GOODBYE = ("bye", "bye bye", "alvida", "thats all", "that's all", "that is all",
            "nothing else", "bas itna", "bas itna hi", "bas ji", "nahi bas", "phir milenge",
            "rakhta hoon", "rakhti hoon", "hang up", "aur kuch nahi", "kuch nahi",
            "bas shukriya", "bas dhanyavaad", "no more", "that will be all", "i'm done",
            "i am done")  # fmt: skip
_THANKS = ("thanks", "thank you", "dhanyavaad", "shukriya", "thank")
_GREETING = ("hello", "hi", "hey", "namaste", "namaskar", "good morning", "good afternoon",
             "good evening", "hello ji", "haan hello")  # fmt: skip
_REPEAT = ("repeat", "say again", "say that again", "phir se", "dobara", "kya bola",
           "pardon", "come again", "kya kaha", "firse", "once more")  # fmt: skip
_SOMEONE_ELSE = ("someone else", "somebody else", "koi aur", "kisi aur", "new patient",
                 "naya patient", "another person", "another patient", "doosra patient",
                 "not me", "none of them", "inmein se koi nahi")  # fmt: skip
# Booking for a relative: not the phone's own patient, whoever that is.
_RELATIVES = ("my mother", "my father", "my son", "my daughter", "my wife", "my husband",
              "my child", "my baby", "my kid", "my mom", "my dad", "my brother", "my sister",
              "my grandmother", "my grandfather", "my mother in law", "my father in law",
              "meri maa", "meri mummy", "mere papa", "mere pita", "mere bete", "meri beti",
              "mere bachche", "meri wife", "meri patni", "mere pati", "mere husband",
              "mere bhai", "meri behen", "maa ke liye", "mummy ke liye", "papa ke liye",
              "bete ke liye", "beti ke liye", "bachche ke liye", "dadi", "dada", "nani",
              "nana")  # fmt: skip
_ANY_DOCTOR = ("any doctor", "koi bhi", "kisi bhi", "anyone", "anybody", "any one",
               "jo bhi", "whoever")  # fmt: skip

_YES = ("yes", "ok", "sure", "correct", "right", "confirm", "confirmed", "fine", "done",
        "haan", "haanji", "bilkul", "theek", "sahi", "zaroor", "chalega", "perfect", "great",
        "absolutely", "achha", "go ahead", "please do", "kar do", "kar dijiye", "book it",
        "book karo", "book kar do", "that works", "sounds good", "alright", "of course",
        "yes please", "no problem", "koi baat nahi", "not a problem", "why not")  # fmt: skip
_NO = ("no", "not", "nahi", "mat", "galat", "wrong", "dont", "don't", "never", "rehne do",
       "rehne dijiye", "nope")  # fmt: skip
_YES_OVERRIDES = ("no problem", "koi baat nahi", "not a problem", "why not")

_ORDINALS = {
    "first": 1, "1th": 1, "pehla": 1, "pehli": 1, "pehle": 1, "second": 2, "2th": 2,
    "doosra": 2, "doosri": 2, "doosre": 2, "third": 3, "3th": 3, "teesra": 3, "teesri": 3,
    "fourth": 4, "4th": 4, "chautha": 4, "chauthi": 4, "fifth": 5, "5th": 5, "last": -1,
    "aakhri": -1, "earliest": 1, "sabse pehle": 1,
}  # fmt: skip

_NEGATIVE = ("bakwas", "bekaar", "bekar", "useless", "worst", "pathetic", "angry", "gussa",
             "frustrated", "frustrating", "terrible", "horrible", "stupid", "very bad",
             "samajh nahi", "not working", "complaint", "shikayat", "ridiculous",
             "irritating", "annoying", "rubbish", "faltu", "kya bakwas")  # fmt: skip
_POSITIVE = ("thanks", "thank you", "dhanyavaad", "shukriya", "great", "perfect",
             "excellent", "wonderful", "badhiya", "bahut achha", "very good", "helpful",
             "awesome", "nice")  # fmt: skip

SPECIALTIES = {
    "pediatric": ("child", "children", "kids", "kid", "baby", "bachche", "bachchon",
                  "bachcha", "baccha", "shishu", "pediatrician", "paediatrician"),
    "cardio": ("heart", "dil", "cardiologist", "cardiac", "chest pain"),
    "derma": ("skin", "twacha", "dermatologist", "rash", "pimples", "hair"),
    "gyn": ("gynaecologist", "gynecologist", "gynae", "gyne", "pregnancy", "women"),
    "general": ("general", "physician", "fever", "bukhar", "cold", "cough", "family doctor"),
    "ortho": ("bone", "bones", "haddi", "joint", "joints", "orthopedic", "ortho", "fracture"),
    "dent": ("teeth", "tooth", "daant", "dental", "dentist"),
    "ent": ("ear", "nose", "throat", "kaan", "naak", "gala", "ent"),
    "eye": ("eye", "eyes", "aankh", "ophthalmologist", "vision"),
}  # fmt: skip

# Words that never name a person (keeps "kal", "shaam" or "yes" out of names and
# doctor matches).
COMMON_WORDS = frozenset(
    set(HINDI_MARKERS)
    | set(ENGLISH_MARKERS)
    | set(WEEKDAY_WORDS)
    | set(MONTH_WORDS)
    | set(ENGLISH_NUMBERS)
    | set(HINDI_NUMBERS)
    | set(_PERIOD_WORDS)
    | set(_ORDINALS)
    | {w for phrase in _YES + _NO + _THANKS + _GREETING for w in phrase.split()}
    | {w for phrase in _CANCEL + _RESCHEDULE + _BOOK for w in phrase.split()}
    | {
        "doctor", "doctors", "appointment", "appointments", "tarikh", "ji", "ok", "hmm",
        "please", "patient", "clinic", "sir", "madam", "maam", "bhai", "beta", "son",
        "daughter", "wife", "husband", "mother", "father", "mummy", "papa", "bhaiya",
        "didi", "behen", "the", "speaking", "calling", "here", "bol", "bolna", "hu",
        "wanted", "is", "name", "naam", "called", "mr", "mrs", "ms", "baje", "am", "pm",
        "oclock", "minute", "minutes", "time", "day", "week", "hafte", "tomorrow", "today",
        "cancel", "book", "reschedule", "yes", "no", "bye", "hello", "thank", "you",
        "sahab", "saheb", "sahib", "looking", "trying", "going", "interested", "sick",
        "good", "well", "there", "back", "new", "ill", "unwell", "having", "feeling",
        "suffering", "just", "also", "again", "only", "sorry", "one", "someone", "else",
        "all", "that", "thats", "everything", "nothing",
    }
)  # fmt: skip


@dataclass
class Understanding:
    text: str
    tokens: list[Token]
    language: LanguageGuess
    intents: list[str] = field(default_factory=list)
    weak_reschedule: bool = False  # "appointment parso 5 baje kar do": move, or book if none
    when: When = field(default_factory=When)  # the first day said, the time, part of day
    days: list = field(default_factory=list)  # every day said, in order
    doctor_ids: list[int] = field(default_factory=list)
    unknown_doctor: str | None = None  # "doctor Verma" when no Verma works here
    any_doctor: bool = False
    yes: bool | None = None
    choice: int | None = None  # 1-based; -1 = the last one
    number: int | None = None  # a bare number said ("2", "do", "two")
    bare_hour: time | None = None  # "make it 11": a clock hour said without am/baje
    name: str | None = None  # said with an intro: "my name is ...", "mera naam ... hai"
    bare_name: str | None = None  # a bare answer to "what is the name?" ("Ravi Kumar")
    info_topics: list[str] = field(default_factory=list)
    goodbye: bool = False
    thanks: bool = False
    transfer: bool = False
    greeting: bool = False
    repeat: bool = False
    someone_else: bool = False
    mood: int = 0  # >0 pleased, <0 annoyed
    language_request: str | None = None  # "hindi mein baat kijiye" -> "hi-en"

    @property
    def canon(self) -> str:
        return " ".join(t.canon for t in self.tokens)

    @property
    def intent(self) -> str | None:
        return self.intents[0] if self.intents else None

    @property
    def empty(self) -> bool:
        return not self.tokens

    @property
    def task_intents(self) -> list[str]:
        return [i for i in self.intents if i not in (INFO, TRANSFER)]


# --- pieces -------------------------------------------------------------------------------


def detect_intents(canon: str, *, has_when: bool, has_doctor: bool) -> tuple[list[str], bool]:
    """Intents in priority order, and whether a reschedule was only implied."""
    intents: list[str] = []
    words = set(canon.split())
    if detect_transfer(canon):
        intents.append(TRANSFER)
    if _any_phrase(canon, _CANCEL):
        intents.append(CANCEL)
    appointment = bool(words & {"appointment", "appointments"})
    possessive = bool(words & set(_POSSESSIVE))
    book = _any_phrase(canon, _BOOK) or (appointment and bool(words & set(_BOOK_VERBS)))
    weak = False
    if _any_phrase(canon, _RESCHEDULE) and (appointment or has_when or possessive):
        intents.append(RESCHEDULE)
    elif (
        appointment
        and has_when
        and not book
        and CANCEL not in intents
        and _any_phrase(canon, _WEAK_CHANGE)
    ):
        intents.append(RESCHEDULE)
        weak = True
    if book and RESCHEDULE not in intents and CANCEL not in intents:
        intents.append(BOOK)
    if _any_phrase(canon, _AVAILABILITY) and (has_doctor or "doctor" in words or has_when):
        intents.append(AVAILABILITY)
    if (
        appointment
        and not (set(intents) & {CANCEL, RESCHEDULE, BOOK})
        and (_any_phrase(canon, _CHECK) or (possessive and not has_when))
    ):
        intents.append(CHECK)  # "mera appointment kab hai", "Sunita ka appointment kab hai"
    if appointment and not intents:
        intents.append(BOOK)  # "appointment", "Sharma appointment kal": a booking
    return intents, weak


def detect_transfer(canon: str) -> bool:
    if _any_phrase(canon, _TRANSFER_WORDS):
        return True
    return any(pattern.search(canon) for pattern in _TRANSFER_PATTERNS)


def info_topics(canon: str, info_keys: Iterable[str] = ()) -> list[str]:
    topics = [topic for topic, words in _TOPIC_WORDS.items() if _any_phrase(canon, words)]
    for key in info_keys:
        if key in topics or key in ("timings", "fee"):
            continue
        parts = [p for p in re.split(r"[_\s-]+", key.lower()) if p]
        if parts and all(_phrase_in(canon, p) for p in parts):
            topics.append(key)
    return topics


def parse_yes_no(text_or_canon: str, *, canonical_text: bool = False) -> bool | None:
    """True for yes ("haan ji", "ok", "हाँ", "theek hai"), False for no, None otherwise.

    A no anywhere wins ("haan... nahi nahi"), except in "no problem"-like phrases.
    Hindi "na" is a no only on its own or first: "kar do na" is a polite yes.
    """
    canon = text_or_canon if canonical_text else " ".join(t.canon for t in tokenize(text_or_canon))
    words = canon.split()
    if not words:
        return None
    if _any_phrase(canon, _YES_OVERRIDES):
        return True
    if _any_phrase(canon, _NO) or words[0] == "na" or words == ["na"]:
        return False
    if _any_phrase(canon, _YES):
        return True
    if words[0] == "ji" or words in (["ji"], ["hmm"], ["ji", "ji"]):
        return True
    return None


def parse_choice(canon: str) -> tuple[int | None, int | None]:
    """(ordinal choice, bare number) in a short answer: "the second one" -> (2, None)."""
    words = canon.split()
    if "sabse pehle" in canon:
        return 1, None
    for i, word in enumerate(words):
        if word in _ORDINALS and not (word == "pehle" and "wala" not in words and len(words) > 2):
            return _ORDINALS[word], None
        if word in ("number", "option") and i + 1 < len(words):
            nxt = words[i + 1]
            value = _small_number(nxt)
            if value is not None:
                return value, value
    if len(words) <= 3:
        for word in words:
            value = _small_number(word)
            if value is not None:
                return None, value
    return None, None


def _small_number(word: str) -> int | None:
    if word.isdigit() and len(word) <= 2:
        return int(word)
    if word in ENGLISH_NUMBERS and 0 < ENGLISH_NUMBERS[word] <= 12:
        return ENGLISH_NUMBERS[word]
    if word in HINDI_NUMBERS:
        return HINDI_NUMBERS[word]
    return None


# Longer intros first: "my name is" before "my name".
_EXPLICIT_NAME_INTRO = (
    ("my", "name", "is"), ("her", "name", "is"), ("his", "name", "is"), ("name", "is"),
    ("my", "name"), ("mera", "naam"), ("uska", "naam"), ("unka", "naam"), ("inka", "naam"),
    ("patient", "ka", "naam"),
)  # fmt: skip
_NAME_INTRO = (
    *_EXPLICIT_NAME_INTRO[:-1], ("naam",), ("this", "is"),
    ("i", "am"), ("i'm",), ("im",), ("its",), ("it's",), ("main",), _EXPLICIT_NAME_INTRO[-1],
)  # fmt: skip
_NAME_END = frozenset(
    {"hai", "hain", "hoon", "hu", "bol", "and", "aur", "i", "want", "calling", "here",
     "from", "speaking", "please", "ke", "ka", "ki", "ko", "se", "for", "mujhe", "need",
     "to", "appointment", "book", "doctor", "ji", "wanted", "would", "with"}
)  # fmt: skip
_NAME_FILLERS = frozenset(
    {"haan", "ji", "yes", "ok", "hello", "sure", "my", "name", "is", "naam", "mera", "its",
     "actually", "wait", "sorry", "umm", "uh", "hmm", "so", "well", "okay", "no", "just",
     "it's", "i", "am", "i'm", "im", "this", "main", "the", "patient", "patient's", "ka",
     "hai", "hoon", "hu", "bol", "raha", "rahi", "please", "thanks", "thank", "you", "sir",
     "madam", "achha", "theek", "haanji", "mr", "mrs", "ms", "shri", "smt", "of", "for"}
)  # fmt: skip


def _clean_name(tokens: Sequence[Token]) -> str | None:
    words = []
    for token in tokens:
        if token.canon in COMMON_WORDS or any(ch.isdigit() for ch in token.canon):
            return None
        if not re.fullmatch(r"[^\W\d_]+(?:'[^\W\d_]+)?|[\u0900-\u097f]+", token.text):
            return None
        words.append(token.text if token.devanagari else token.text[:1].upper() + token.text[1:])
    if not 1 <= len(words) <= 4:
        return None
    return " ".join(words)


def _name_slot(tokens: Sequence[Token]) -> set[int]:
    """Positions of the words after "my name is" / "mera naam", whatever they are."""
    words = [t.canon for t in tokens]
    for intro in _EXPLICIT_NAME_INTRO:
        size = len(intro)
        for i in range(len(words) - size + 1):
            if tuple(words[i : i + size]) == intro:
                slot = set()
                for j in range(i + size, min(len(words), i + size + 4)):
                    if words[j] in _NAME_END:
                        break
                    slot.add(j)
                return slot
    return set()


def extract_name(tokens: Sequence[Token], *, expecting: bool = False) -> str | None:
    """A person's name: "my name is Ravi Kumar", "mera naam Ravi hai", "मेरा नाम रवि है".

    When the agent has just asked for the name (``expecting``), a bare answer
    ("Ravi Kumar", "ji, Sunita") is taken too, after dropping fillers.
    """
    words = [t.canon for t in tokens]
    for intro in _NAME_INTRO:
        size = len(intro)
        for i in range(len(words) - size + 1):
            if tuple(words[i : i + size]) != intro:
                continue
            if intro == ("main",) and "bol" not in words[i + 1 :]:
                continue
            if (
                intro == ("naam",)
                and i > 0
                and words[i - 1] in ("mera", "ka", "uska", "unka", "inka")
            ):
                continue
            rest = []
            for token in tokens[i + size :]:
                if token.canon in _NAME_END:
                    break
                rest.append(token)
            name = _clean_name(rest[:4])
            if name:
                return name
    # "Ravi bol raha hoon"
    for i, word in enumerate(words):
        if word == "bol" and i > 0 and i + 1 < len(words) and words[i + 1] in ("raha", "rahi"):
            start = max(0, i - 3)
            while start < i and words[start] in _NAME_FILLERS:
                start += 1
            name = _clean_name(tokens[start:i])
            if name:
                return name
    if expecting:
        # "ji, Pooja Sharma", "it's for my son Aarav": the words that can be a name,
        # unless the answer was mostly about something else ("kal subah 10 baje").
        kept = [t for t in tokens if t.canon not in _NAME_FILLERS]
        names = [
            t for t in kept if t.canon not in COMMON_WORDS and not any(c.isdigit() for c in t.canon)
        ]
        if not names or len(kept) - len(names) > 2:
            return None
        return _clean_name(names)
    return None


def match_doctors(
    tokens: Sequence[Token], doctors: Sequence[DoctorLike], *, skip: Iterable[int] = ()
) -> tuple[list[int], str | None]:
    """Doctors the caller named ("Sharma", "doctor sharma", "डॉ शर्मा", "Priya"), fuzzily.

    A word right after "doctor"/"dr" counts more than a bare word, so "this is Rajesh,
    I want doctor Sharma" picks Dr. Sharma even when a Dr. Rajesh Gupta exists. Returns
    the matched ids (several when the caller was ambiguous) and the unmatched word that
    followed "doctor" (to say "we have no Dr. Verma"), if any.
    """
    skip = set(skip)
    spoken = [
        (i, t)
        for i, t in enumerate(tokens)
        if i not in skip and t.canon not in COMMON_WORDS and len(t.canon) >= 2
    ]
    after_title = {i for i, t in enumerate(tokens) if i > 0 and tokens[i - 1].canon in TITLES}
    scores: dict[int, tuple[int, float]] = {}
    matched_positions: set[int] = set()
    for doctor in doctors:
        parts = [p for p in re.split(r"[\s.]+", doctor.name) if p]
        parts = [p for p in parts if p.lower().strip(".") not in TITLES and not p.isdigit()]
        explicit, total = 0, 0.0
        for part in parts:
            best, best_pos = 0.0, None
            for i, token in spoken:
                score = max(similar(token.canon, part), similar(token.text, part))
                if score > best:
                    best, best_pos = score, i
            if best >= 0.8:
                total += best
                matched_positions.add(best_pos)
                if best_pos in after_title:
                    explicit += 1
        if total:
            scores[doctor.id] = (explicit, total)
    unknown = None
    for i in sorted(after_title):
        token = tokens[i]
        if (
            i not in matched_positions
            and i not in skip
            and token.canon not in COMMON_WORDS
            and re.fullmatch(r"[^\W\d_]+|[\u0900-\u097f]+", token.text)
        ):
            unknown = token.text if token.devanagari else token.text.capitalize()
            break
    if not scores:
        return _match_specialty(tokens, doctors), unknown
    best = max(scores.values())
    ids = [doctor_id for doctor_id, score in scores.items() if score == best]
    return ids, None


def _match_specialty(tokens: Sequence[Token], doctors: Sequence[DoctorLike]) -> list[int]:
    canon = " ".join(t.canon for t in tokens)
    ids: list[int] = []
    for stem, words in SPECIALTIES.items():
        if _any_phrase(canon, words):
            ids.extend(d.id for d in doctors if stem in (d.specialization or "").lower())
    return list(dict.fromkeys(ids))


def match_names(
    tokens: Sequence[Token], people: Sequence[tuple[int, str]], *, strict: bool = False
) -> list[int]:
    """Which of ``people`` (id, name) the caller named: best-scoring ids, fuzzy.

    ``strict``: every name-like word said must belong to the person, so "Arjun Kumar"
    is not "Ravi Kumar" (families share surnames) while "Sunita" is "Sunita Kumar".
    """
    scores: dict[int, float] = {}
    usable = [
        t
        for t in tokens
        if (t.canon not in COMMON_WORDS or t.devanagari) and not any(c.isdigit() for c in t.canon)
    ]

    def likeness(token: Token, part: str) -> float:
        return max(similar(token.canon, part), similar(token.text, part))

    for person_id, name in people:
        parts = name.split()
        if strict and not all(max(likeness(t, p) for p in parts) >= 0.8 for t in usable):
            continue
        total = 0.0
        for part in parts:
            best = max((likeness(t, part) for t in usable), default=0.0)
            if best >= 0.8:
                total += best
        if total:
            scores[person_id] = total
    if not scores:
        return []
    best = max(scores.values())
    return [pid for pid, score in scores.items() if score == best]


def _bare_hour(tokens: Sequence[Token], period: str | None) -> time | None:
    """The one clock hour in a short answer without am/pm/baje ("make it 11", "eleven").

    Only digits and English number words from two on count: "one" is too often
    "that one", and Hindi "do" is "please do". Read as a clinic hour (``dates``).
    """
    if len(tokens) > 6:
        return None
    hours = []
    for token in tokens:
        word = token.canon
        if word.isdigit() and len(word) <= 2:
            hours.append(int(word))
        elif word in ENGLISH_NUMBERS and 2 <= ENGLISH_NUMBERS[word] <= 12:
            hours.append(ENGLISH_NUMBERS[word])
    if len(hours) != 1 or not 1 <= hours[0] <= 23:
        return None
    return _to_24h(hours[0], 0, suffix=None, period=period)


def mood_of(canon: str) -> int:
    return (1 if _any_phrase(canon, _POSITIVE) else 0) - (1 if _any_phrase(canon, _NEGATIVE) else 0)


def _strip_greetings(tokens: list[Token]) -> list[Token]:
    """ "good morning" is a greeting, not a preference for a morning slot."""
    out: list[Token] = []
    skip_next = False
    for i, token in enumerate(tokens):
        if skip_next:
            skip_next = False
            continue
        nxt = tokens[i + 1].canon if i + 1 < len(tokens) else ""
        if token.canon == "good" and nxt in ("morning", "afternoon", "evening", "night"):
            skip_next = True
            continue
        out.append(token)
    return out


# --- the whole turn -----------------------------------------------------------------------


def understand(
    text: str,
    *,
    now: datetime,
    tz: tzinfo | None = None,
    doctors: Sequence[DoctorLike] = (),
    info_keys: Iterable[str] = (),
    expecting_name: bool = False,
) -> Understanding:
    tokens = tokenize(text)
    canon = " ".join(t.canon for t in tokens)
    result = Understanding(text=text, tokens=tokens, language=detect_language(text))
    if not tokens:
        return result
    result.when = parse_when(_strip_greetings(tokens), now, tz)
    result.days = parse_days(tokens, now, tz)
    result.name = extract_name(tokens)
    if expecting_name:
        result.bare_name = result.name or extract_name(tokens, expecting=True)
    name_positions: set[int] = set()
    if result.name or result.bare_name:
        name_words = set((result.name or result.bare_name).lower().split())
        name_positions = {
            i
            for i, t in enumerate(tokens)
            if t.text.lower() in name_words and (i == 0 or tokens[i - 1].canon not in TITLES)
        }
    # A name is no evidence of the language, nor is what stands where a name is said
    # ("my name ...", whenever it comes): offline recognition once heard "my name is
    # Meera Nair" as "my name guruvar" (a Hindi weekday), and the call switched to
    # Hinglish on that word.
    unspoken = name_positions or _name_slot(tokens)
    if unspoken:
        rest = " ".join(t.text for i, t in enumerate(tokens) if i not in unspoken)
        result.language = detect_language(rest)
    result.doctor_ids, result.unknown_doctor = match_doctors(tokens, doctors, skip=name_positions)
    result.any_doctor = _any_phrase(canon, _ANY_DOCTOR)
    result.intents, result.weak_reschedule = detect_intents(
        canon,
        has_when=not result.when.empty,
        has_doctor=bool(result.doctor_ids) or result.unknown_doctor is not None,
    )
    result.info_topics = info_topics(canon, info_keys)
    if HOURS in result.info_topics and result.doctor_ids:
        # "Dr Sharma ki timing kya hai": the doctor's hours, i.e. availability
        result.info_topics.remove(HOURS)
        if AVAILABILITY not in result.intents:
            result.intents.append(AVAILABILITY)
    if DOCTORS in result.info_topics and (result.doctor_ids or result.intents):
        result.info_topics.remove(DOCTORS)
    if result.info_topics and INFO not in result.intents:
        result.intents.append(INFO)
    result.yes = parse_yes_no(canon, canonical_text=True)
    result.choice, result.number = parse_choice(canon)
    if result.when.time is None:
        result.bare_hour = _bare_hour(tokens, result.when.period)
    result.transfer = TRANSFER in result.intents
    words = canon.split()
    result.goodbye = _any_phrase(canon, _GOODBYE) or (words[0] == "bas" and len(words) <= 3)
    result.thanks = _any_phrase(canon, _THANKS)
    result.greeting = _any_phrase(canon, _GREETING)
    result.repeat = _any_phrase(canon, _REPEAT) or words in (["kya"], ["what"], ["sorry"])
    result.someone_else = _any_phrase(canon, _SOMEONE_ELSE) or _any_phrase(canon, _RELATIVES)
    result.mood = mood_of(canon)
    result.language_request = language_request(tokens)
    return result


_LANGUAGE_VERBS = ("baat", "bol", "bolo", "boliye", "speak", "talk", "mein", "in", "please")


def language_request(tokens: Sequence[Token]) -> str | None:
    """ "Can you speak Hindi?", "हिंदी में बात कीजिए", "English please": the language asked for.

    Hindi asked in Devanagari is answered in Devanagari, in Latin letters in Hinglish.
    """
    words = [t.canon for t in tokens]
    if not _any_phrase(" ".join(words), _LANGUAGE_VERBS):
        return None
    if "hindi" in words:
        return "hi" if any(t.devanagari for t in tokens) else "hi-en"
    if "english" in words or "angrezi" in words:
        return "en"
    return None
