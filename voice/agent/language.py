"""Which language a caller speaks, and one canonical spelling of what they said.

Callers of an Indian clinic speak English, Hindi and everything in between, and
the same words reach the agent in three shapes: Devanagari (typed chat, Hindi
recognisers), romanised Hindi with free spelling ("subah"/"subha", "nahi"/"nhi")
and English recogniser output ("doctor sharma ten o'clock"). Writing every rule
three times would be unmaintainable, so each word is reduced to one canonical
romanised token (``tokenize``): Devanagari through a small lexicon of the words
a clinic call uses, then a rule-based transliteration (with Hindi schwa deletion,
so "मेहता" becomes "mehta"); romanised spellings through a variant table. The
rules in ``dates`` and ``nlu`` are written once, against the canonical tokens,
while ``Token.text`` keeps what the caller said (a name is stored as spoken).

No ORM and no Django here: pure functions, tested on their own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

EN = "en"
HI = "hi"
HINGLISH = "hi-en"
LANGUAGES = (EN, HI, HINGLISH)

# --- Devanagari ---------------------------------------------------------------------------

_DEVANAGARI_DIGITS = str.maketrans("०१२३४५६७८९", "0123456789")

# Whole words first: what a clinic call says, spelled the way the rules expect.
DEVANAGARI_LEXICON: dict[str, str] = {
    # days and times
    "आज": "aaj", "कल": "kal", "परसों": "parso", "परसो": "parso", "सुबह": "subah",
    "सुबे": "subah", "सवेरे": "subah", "दोपहर": "dopahar", "शाम": "shaam", "रात": "raat",
    "बजे": "baje", "बजकर": "bajkar", "बज": "baje", "साढ़े": "saadhe", "सवा": "sawa",
    "पौने": "paune", "डेढ़": "dedh", "ढाई": "dhai", "मिनट": "minute", "तारीख": "tarikh",
    "तारीख़": "tarikh", "तारिख": "tarikh", "अगले": "agle", "अगला": "agla", "अगली": "agli",
    "हफ्ते": "hafte", "हफ़्ते": "hafte", "हफ्ता": "hafta", "सप्ताह": "hafte", "दिन": "din",
    "सोमवार": "somvar", "मंगलवार": "mangalvar", "बुधवार": "budhvar", "गुरुवार": "guruvar",
    "बृहस्पतिवार": "guruvar", "शुक्रवार": "shukravar", "शनिवार": "shanivar",
    "रविवार": "ravivar", "इतवार": "ravivar",
    "जनवरी": "january", "फरवरी": "february", "फ़रवरी": "february", "मार्च": "march",
    "अप्रैल": "april", "मई": "may", "जून": "june", "जुलाई": "july", "अगस्त": "august",
    "सितंबर": "september", "सितम्बर": "september", "अक्टूबर": "october",
    "अक्तूबर": "october", "नवंबर": "november", "नवम्बर": "november",
    "दिसंबर": "december", "दिसम्बर": "december",
    # numbers
    "एक": "ek", "दो": "do", "तीन": "teen", "चार": "char", "पांच": "paanch",
    "पाँच": "paanch", "छह": "chhe", "छः": "chhe", "सात": "saat", "आठ": "aath", "नौ": "nau",
    "दस": "das", "ग्यारह": "gyarah", "बारह": "barah",
    "पहला": "pehla", "पहली": "pehli", "पहले": "pehle", "दूसरा": "doosra", "दूसरी": "doosri",
    "दूसरे": "doosre", "तीसरा": "teesra", "तीसरी": "teesri", "चौथा": "chautha",
    "चौथी": "chauthi", "आखिरी": "aakhri", "आख़िरी": "aakhri", "अंतिम": "aakhri",
    # yes, no, politeness, endings
    "हाँ": "haan", "हां": "haan", "हा": "haan", "जी": "ji", "जी़": "ji", "नहीं": "nahi",
    "नही": "nahi", "ना": "na", "न": "na", "मत": "mat", "ठीक": "theek", "बिल्कुल": "bilkul",
    "बिलकुल": "bilkul", "सही": "sahi", "गलत": "galat", "ग़लत": "galat", "ज़रूर": "zaroor",
    "जरूर": "zaroor", "चलेगा": "chalega", "धन्यवाद": "dhanyavaad", "शुक्रिया": "shukriya",
    "बस": "bas", "नमस्ते": "namaste", "नमस्कार": "namaskar", "हेलो": "hello",
    "हैलो": "hello", "अलविदा": "alvida",
    # people, clinic, actions
    "डॉक्टर": "doctor", "डाक्टर": "doctor", "डॉक्टर्स": "doctors", "डॉ": "doctor",
    "डा": "doctor", "डॉ.": "doctor", "अपॉइंटमेंट": "appointment", "अपॉइन्टमेंट": "appointment",
    "अपोइंटमेंट": "appointment", "अपाइंटमेंट": "appointment", "एपॉइंटमेंट": "appointment",
    "बुक": "book", "बुकिंग": "booking", "कैंसल": "cancel", "कैन्सल": "cancel",
    "रद्द": "radd", "बदल": "badal", "बदलना": "badalna", "बदलें": "badle", "बदलो": "badlo",
    "बदलकर": "badalkar", "शिफ्ट": "shift", "मिलना": "milna", "मिलने": "milne",
    "दिखाना": "dikhana", "दिखाने": "dikhane", "चाहिए": "chahiye", "चाहिये": "chahiye",
    "करना": "karna", "करनी": "karni", "करो": "karo", "करें": "karein", "कर": "kar",
    "हिंदी": "hindi", "हिन्दी": "hindi", "अंग्रेज़ी": "english", "अंग्रेजी": "english",
    "इंग्लिश": "english", "कीजिए": "kijiye", "कीजिये": "kijiye", "दीजिए": "dijiye", "दीजिये": "dijiye",
    "दें": "dein", "दो।": "do", "है": "hai", "हैं": "hain", "हूँ": "hoon", "हूं": "hoon",
    "था": "tha", "थी": "thi", "मुझे": "mujhe", "मेरा": "mera", "मेरी": "meri", "मेरे": "mere",
    "मैं": "main", "हम": "hum", "आप": "aap", "आपका": "aapka", "आपकी": "aapki",
    "नाम": "naam", "से": "se", "को": "ko", "का": "ka", "की": "ki", "के": "ke", "में": "mein",
    "पर": "par", "और": "aur", "या": "ya", "भी": "bhi", "लिए": "liye", "लिये": "liye",
    "साथ": "saath", "वाला": "wala", "वाली": "wali", "वाले": "wale", "क्या": "kya",
    "कब": "kab", "कहाँ": "kahan", "कहां": "kahan", "कितना": "kitna", "कितने": "kitne",
    "कितनी": "kitni", "कौन": "kaun", "कौनसा": "kaunsa", "कौनसी": "kaunsi", "किस": "kis",
    "फीस": "fees", "फ़ीस": "fees", "शुल्क": "fees", "पैसे": "paise", "रुपये": "rupaye",
    "पता": "pata", "एड्रेस": "address", "समय": "samay", "टाइम": "time", "टाइमिंग": "timing",
    "खुलता": "khulta", "खुला": "khula", "खुली": "khuli", "बंद": "band",
    "खाली": "khaali", "उपलब्ध": "available", "इंसान": "insaan", "आदमी": "aadmi",
    "व्यक्ति": "insaan", "रिसेप्शनिस्ट": "receptionist", "रिसेप्शन": "reception",
    "ऑपरेटर": "operator", "बात": "baat", "किसी": "kisi", "कोई": "koi", "और।": "aur",
    "मरीज": "mareez", "मरीज़": "mareez", "बच्चे": "bachche", "बच्चों": "bachchon",
    "बच्चा": "bachcha", "दिल": "dil", "त्वचा": "twacha", "चमड़ी": "skin",
}  # fmt: skip

_CONSONANTS = {
    "क": "k", "ख": "kh", "ग": "g", "घ": "gh", "ङ": "n", "च": "ch", "छ": "chh", "ज": "j",
    "झ": "jh", "ञ": "n", "ट": "t", "ठ": "th", "ड": "d", "ढ": "dh", "ण": "n", "त": "t",
    "थ": "th", "द": "d", "ध": "dh", "न": "n", "प": "p", "फ": "ph", "ब": "b", "भ": "bh",
    "म": "m", "य": "y", "र": "r", "ल": "l", "ळ": "l", "व": "v", "श": "sh", "ष": "sh",
    "स": "s", "ह": "h",
}  # fmt: skip
_NUKTA_FORMS = {"k": "q", "kh": "kh", "g": "g", "j": "z", "d": "r", "dh": "rh", "ph": "f"}
_INDEPENDENT_VOWELS = {
    "अ": "a", "आ": "aa", "इ": "i", "ई": "ee", "उ": "u", "ऊ": "oo", "ऋ": "ri", "ए": "e",
    "ऐ": "ai", "ओ": "o", "औ": "au", "ऑ": "o", "ऍ": "e",
}  # fmt: skip
_MATRAS = {
    "ा": "aa", "ि": "i", "ी": "ee", "ु": "u", "ू": "oo", "ृ": "ri", "े": "e", "ै": "ai",
    "ो": "o", "ौ": "au", "ॉ": "o", "ॅ": "e",
}  # fmt: skip
_VIRAMA, _NUKTA = "्", "़"
_NASALS = {"ं", "ँ"}
_VISARGA = "\u0903"  # Devanagari visarga


def _is_devanagari(ch: str) -> bool:
    return "\u0900" <= ch <= "\u097f"


def transliterate(word: str) -> str:
    """Romanises one Devanagari word the way Indians type Hindi ("शर्मा" -> "sharma").

    Schwa deletion: the inherent "a" of a consonant is dropped at the end of a word
    and between a vowel and a consonant carrying its own vowel ("मेहता" -> "mehta",
    "सोमवार" -> "somvar"), which is what makes spoken names match typed ones.
    Long vowels at the end of a word are shortened ("प्रिया" -> "priya").
    """
    word = unicodedata.normalize("NFD", word)
    # units: [roman, vowel] where vowel None = inherent schwa, "" = none (virama)
    units: list[list] = []
    for ch in word:
        if ch in _CONSONANTS:
            units.append(["C", _CONSONANTS[ch], None])
        elif ch == _NUKTA and units and units[-1][0] == "C":
            units[-1][1] = _NUKTA_FORMS.get(units[-1][1], units[-1][1])
        elif ch in _MATRAS and units and units[-1][0] == "C":
            units[-1][2] = _MATRAS[ch]
        elif ch == _VIRAMA and units and units[-1][0] == "C":
            units[-1][2] = ""
        elif ch in _INDEPENDENT_VOWELS:
            units.append(["V", _INDEPENDENT_VOWELS[ch], ""])
        elif ch in _NASALS:
            units.append(["N", "n", ""])
        elif ch == _VISARGA:
            units.append(["N", "h", ""])
    # schwa deletion, left to right
    for i, unit in enumerate(units):
        if unit[0] != "C" or unit[2] is not None:
            continue
        last = i == len(units) - 1 or all(u[0] == "N" for u in units[i + 1 :])
        if last and i > 0:
            unit[2] = ""
            continue
        # after a nasal ("अंजलि") the consonant closes a cluster: its schwa stays
        prev_has_vowel = i > 0 and (
            units[i - 1][0] == "V" or (units[i - 1][0] == "C" and units[i - 1][2])
        )
        nxt = units[i + 1] if i + 1 < len(units) else None
        if prev_has_vowel and nxt is not None and nxt[0] == "C" and nxt[2]:
            unit[2] = ""
    out = []
    for i, (kind, roman, vowel) in enumerate(units):
        if kind == "C":
            out.append(roman + ("a" if vowel is None else vowel))
        elif kind == "N" and roman == "n":
            nxt = units[i + 1][1] if i + 1 < len(units) else ""
            out.append("m" if nxt[:1] in ("p", "b", "m") else "n")
        else:
            out.append(roman)
    text = "".join(out)
    for long, short in (("aa", "a"), ("ee", "i"), ("oo", "u")):
        if text.endswith(long) and len(text) > 3:
            text = text[: -len(long)] + short
    return text


# --- Romanised spelling variants ----------------------------------------------------------

ROMAN_VARIANTS: dict[str, str] = {
    "subha": "subah", "suba": "subah", "subeh": "subah", "savere": "subah", "sawere": "subah",
    "sham": "shaam", "shyam": "shaam", "shame": "shaam", "dopehar": "dopahar",
    "dophar": "dopahar", "dopher": "dopahar", "dupahar": "dopahar", "dopeher": "dopahar",
    "rat": "raat", "parson": "parso", "parsun": "parso", "parsoon": "parso", "parsho": "parso",
    "parsu": "parso", "kl": "kal", "kaal": "kal", "aj": "aaj", "bje": "baje", "baj": "baje",
    "bajey": "baje", "bjay": "baje", "baji": "baje", "saade": "saadhe", "sadhe": "saadhe",
    "sare": "saadhe", "saare": "saadhe", "sarhe": "saadhe", "saddhe": "saadhe",
    "sava": "sawa", "pone": "paune", "pauney": "paune", "derh": "dedh", "der": "dedh",
    "dhaai": "dhai", "tareekh": "tarikh", "tarik": "tarikh", "tariq": "tarikh",
    "taarikh": "tarikh", "tarikh": "tarikh", "agli": "agli", "aagle": "agle",
    "hafta": "hafta", "hapte": "hafte", "week": "week",
    "somwar": "somvar", "somvaar": "somvar", "mangalwar": "mangalvar",
    "mangalvaar": "mangalvar", "budhwar": "budhvar", "budhvaar": "budhvar",
    "guruwar": "guruvar", "guruvaar": "guruvar", "veervar": "guruvar", "virvar": "guruvar",
    "brihaspativar": "guruvar", "shukrawar": "shukravar", "sukravar": "shukravar",
    "shukravaar": "shukravar", "shaniwar": "shanivar", "shanivaar": "shanivar",
    "saniwar": "shanivar", "raviwar": "ravivar", "ravivaar": "ravivar", "itwar": "ravivar",
    "itvaar": "ravivar", "etwar": "ravivar", "itvar": "ravivar",
    "haa": "haan", "han": "haan", "ha": "haan", "haanji": "haanji", "hanji": "haanji",
    "hn": "haan", "hmm": "hmm", "nahin": "nahi", "nhi": "nahi", "nahee": "nahi",
    "nai": "nahi", "nehi": "nahi", "thik": "theek", "theekh": "theek", "thick": "theek",
    "accha": "achha", "acha": "achha", "achchha": "achha", "bilkool": "bilkul",
    "jarur": "zaroor", "zarur": "zaroor", "jaroor": "zaroor",
    "dhanyawad": "dhanyavaad", "dhanyavad": "dhanyavaad", "dhanyawaad": "dhanyavaad",
    "dhanywad": "dhanyavaad", "danyavad": "dhanyavaad", "shukria": "shukriya",
    "sukriya": "shukriya", "namastey": "namaste", "namaskaar": "namaskar",
    "dr": "doctor", "doc": "doctor", "daktar": "doctor", "dactor": "doctor",
    "docter": "doctor", "doctr": "doctor", "doctors": "doctors", "drs": "doctors",
    "appoinment": "appointment", "apointment": "appointment", "appointmnt": "appointment",
    "appt": "appointment", "apptmt": "appointment", "appoint": "appointment",
    "appointments": "appointments", "tomorow": "tomorrow", "tmrw": "tomorrow",
    "tommorow": "tomorrow", "tommorrow": "tomorrow", "tmr": "tomorrow", "2moro": "tomorrow",
    "tonite": "tonight", "mrng": "morning", "evng": "evening", "eve": "evening",
    "mujhse": "mujhse", "muje": "mujhe", "mujhey": "mujhe", "mera": "mera", "meraa": "mera",
    "mere": "mere", "chahie": "chahiye", "chaiye": "chahiye", "chahiyae": "chahiye",
    "chaahiye": "chahiye", "chahye": "chahiye", "kijie": "kijiye", "kijiyega": "kijiye",
    "dijie": "dijiye", "dijiyega": "dijiye", "kardo": "kar do", "kardijiye": "kar dijiye",
    "kardena": "kar dena", "krdo": "kar do", "kr": "kar", "karo": "karo",
    "milna": "milna", "milnaa": "milna", "dikhana": "dikhana", "dikhaana": "dikhana",
    "saath": "saath", "sath": "saath", "saat": "saat", "liye": "liye", "lie": "liye",
    "wala": "wala", "waala": "wala", "vala": "wala", "wali": "wali", "waali": "wali",
    "naam": "naam", "nam": "naam", "insan": "insaan", "aadmi": "aadmi", "admi": "aadmi",
    "baat": "baat", "bat": "baat", "pehla": "pehla", "pahla": "pehla", "pehela": "pehla",
    "pahle": "pehle", "pehli": "pehli", "pahli": "pehli", "dusra": "doosra",
    "doosra": "doosra", "dusri": "doosri", "doosri": "doosri", "dusre": "doosre",
    "tisra": "teesra", "teesra": "teesra", "tisri": "teesri", "chautha": "chautha",
    "akhri": "aakhri", "aakhiri": "aakhri", "akhiri": "aakhri", "antim": "aakhri",
    "fee": "fees", "fess": "fees", "kitne": "kitne", "kitna": "kitna", "kaha": "kahan",
    "kahaan": "kahan", "khaali": "khaali", "khali": "khaali", "radd": "radd", "rad": "radd",
    "cancle": "cancel", "cancell": "cancel", "cansel": "cancel", "cancelled": "cancel",
    "canceled": "cancel", "cancelling": "cancel", "canceling": "cancel",
    "cancellation": "cancel", "rescedule": "reschedule", "reshedule": "reschedule",
    "rescheduled": "reschedule", "rescheduling": "reschedule", "reschdule": "reschedule",
    "badalna": "badalna", "badalni": "badalna", "badlna": "badalna", "badlo": "badlo",
    "booked": "booked", "bukk": "book", "buk": "book", "chaar": "char", "panch": "paanch",
    "chhah": "chhe", "che": "chhe", "chah": "chhe", "aath": "aath", "gyara": "gyarah",
    "gyaarah": "gyarah", "bara": "barah", "baarah": "barah", "dus": "das",
    "ek": "ek", "teen": "teen", "okk": "ok", "okay": "ok", "okey": "ok", "k": "ok",
    "y": "yes", "n": "no", "yess": "yes", "yeah": "yes", "yea": "yes", "yep": "yes",
    "yup": "yes", "ya": "ya",
    "nope": "no", "nah": "no", "pls": "please", "plz": "please", "thanku": "thank you",
    "thankyou": "thank you", "thanx": "thanks", "thnx": "thanks", "ty": "thanks",
    "byee": "bye", "bbye": "bye", "goodbye": "bye",
}  # fmt: skip

_ORDINAL_SUFFIX = re.compile(r"^(\d{1,2})(st|nd|rd|th)$")


@dataclass(frozen=True)
class Token:
    text: str  # as the caller said it (original script and case)
    canon: str  # canonical romanised lower-case form
    devanagari: bool = False


_TOKEN_RE = re.compile(
    r"[\u0900-\u0963\u0966-\u097f\u200c\u200d]+"  # a Devanagari word (no danda)
    r"|\d{1,2}[:.]\d{2}(?!\d)"  # 10:30, 10.30
    r"|\d+(?:st|nd|rd|th)?"
    r"|[^\W\d_]+(?:'[^\W\d_]+)?",  # Latin (and other) letters, with an apostrophe
    re.UNICODE,
)


def _prepare(text: str) -> str:
    text = unicodedata.normalize("NFC", text or "").translate(_DEVANAGARI_DIGITS)
    text = text.replace("\u2019", "'").replace("\u0964", " . ").replace("\u0965", " . ")
    text = re.sub(r"\b([ap])\.\s?m\b\.?", r"\1m", text, flags=re.IGNORECASE)
    text = re.sub(r"\bo'?\s?clock\b", "oclock", text, flags=re.IGNORECASE)
    return text


def canonical_word(word: str) -> str:
    """The canonical form of one word (see the module docstring)."""
    if any(_is_devanagari(ch) for ch in word):
        stripped = word.strip("\u200c\u200d")
        if stripped in DEVANAGARI_LEXICON:
            return DEVANAGARI_LEXICON[stripped]
        base = unicodedata.normalize("NFC", stripped)
        return DEVANAGARI_LEXICON.get(base) or transliterate(base)
    lower = word.lower()
    match = _ORDINAL_SUFFIX.match(lower)
    if match:
        return f"{int(match[1])}th"
    if re.fullmatch(r"\d{1,2}\.\d{2}", lower):
        lower = lower.replace(".", ":")
    return ROMAN_VARIANTS.get(lower, lower)


def tokenize(text: str) -> list[Token]:
    """Words of ``text`` with their canonical forms; multi-word variants are split."""
    tokens: list[Token] = []
    for raw in _TOKEN_RE.findall(_prepare(text)):
        canon = canonical_word(raw)
        dev = any(_is_devanagari(ch) for ch in raw)
        for part in canon.split() or [canon]:
            tokens.append(Token(raw, part, dev))
    return tokens


def canonical(text: str) -> str:
    return " ".join(t.canon for t in tokenize(text))


# --- Language detection ------------------------------------------------------------------

# Romanised words that are Hindi and (practically) never English.
HINDI_MARKERS = frozenset(
    """
    aaj kal parso subah dopahar shaam raat baje bajkar saadhe sawa paune dedh dhai tarikh
    agle agla agli hafte hafta somvar mangalvar budhvar guruvar shukravar shanivar ravivar
    mujhe mujhse mera meri mere hum hamara hamari humein aap aapka aapki aapke apna apni
    hai hain hoon hu tha thi ho hoga hogi chahiye chahte chahti karna karni karo kariye
    kijiye dijiye karein kar dena dein diya karwa karwana milna milne milega milenge mil
    dikhana dikhane haan haanji ji nahi na mat theek achha sahi bilkul zaroor chalega galat
    dhanyavaad shukriya bas namaste namaskar ke ka ki ko se mein saath liye wala wali wale
    kya kab kahan kaise kitna kitne kitni kaun kaunsa kaunsi kis kisi koi kuch aur lekin bhi
    naam batao bataiye bataye baat insaan aadmi abhi jaldi pehla pehli pehle doosra doosri
    doosre teesra teesri chautha aakhri radd badal badalna badlo badle badalkar khaali
    khulta khula khuli band paise rupaye pata samay mareez bachche bachchon bachcha dil
    twacha yeh ye woh vo wahi jo tab phir sakta sakti sakte raha rahi rahe gaya gayi hua
    huyi hui ek teen char paanch chhe aath nau das gyarah barah rehne alvida
    """.split()  # noqa: SIM905 - a word list reads better as text
)
# English words that never occur in romanised Hindi.
ENGLISH_MARKERS = frozenset(
    """
    i i'm im want would like need to the a an with my me is are am was for please can
    could will tomorrow today tonight yes what when where how which who this that that's
    there it it's on of in at and or but not don't dont have has book booking morning
    evening afternoon night next day week thank thanks you your our we us
    monday tuesday wednesday thursday friday saturday sunday available free slot see
    help hello bye goodbye name change move cancel reschedule fees fee address open
    """.split()  # noqa: SIM905
)
# Said in all three languages: no evidence either way.
NEUTRAL = frozenset({"ok", "doctor", "appointment", "hmm", "hello", "sorry", "do", "main", "to"})


@dataclass(frozen=True)
class LanguageGuess:
    language: str | None  # None: no evidence (digits, names, "ok")
    devanagari: bool = False
    hindi_words: int = 0
    english_words: int = 0
    word_count: int = 0

    @property
    def strong(self) -> bool:
        """Enough evidence to switch the reply language mid-call."""
        return self.devanagari or self.word_count >= 3


def detect_language(text: str) -> LanguageGuess:
    """``hi`` for Devanagari, ``hi-en`` for romanised Hindi or Hinglish, ``en`` for English.

    Any romanised Hindi word makes the utterance Hinglish, even inside an English
    sentence ("Dr Sharma ke saath tomorrow"): a caller who mixes wants a mixed reply.
    """
    letters = [ch for ch in text if ch.isalpha()]
    dev = sum(1 for ch in letters if _is_devanagari(ch))
    tokens = tokenize(text)
    if letters and dev / len(letters) >= 0.3:
        return LanguageGuess(HI, True, dev, 0, len(tokens))
    words = [t.canon for t in tokens if not t.devanagari]
    hindi = sum(1 for w in words if w in HINDI_MARKERS and w not in NEUTRAL)
    english = sum(1 for w in words if w in ENGLISH_MARKERS and w not in NEUTRAL)
    if hindi:
        return LanguageGuess(HINGLISH, False, hindi, english, len(tokens))
    if english:
        return LanguageGuess(EN, False, 0, english, len(tokens))
    return LanguageGuess(None, False, 0, 0, len(tokens))


# --- Fuzzy matching of spoken names ---------------------------------------------------------

_KEY_RULES = (
    ("aa", "a"), ("ee", "i"), ("oo", "u"), ("ph", "f"), ("w", "v"), ("z", "j"), ("q", "k"),
    ("ck", "k"), ("sh", "s"), ("chh", "c"), ("ch", "c"), ("kh", "k"), ("gh", "g"),
    ("th", "t"), ("dh", "d"), ("bh", "b"), ("jh", "j"), ("ey", "e"), ("ay", "e"),
)  # fmt: skip


# Both are pure functions of short strings, called for every spoken word against every
# doctor's name on every turn (a third of the agent's CPU on a busy core): cached.
@lru_cache(maxsize=8192)
def phonetic_key(word: str) -> str:
    """A forgiving spelling of a name: aspiration, vowel length, doubling and w/v ignored.

    "Sharma", "sharmaa", "शर्मा" -> "sarma"; "Reddy"/"Redi" -> "redi"; "Mehta"/"मेहता" -> "mehta".
    """
    w = canonical_word(word) if any(_is_devanagari(c) for c in word) else word.lower()
    w = re.sub(r"[^a-z]", "", w)
    for old, new in _KEY_RULES:
        w = w.replace(old, new)
    w = re.sub(r"(.)\1+", r"\1", w)
    if w.endswith("y"):
        w = w[:-1] + "i"
    if len(w) > 3 and w.endswith("h"):
        w = w[:-1]
    return w


@lru_cache(maxsize=32768)
def similar(a: str, b: str) -> float:
    """How alike two spoken words are, 0..1, on their phonetic keys."""
    ka, kb = phonetic_key(a), phonetic_key(b)
    if not ka or not kb:
        return 0.0
    if ka == kb:
        return 1.0
    if min(len(ka), len(kb)) < 4:
        return 0.0  # short words must match exactly ("rao" is not "raat")
    return SequenceMatcher(None, ka, kb).ratio()


def best_matches(spoken: Iterable[str], candidates: Iterable[str], threshold: float = 0.8):
    """(candidate, score) pairs for candidates that some spoken word resembles."""
    spoken = list(spoken)
    out = []
    for cand in candidates:
        score = max((similar(s, cand) for s in spoken), default=0.0)
        if score >= threshold:
            out.append((cand, score))
    return out
