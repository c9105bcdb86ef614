"""The words of every message: built-in templates, placeholders, local dates and times.

Clinics may replace the four appointment messages (``MessageTemplate``); the replies
to a patient's text are fixed here. English, Hindi in Devanagari, and Hinglish in
Latin letters, which is how most patients in India type Hindi on a phone.
"""

import string
from datetime import datetime

ENGLISH, HINDI, HINGLISH = "en", "hi", "hi-en"

CONFIRMATION = "confirmation"
RESCHEDULE = "reschedule"
CANCELLATION = "cancellation"
REMINDER = "reminder"
EDITABLE_KINDS = (CONFIRMATION, RESCHEDULE, CANCELLATION, REMINDER)

# Twilio's limit for one message (it splits it into segments).
MAX_BODY_LENGTH = 1600

_COMMON = frozenset({"patient_name", "clinic_name", "doctor_name", "date", "time", "clinic_phone"})
PLACEHOLDERS: dict[str, frozenset[str]] = {
    CONFIRMATION: _COMMON,
    RESCHEDULE: _COMMON | {"old_date", "old_time"},
    CANCELLATION: _COMMON,
    REMINDER: _COMMON,
}

DEFAULTS: dict[str, dict[str, str]] = {
    CONFIRMATION: {
        ENGLISH: (
            "Hi {patient_name}, your appointment with {doctor_name} at {clinic_name} is "
            "confirmed for {date} at {time}. Reply C to cancel, R to reschedule."
        ),
        HINDI: (
            "नमस्ते {patient_name}, {clinic_name} में {doctor_name} के साथ आपकी अपॉइंटमेंट "
            "{date} को {time} बजे पक्की है। रद्द करने के लिए C, समय बदलने के लिए R भेजें।"
        ),
        HINGLISH: (
            "Namaste {patient_name}, {clinic_name} mein {doctor_name} ke saath aapka "
            "appointment {date} ko {time} baje confirm hai. Cancel ke liye C, time badalne "
            "ke liye R bhejein."
        ),
    },
    RESCHEDULE: {
        ENGLISH: (
            "Hi {patient_name}, your appointment at {clinic_name} is now on {date} at {time} "
            "with {doctor_name} (was {old_date} at {old_time}). Reply C to cancel, R to "
            "reschedule."
        ),
        HINDI: (
            "नमस्ते {patient_name}, {clinic_name} में आपकी अपॉइंटमेंट अब {date} को {time} बजे "
            "{doctor_name} के साथ है (पहले {old_date}, {old_time} बजे)। रद्द करने के लिए C, "
            "समय बदलने के लिए R भेजें।"
        ),
        HINGLISH: (
            "Namaste {patient_name}, {clinic_name} mein aapka appointment ab {date} ko {time} "
            "baje {doctor_name} ke saath hai (pehle {old_date}, {old_time} baje). Cancel ke "
            "liye C, time badalne ke liye R bhejein."
        ),
    },
    CANCELLATION: {
        ENGLISH: (
            "Hi {patient_name}, your appointment with {doctor_name} at {clinic_name} on "
            "{date} at {time} is cancelled. Call {clinic_phone} to book again."
        ),
        HINDI: (
            "नमस्ते {patient_name}, {clinic_name} में {doctor_name} के साथ {date} को {time} "
            "बजे की आपकी अपॉइंटमेंट रद्द हो गई है। दोबारा बुक करने के लिए {clinic_phone} पर "
            "कॉल करें।"
        ),
        HINGLISH: (
            "Namaste {patient_name}, {clinic_name} mein {doctor_name} ke saath {date} ko "
            "{time} baje ka aapka appointment cancel ho gaya hai. Dobara book karne ke liye "
            "{clinic_phone} par call karein."
        ),
    },
    REMINDER: {
        ENGLISH: (
            "Reminder: {patient_name}, your appointment with {doctor_name} at {clinic_name} "
            "is on {date} at {time}. Reply C to cancel, R to reschedule."
        ),
        HINDI: (
            "याद दिला दें: {patient_name}, {clinic_name} में {doctor_name} के साथ आपकी "
            "अपॉइंटमेंट {date} को {time} बजे है। रद्द करने के लिए C, समय बदलने के लिए R भेजें।"
        ),
        HINGLISH: (
            "Yaad dila dein: {patient_name}, {clinic_name} mein {doctor_name} ke saath aapka "
            "appointment {date} ko {time} baje hai. Cancel ke liye C, time badalne ke liye R "
            "bhejein."
        ),
    },
}

# Answers to a patient's text (TwiML), not editable.
REPLIES: dict[str, dict[str, str]] = {
    "cancelled": {
        ENGLISH: (
            "Your appointment with {doctor_name} on {date} at {time} is cancelled. "
            "Call {clinic_phone} to book again."
        ),
        HINDI: (
            "{doctor_name} के साथ {date} को {time} बजे की आपकी अपॉइंटमेंट रद्द कर दी गई है। "
            "दोबारा बुक करने के लिए {clinic_phone} पर कॉल करें।"
        ),
        HINGLISH: (
            "{doctor_name} ke saath {date} ko {time} baje ka aapka appointment cancel kar "
            "diya gaya hai. Dobara book karne ke liye {clinic_phone} par call karein."
        ),
    },
    "reschedule_link": {
        ENGLISH: (
            "To change your appointment with {doctor_name} on {date} at {time}, open {link} "
            "or call {clinic_phone}."
        ),
        HINDI: (
            "{doctor_name} के साथ {date} को {time} बजे की अपॉइंटमेंट का समय बदलने के लिए "
            "{link} खोलें या {clinic_phone} पर कॉल करें।"
        ),
        HINGLISH: (
            "{doctor_name} ke saath {date} ko {time} baje ka appointment badalne ke liye "
            "{link} kholein ya {clinic_phone} par call karein."
        ),
    },
    "no_appointment": {
        ENGLISH: "We found no upcoming appointment for this number. Call {clinic_phone} for help.",
        HINDI: "इस नंबर पर कोई आने वाली अपॉइंटमेंट नहीं मिली। मदद के लिए {clinic_phone} पर कॉल करें।",
        HINGLISH: (
            "Is number par koi aane wala appointment nahi mila. Madad ke liye {clinic_phone} "
            "par call karein."
        ),
    },
    "opted_out": {
        ENGLISH: "You will get no more messages from {clinic_name}. Reply START to resume.",
        HINDI: "अब आपको {clinic_name} से कोई संदेश नहीं आएगा। फिर से पाने के लिए START भेजें।",
        HINGLISH: (
            "Ab aapko {clinic_name} se koi message nahi aayega. Dobara paane ke liye START bhejein."
        ),
    },
    "opted_in": {
        ENGLISH: "You will get appointment messages from {clinic_name} again. Reply STOP to stop.",
        HINDI: "आपको {clinic_name} से अपॉइंटमेंट के संदेश फिर से मिलेंगे। रोकने के लिए STOP भेजें।",
        HINGLISH: (
            "Aapko {clinic_name} se appointment ke message phir se milenge. Rokne ke liye "
            "STOP bhejein."
        ),
    },
    "help": {
        ENGLISH: (
            "{clinic_name}: reply C to cancel your next appointment, R to reschedule it, "
            "STOP to stop messages. Or call {clinic_phone}."
        ),
        HINDI: (
            "{clinic_name}: अगली अपॉइंटमेंट रद्द करने के लिए C, समय बदलने के लिए R, संदेश रोकने "
            "के लिए STOP भेजें। या {clinic_phone} पर कॉल करें।"
        ),
        HINGLISH: (
            "{clinic_name}: agla appointment cancel karne ke liye C, badalne ke liye R, "
            "message rokne ke liye STOP bhejein. Ya {clinic_phone} par call karein."
        ),
    },
}

# --- Local dates and times, as each language writes them ---------------------------------

_EN_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_HI_WEEKDAYS = ("सोमवार", "मंगलवार", "बुधवार", "गुरुवार", "शुक्रवार", "शनिवार", "रविवार")
_HI_MONTHS = (
    "जनवरी",
    "फ़रवरी",
    "मार्च",
    "अप्रैल",
    "मई",
    "जून",
    "जुलाई",
    "अगस्त",
    "सितंबर",
    "अक्टूबर",
    "नवंबर",
    "दिसंबर",
)
# (from hour, Hindi, Hinglish): the part of the day said before a 12-hour clock time.
_DAY_PARTS = (
    (0, "रात", "raat"),
    (4, "सुबह", "subah"),
    (12, "दोपहर", "dopahar"),
    (16, "शाम", "shaam"),
    (20, "रात", "raat"),
)


def language_or_default(language: str) -> str:
    return language if language in (ENGLISH, HINDI, HINGLISH) else ENGLISH


def format_date(local: datetime, language: str) -> str:
    """``local`` is already in the clinic's time zone."""
    if language == HINDI:
        return f"{_HI_WEEKDAYS[local.weekday()]}, {local.day} {_HI_MONTHS[local.month - 1]}"
    return f"{_EN_WEEKDAYS[local.weekday()]}, {local.day} {_EN_MONTHS[local.month - 1]}"


def format_time(local: datetime, language: str) -> str:
    clock = f"{(local.hour % 12) or 12}:{local.minute:02d}"
    if language == ENGLISH:
        return f"{clock} {'AM' if local.hour < 12 else 'PM'}"
    hindi, hinglish = next(
        (hi, hinglish) for start, hi, hinglish in reversed(_DAY_PARTS) if local.hour >= start
    )
    return f"{hindi if language == HINDI else hinglish} {clock}"


# --- Placeholders --------------------------------------------------------------------------


def validate_template(kind: str, body: str) -> None:
    """ValueError naming what is wrong: unknown placeholders, stray braces, formatting."""
    if not body.strip():
        raise ValueError("The message cannot be empty.")
    if len(body) > MAX_BODY_LENGTH:
        raise ValueError(f"At most {MAX_BODY_LENGTH} characters.")
    allowed = PLACEHOLDERS[kind]
    try:
        fields = list(string.Formatter().parse(body))
    except ValueError:
        raise ValueError("Unbalanced braces: write {{ and }} for a literal brace.") from None
    for _literal, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in allowed:
            raise ValueError(
                f"Unknown placeholder {{{name}}}. Allowed: "
                + ", ".join(f"{{{p}}}" for p in sorted(allowed))
                + "."
            )
        if spec or conversion:
            raise ValueError(f"Write the placeholder plainly: {{{name}}}.")


def render(body: str, context: dict[str, str]) -> str:
    """Substitutes known placeholders; anything else stays as written (never evaluated)."""
    try:
        fields = list(string.Formatter().parse(body))
    except ValueError:
        return body
    out = []
    for literal, name, spec, conversion in fields:
        out.append(literal)
        if name is None:
            continue
        if name in context and not spec and not conversion:
            out.append(str(context[name]))
        else:
            suffix = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            out.append(f"{{{name}{suffix}}}")
    return "".join(out)
