"""Clinic vocabulary for biasing the recogniser: text normalisation, a phrase
corpus built from templates, and a grapheme-to-phoneme fallback.

Why: a general English language model turns "doctor Sharma kal subah" into
nonsense.  A small language model trained on what callers actually say to a
clinic (with the clinic's own doctor names) makes an offline recogniser usable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

# ---------------------------------------------------------------------------
# Text normalisation (shared by corpus building and transcript scoring)
# ---------------------------------------------------------------------------

_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
    "seventeen", "eighteen", "nineteen",
]  # fmt: skip
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_to_words(n: int) -> str:
    """0..9999 -> English words ("four thirty" style is handled by time parsing)."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    thousands, rest = divmod(n, 1000)
    return (
        number_to_words(thousands)
        + " thousand"
        + ("" if rest == 0 else " " + number_to_words(rest))
    )


def _time_to_words(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    if minute == 0:
        return number_to_words(hour) + " o'clock"
    if minute < 10:
        return number_to_words(hour) + " oh " + number_to_words(minute)
    return number_to_words(hour) + " " + number_to_words(minute)


def _ordinal_to_words(match: re.Match[str]) -> str:
    n = int(match.group(1))
    return ORDINALS[n - 1] if 1 <= n <= len(ORDINALS) else number_to_words(n)


def normalize_text(text: str) -> str:
    """Lower-case, spell out numbers and times, drop punctuation.

    "Dr. Sharma at 10:30 a.m." -> "doctor sharma at ten thirty am"
    """
    t = text.lower()
    t = re.sub(r"\bdr\.?(?=\s)", "doctor", t)
    t = re.sub(r"\b([ap])\.\s?m\.?", r"\1m", t)
    t = re.sub(r"\b(\d{1,2}):(\d{2})\b", _time_to_words, t)
    t = re.sub(r"\b(\d{1,2})(?:st|nd|rd|th)\b", _ordinal_to_words, t)  # "5th" -> "fifth"
    t = re.sub(r"(\d)([a-z])", r"\1 \2", t)  # "4pm" -> "4 pm"
    t = re.sub(r"\d+", lambda m: " " + number_to_words(int(m.group(0))) + " ", t)
    t = re.sub(r"[^a-z' ]+", " ", t)  # keeps apostrophes (o'clock, that's)
    t = re.sub(r"(^|\s)'+|'+(\s|$)", " ", t)
    return " ".join(t.split())


# ---------------------------------------------------------------------------
# Romanised-Hindi grapheme-to-phoneme fallback (CMU/ARPAbet phones)
# ---------------------------------------------------------------------------

# Longest match first.  Tuned for how Indian callers say romanised Hindi words
# and names ("subah" -> S UH B AH HH, "baje" -> B AH JH EY).
_G2P_RULES: Sequence[tuple[str, tuple[str, ...]]] = sorted(
    [
        ("chh", ("CH",)), ("ch", ("CH",)), ("sh", ("SH",)), ("kh", ("K",)), ("gh", ("G",)),
        ("th", ("T",)), ("dh", ("D",)), ("bh", ("B",)), ("ph", ("F",)), ("jh", ("JH",)),
        ("ng", ("NG",)), ("ck", ("K",)),
        ("aa", ("AA",)), ("ee", ("IY",)), ("ii", ("IY",)), ("oo", ("UW",)), ("uu", ("UW",)),
        ("ai", ("EY",)), ("ei", ("EY",)), ("au", ("AO",)), ("ou", ("AW",)),
        ("a", ("AH",)), ("e", ("EY",)), ("i", ("IH",)), ("o", ("OW",)), ("u", ("UH",)),
        ("b", ("B",)), ("c", ("K",)), ("d", ("D",)), ("f", ("F",)), ("g", ("G",)),
        ("h", ("HH",)), ("j", ("JH",)), ("k", ("K",)), ("l", ("L",)), ("m", ("M",)),
        ("n", ("N",)), ("p", ("P",)), ("q", ("K",)), ("r", ("R",)), ("s", ("S",)),
        ("t", ("T",)), ("v", ("V",)), ("w", ("W",)), ("x", ("K", "S")), ("y", ("Y",)),
        ("z", ("Z",)),
    ],
    key=lambda rule: -len(rule[0]),
)  # fmt: skip
_VOWEL_LETTERS = set("aeiou")


def romanized_g2p(word: str) -> list[str]:
    """Rule-based pronunciation (ARPAbet phones) for a romanised Hindi word or name."""
    w = re.sub(r"[^a-z]", "", word.lower())
    phones: list[str] = []
    i = 0
    while i < len(w):
        # Word-final vowels are long in romanised Hindi: nahi -> IY, kuchh/hindu -> UW.
        last = i == len(w) - 1
        ch = w[i]
        if last and ch == "i":
            phones.append("IY")
            i += 1
            continue
        if (
            ch == "e"
            and w.startswith("h", i + 1)
            and i + 2 < len(w)
            and w[i + 2] not in _VOWEL_LETTERS
        ):
            phones.append("EH")  # "mehta", "rehman": the h only marks the vowel
            i += 2
            continue
        if last and ch == "u":
            phones.append("UW")
            i += 1
            continue
        if (
            ch == "y"
            and (last or w[i + 1] not in _VOWEL_LETTERS)
            and i > 0
            and w[i - 1] not in _VOWEL_LETTERS
        ):
            phones.append("IY")  # "reddy", "shetty"
            i += 1
            continue
        for graph, out in _G2P_RULES:
            if w.startswith(graph, i):
                phones.extend(out)
                i += len(graph)
                break
        else:  # pragma: no cover - every a-z letter has a rule
            i += 1
    # Doubled consonants ("gyarah", "accha") are one phone for the recogniser.
    collapsed = [
        p for k, p in enumerate(phones) if k == 0 or p != phones[k - 1] or p in _VOWEL_PHONES
    ]
    return collapsed


_VOWEL_PHONES = {
    "AA",
    "AE",
    "AH",
    "AO",
    "AW",
    "AY",
    "EH",
    "ER",
    "EY",
    "IH",
    "IY",
    "OW",
    "OY",
    "UH",
    "UW",
}


# ---------------------------------------------------------------------------
# Default clinic vocabulary and corpus templates
# ---------------------------------------------------------------------------

DEFAULT_DOCTOR_NAMES: tuple[str, ...] = (
    "sharma",
    "gupta",
    "mehta",
    "rao",
    "reddy",
    "iyer",
    "singh",
    "patel",
)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august",
    "september", "october", "november", "december",
)  # fmt: skip
ORDINALS = (
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
    "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
    "seventeenth", "eighteenth", "nineteenth", "twentieth", "twenty first", "twenty second",
    "twenty third", "twenty fourth", "twenty fifth", "twenty sixth", "twenty seventh",
    "twenty eighth", "twenty ninth", "thirtieth", "thirty first",
)  # fmt: skip
HOURS = tuple(number_to_words(h) for h in range(1, 13))
HINDI_NUMBERS = (
    "ek",
    "do",
    "teen",
    "char",
    "paanch",
    "chhe",
    "saat",
    "aath",
    "nau",
    "das",
    "gyarah",
    "barah",
)
HINDI_WEEKDAYS = ("somvar", "mangalvar", "budhvar", "guruvar", "shukravar", "shanivar", "ravivar")

# Romanised Hindi words get the G2P pronunciation even when CMUdict has an
# English homograph ("kal" = K AE L in CMUdict, K AH L when said in Hindi).
HINDI_WORDS: frozenset[str] = frozenset(
    {
        "haan", "han", "ha", "ji", "nahi", "nahin", "na", "kal", "parso", "aaj", "subah",
        "shaam", "dopahar", "raat", "baje", "ko", "ka", "ki", "ke", "se", "mein", "hai",
        "hain", "mujhe", "chahiye", "karna", "karni", "karo", "kya", "kab", "theek", "thik",
        "accha", "achha", "sahi", "bilkul", "dhanyavaad", "shukriya", "sawa", "saadhe",
        "dedh", "dhai", "wala", "waala", "aur", "lekin", "agla", "agle", "hafte", "mera",
        "meri", "naam", "samay", "badalna", "radd", "kijiye", "khulta", "khula", "kitne",
        "kitni", "kahan", "pata", "tak", "kaun", "baat", "kisi", "insaan", "karwaiye",
        "galat", "mere", "liye",
    }
    | set(HINDI_NUMBERS)
    | set(HINDI_WEEKDAYS)
)  # fmt: skip

# Templates: {doctor}, {day}, {time}, {weekday}, {date}, {period}, {hday},
# {hperiod}, {hnum} are filled from the slot lists below.
ENGLISH_TEMPLATES: tuple[str, ...] = (
    "i want to book an appointment with doctor {doctor} {day} at {time}",
    "i want to book an appointment with doctor {doctor}",
    "i want to book an appointment for {day}",
    "i would like to book an appointment {day} at {time}",
    "i would like to see doctor {doctor} {day} {period}",
    "book an appointment with doctor {doctor} on {weekday}",
    "can i get an appointment {day} in the {period}",
    "can i see doctor {doctor} at {time}",
    "please cancel my appointment with doctor {doctor} on {weekday}",
    "i want to cancel my appointment {day}",
    "cancel my appointment",
    "can i reschedule to {weekday} at {time}",
    "i want to reschedule my appointment with doctor {doctor} to {day}",
    "please reschedule it to {time}",
    "is doctor {doctor} available {day}",
    "when is doctor {doctor} available",
    "what time is my appointment",
    "on the {date} of {month}",
    "{month} {date} at {time}",
    "at {time}",
    "yes {day} at {time}",
    "no {day} at {time}",
    "okay {day} {period}",
    "{time}",
    "{day}",
    "doctor {doctor}",
    "yes",
    "yes please",
    "yes that is fine",
    "yes that's right",
    "no",
    "no thank you",
    "no that's wrong",
    "okay",
    "ok",
    "hmm",
    "sure",
    "thank you",
    "that is correct",
    "i need to see a doctor",
    "it is urgent",
    "my name is",
    "hello",
    "hello is this the clinic",
    # Clinic information (hours, address, fees, doctors) and asking for a person.
    "what are the clinic timings",
    "what are your clinic hours",
    "what are the clinic hours",
    "what are your timings",
    "when is the clinic open",
    "is the clinic open on {weekday}",
    "is the clinic open {day}",
    "what time do you open",
    "what time do you close",
    "where is the clinic",
    "what is the clinic address",
    "what is your address",
    "where are you located",
    "how do i reach the clinic",
    "how much is the consultation fee",
    "what is the consultation fee",
    "what are the fees",
    "what is the fee for doctor {doctor}",
    "how much does it cost",
    "which doctors are available",
    "which doctors are available {day}",
    "what doctors do you have",
    "i want to talk to the receptionist",
    "can i talk to the receptionist",
    "i want to speak to the receptionist",
    "please connect me to the receptionist",
    "receptionist please",
    "can i talk to a person",
    "can i speak to someone",
    "connect me to the front desk",
    "transfer me to the reception",
    "bye",
    "goodbye",
    "that is all thank you",
)
HINDI_TEMPLATES: tuple[str, ...] = (
    "mujhe doctor {doctor} ka appointment chahiye",
    "mujhe {hday} {hperiod} {hnum} baje appointment chahiye",
    "{hday} {hperiod} {hnum} baje",
    "haan {hday} {hperiod} {hnum} baje",
    "nahi {hday} {hperiod} ko",
    "accha {hday} {hnum} baje",
    "{hnum} baje",
    "{hday} {hperiod} ko",
    "doctor {doctor} {hday} available hain kya",
    "appointment cancel karna hai",
    "appointment reschedule karna hai",
    "mera appointment {hday} ko hai",
    "haan",
    "haan ji",
    "haan theek hai",
    "haan sahi hai",
    "ji",
    "nahi",
    "nahi chahiye",
    "nahi ji",
    "accha",
    "theek hai",
    "shukriya",
    "dhanyavaad",
    "clinic kab khulta hai",
    "clinic kitne baje khulta hai",
    "clinic kab tak khula hai",
    "clinic ka pata kya hai",
    "clinic kahan hai",
    "fees kitni hai",
    "doctor {doctor} ki fees kitni hai",
    "kaun kaun se doctor hain",
    "receptionist se baat karni hai",
    "kisi insaan se baat karwaiye",
)

# Names a caller gives when asked "your name?".  Open vocabulary, so the
# recogniser cannot know them all; a list of common Indian given names and
# surnames, in a search of their own that is used only for that answer
# (``name_sentences``), hears most callers well enough for the agent to read the
# name back and be corrected.  The clinic's other questions never compete with
# these ~250 words (which would cost accuracy and decoding time there).
GIVEN_NAMES: tuple[str, ...] = tuple(
    """
    aarti aditi aisha ananya anita anjali archana asha ayesha bhavna deepa divya durga
    fatima gauri geeta gurpreet harpreet isha jyoti kajal kamala kavita kiran komal lakshmi
    lata madhuri mamta manju mary meena meera megha nandini nazia neha nisha padma pallavi
    parvati payal pooja poonam preeti priya pushpa radha rani rekha ritika ritu riya sana
    sangeeta sapna sarah sarita saroj savita seema shalini shilpa shreya shweta simran sita
    sneha suman sunita swati tanvi usha vandana zara
    aarav abhishek aditya ajay akash ali amit anil ankit arif arjun arun ashish ashok ayaan
    balwinder deepak dev dinesh farhan ganesh gaurav girish gopal gurmeet hari harish harjit
    imran irfan ishaan john joseph kabir karan kishore krishna kuldeep mahesh manish manoj
    mohammed mohan mukesh naresh nikhil prakash pradeep prasad rahul raj raju rakesh ram
    ramesh ravi reyansh rohan rohit sachin sai salman sandeep sanjay satish saurabh shyam
    srinivas sunil sunny suresh tarun varun venkat vijay vikram vinod vishal vivaan yash
    """.split()  # noqa: SIM905
)
SURNAMES: tuple[str, ...] = tuple(
    """
    agarwal ahmed ansari arora banerjee bansal bhat bhatia bhatt bisht bose chatterjee
    chaudhary chauhan chopra chowdhury das desai deshpande devi dhillon dsouza dubey dutta
    fernandes george ghosh gill goyal grewal gupta hegde iyer jadhav jain joshi kapoor kaul
    kaur khan khanna kulkarni kumar kurian malhotra mathur mehta menon mishra mittal
    mukherjee naidu nair negi pandey parikh patel pathak patil pawar pillai pinto qureshi
    raina rao rathore rawat reddy roy saxena sen sethi shah sharma sheikh shinde shukla
    siddiqui singh sinha srivastava thakur thomas tiwari trivedi varghese verma yadav
    """.split()  # noqa: SIM905
)
NAME_TEMPLATES: tuple[str, ...] = (
    "my name is {given} {surname}",
    "my name is {given}",
    "{given} {surname}",
    "{given}",
    "the name is {given} {surname}",
    "it is {given} {surname}",
    "it is for {given}",
    "it is for my son {given}",
    "it is for my daughter {given}",
    "it is for my wife {given}",
    "it is for my husband {given}",
    "it is for my mother {given}",
    "it is for my father {given}",
    "no my name is {given} {surname}",
    "no it is {given} {surname}",
    "mera naam {given} {surname} hai",
    "mera naam {given} hai",
    "naam {given} {surname} hai",
    "{given} {surname} ke liye",
    "nahi mera naam {given} {surname} hai",
)
# What else is said at "your name?" / "is the name X?": kept in that search so a
# "yes", a "no" or a change of mind is still heard there.
NAME_ANSWERS: tuple[str, ...] = (
    "yes",
    "yes that is right",
    "yes that's right",
    "no",
    "no that's wrong",
    "no that is wrong",
    "haan",
    "haan ji",
    "haan sahi hai",
    "nahi",
    "nahi galat hai",
    "it is for me",
    "for me",
    "mere liye",
    "someone else",
    "i want to talk to the receptionist",
    "receptionist se baat karni hai",
    "bye",
    "that is all thank you",
)

SLOT_VALUES: Mapping[str, tuple[str, ...]] = {
    "day": (
        "today",
        "tomorrow",
        "day after tomorrow",
        "this week",
        "next week",
        *(f"on {d}" for d in WEEKDAYS),
        *(f"next {d}" for d in WEEKDAYS),
    ),
    "weekday": WEEKDAYS,
    "period": ("morning", "afternoon", "evening"),
    "time": tuple(f"{h} am" for h in HOURS)
    + tuple(f"{h} pm" for h in HOURS)
    + tuple(f"{h} o'clock" for h in HOURS)
    # With "thirty pm" alone in the corpus, "nine thirty am" was heard as "nine
    # thirty pm" every time.  (Both halves for fifteen and forty five too cost more
    # word accuracy elsewhere than they gained: those are heard right already.)
    + tuple(f"{h} thirty" for h in HOURS)
    + tuple(f"{h} thirty am" for h in HOURS)
    + tuple(f"{h} thirty pm" for h in HOURS)
    + tuple(f"{h} fifteen" for h in HOURS)
    + tuple(f"{h} forty five" for h in HOURS)
    + tuple(f"half past {h}" for h in HOURS),
    "date": ORDINALS,
    "month": MONTHS,
    "hday": ("kal", "parso", "aaj", "agle hafte", *HINDI_WEEKDAYS),
    "hperiod": ("subah", "dopahar", "shaam", "raat"),
    "hnum": (*HINDI_NUMBERS, "saadhe das", "sawa gyarah", "dedh", "dhai"),
    "given": GIVEN_NAMES,
    "surname": SURNAMES,
}


def expand_templates(templates: Iterable[str], slots: Mapping[str, Sequence[str]]) -> list[str]:
    """Fill each template so every slot value appears at least once in it.

    Why not the full cross product: it explodes (templates x names x days x
    times) while a bigram model only needs each value once per context.
    Slots advance together with different offsets; since slot lists have
    different lengths, neighbouring values still pair up in many combinations.
    """
    out: list[str] = []
    for template in templates:
        names = re.findall(r"\{(\w+)\}", template)
        if not names:
            out.append(template)
            continue
        n = max(len(slots[name]) for name in names)
        for i in range(n):
            values = {
                name: slots[name][(i + 3 * k) % len(slots[name])] for k, name in enumerate(names)
            }
            out.append(template.format(**values))
    return out


@dataclass
class ClinicVocabulary:
    """What the recogniser should expect on this clinic's line.

    ``phrases`` are added verbatim (weighted), ``doctor_names`` fill the
    templates, ``pronunciations`` override or add dictionary entries.
    """

    phrases: Sequence[str] = ()
    doctor_names: Sequence[str] = DEFAULT_DOCTOR_NAMES
    pronunciations: Mapping[str, Sequence[str]] = field(default_factory=dict)
    include_base_corpus: bool = True
    include_hindi: bool = True
    phrase_weight: int = 3

    def sentences(self) -> list[str]:
        corpus: list[str] = []
        names = tuple(normalize_text(n) for n in self.doctor_names) or DEFAULT_DOCTOR_NAMES
        slots = {**SLOT_VALUES, "doctor": names}
        if self.include_base_corpus:
            corpus.extend(expand_templates(ENGLISH_TEMPLATES, slots))
            if self.include_hindi:
                corpus.extend(expand_templates(HINDI_TEMPLATES, slots))
        for phrase in self.phrases:
            norm = normalize_text(phrase)
            if norm:
                corpus.extend([norm] * max(1, self.phrase_weight))
        return [normalize_text(s) for s in corpus]

    def name_sentences(self) -> list[str]:
        """The corpus of the search used when the caller is asked for a name.

        The same for every clinic (the recogniser builds its model once per
        process); answers that are not names are weighted like clinic phrases.
        """
        return list(_name_corpus(max(1, self.phrase_weight)))

    def g2p_words(self) -> set[str]:
        """Words whose Indian pronunciation should be added from G2P."""
        names = {w for n in self.doctor_names for w in normalize_text(n).split()}
        return set(HINDI_WORDS) | names | set(GIVEN_NAMES) | set(SURNAMES)

    def words(self) -> set[str]:
        """Every word either search can produce (one pronunciation dictionary serves both)."""
        return (
            {w for s in self.sentences() for w in s.split()}
            | _name_words(max(1, self.phrase_weight))
            | {w.lower() for w in self.pronunciations}
        )


@lru_cache(maxsize=4)
def _name_corpus(answer_weight: int) -> tuple[str, ...]:
    corpus = [normalize_text(s) for s in expand_templates(NAME_TEMPLATES, SLOT_VALUES)]
    # Every given name before every surname (already in normal form): the trigram
    # model keeps little mass for unseen pairs, and a surname heard after the
    # "wrong" given name was replaced by one seen there ("Vikram Singh" -> "Vikram hai").
    corpus += [f"{given} {surname}" for given in GIVEN_NAMES for surname in SURNAMES]
    corpus += [normalize_text(answer) for answer in NAME_ANSWERS] * answer_weight
    return tuple(corpus)


@lru_cache(maxsize=4)
def _name_words(answer_weight: int) -> frozenset[str]:
    return frozenset(w for s in _name_corpus(answer_weight) for w in s.split())
