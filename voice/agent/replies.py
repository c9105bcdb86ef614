"""What the agent says, in English, Hindi (Devanagari) and Hinglish (romanised).

Times are read the way a receptionist reads them, not the way a database prints
them: "tomorrow at 10:30 am", "kal subah saadhe 10 baje", "कल सुबह साढ़े 10 बजे".
Hours stay digits: text-to-speech reads them in the voice's language, and the
same text is shown in the chat widget.

Templates are ``str.format`` strings keyed by message and language; a missing
translation falls back to English rather than failing a live call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, tzinfo

from voice.agent.dates import local_now, period_of
from voice.agent.language import EN, HI, HINGLISH

WEEKDAY_NAMES = {
    EN: ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    HINGLISH: ("Somvar", "Mangalvar", "Budhvar", "Guruvar", "Shukravar", "Shanivar", "Ravivar"),
    HI: ("सोमवार", "मंगलवार", "बुधवार", "गुरुवार", "शुक्रवार", "शनिवार", "रविवार"),
}
MONTH_NAMES = {
    EN: ("January", "February", "March", "April", "May", "June", "July", "August",
         "September", "October", "November", "December"),
    HI: ("जनवरी", "फ़रवरी", "मार्च", "अप्रैल", "मई", "जून", "जुलाई", "अगस्त", "सितंबर",
         "अक्टूबर", "नवंबर", "दिसंबर"),
}  # fmt: skip
MONTH_NAMES[HINGLISH] = MONTH_NAMES[EN]

_PERIOD_WORD = {
    HINGLISH: {"morning": "subah", "afternoon": "dopahar", "evening": "shaam", "night": "raat"},
    HI: {"morning": "सुबह", "afternoon": "दोपहर", "evening": "शाम", "night": "रात"},
}
_RELATIVE_DAYS = {
    EN: ("today", "tomorrow", "the day after tomorrow"),
    HINGLISH: ("aaj", "kal", "parso"),
    HI: ("आज", "कल", "परसों"),
}
_OR = {EN: "or", HINGLISH: "ya", HI: "या"}
_AND = {EN: "and", HINGLISH: "aur", HI: "और"}
_HINDI_FRACTIONS = {
    HINGLISH: {"half": "saadhe", "quarter": "sawa", "less": "paune", 1: "dedh", 2: "dhai"},
    HI: {"half": "साढ़े", "quarter": "सवा", "less": "पौने", 1: "डेढ़", 2: "ढाई"},
}
_BAJE = {HINGLISH: "baje", HI: "बजे"}


def lang_or_default(language: str | None) -> str:
    return language if language in (EN, HI, HINGLISH) else HINGLISH


# --- times and days ------------------------------------------------------------------------


def speak_clock(moment: time, language: str, *, with_period: bool = True) -> str:
    """ "10:30 am" / "subah saadhe 10 baje" / "सुबह साढ़े 10 बजे"."""
    language = lang_or_default(language)
    hour12 = moment.hour % 12 or 12
    if language == EN:
        if moment.hour == 12 and moment.minute == 0:
            return "12 noon"
        clock = f"{hour12}" if moment.minute == 0 else f"{hour12}:{moment.minute:02d}"
        return f"{clock} {'am' if moment.hour < 12 else 'pm'}"
    words = _HINDI_FRACTIONS[language]
    minute = moment.minute
    if minute == 0:
        clock = f"{hour12}"
    elif minute == 30 and hour12 in (1, 2):
        clock = words[hour12]
    elif minute == 30:
        clock = f"{words['half']} {hour12}"
    elif minute == 15:
        clock = f"{words['quarter']} {hour12}"
    elif minute == 45:
        clock = f"{words['less']} {hour12 % 12 + 1}"
    else:
        clock = f"{hour12}:{minute:02d}"
    text = f"{clock} {_BAJE[language]}"
    if with_period:
        text = f"{_PERIOD_WORD[language][period_of(moment)]} {text}"
    return text


def speak_day(day: date, language: str, today: date, *, preposition: bool = True) -> str:
    """Days read back: "tomorrow", "on Friday, 17 January"; "kal", "Shukravar, 17 January ko".

    ``preposition=False`` drops the English "on" ("from ... to Friday, 17 January").
    """
    language = lang_or_default(language)
    offset = (day - today).days
    # "parso" is everyday Hindi; "the day after tomorrow" is not how English callers
    # hear a date read back, so English names the day from the day after tomorrow on.
    if 0 <= offset <= (1 if language == EN else 2):
        return _RELATIVE_DAYS[language][offset]
    weekday = WEEKDAY_NAMES[language][day.weekday()]
    month = MONTH_NAMES[language][day.month - 1]
    if language == EN:
        return f"{'on ' if preposition else ''}{weekday}, {day.day} {month}"
    return f"{weekday}, {day.day} {month} {'ko' if language == HINGLISH else 'को'}"


def speak_when(
    moment: datetime, language: str, *, now: datetime, tz: tzinfo, preposition: bool = True
) -> str:
    """A moment read back: "tomorrow at 10 am", "kal subah 10 baje", "कल सुबह 10 बजे"."""
    language = lang_or_default(language)
    local = moment.astimezone(tz)
    day = speak_day(local.date(), language, local_now(now, tz).date(), preposition=preposition)
    clock = speak_clock(local.time(), language)
    if language == EN:
        return f"{day} at {clock}"
    return f"{day} {clock}"


def speak_slots(slots: Sequence[datetime], language: str, *, now: datetime, tz: tzinfo) -> str:
    """Several times, grouped by day: "tomorrow at 9 am, 9:30 am or 10 am"."""
    language = lang_or_default(language)
    today = local_now(now, tz).date()
    groups: list[tuple[date, list[time]]] = []
    for slot in slots:
        local = slot.astimezone(tz)
        if groups and groups[-1][0] == local.date():
            groups[-1][1].append(local.time())
        else:
            groups.append((local.date(), [local.time()]))
    parts = []
    for day, times in groups:
        clocks, last_period = [], None
        for moment in times:
            period = period_of(moment)
            clocks.append(
                speak_clock(moment, language, with_period=period != last_period)
                if language != EN
                else speak_clock(moment, language)
            )
            last_period = period
        day_text = speak_day(day, language, today)
        joined = join(clocks, language)
        parts.append(f"{day_text} at {joined}" if language == EN else f"{day_text} {joined}")
    return join(parts, language)


def join(items: Sequence[str], language: str, *, conjunction: str = "or") -> str:
    items = [i for i in items if i]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    word = (_OR if conjunction == "or" else _AND)[lang_or_default(language)]
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def speak_hours(open_days: Sequence[int], opens: time, closes: time, language: str) -> str:
    """Opening hours from the doctors' week: "Monday to Saturday, 9 am to 7 pm"."""
    language = lang_or_default(language)
    names = WEEKDAY_NAMES[language]
    days = sorted(set(open_days))
    if not days:
        return ""
    if days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
        to = {EN: "to", HINGLISH: "se", HI: "से"}[language]
        day_text = f"{names[days[0]]} {to} {names[days[-1]]}"
        if language != EN:
            day_text += " tak" if language == HINGLISH else " तक"
    else:
        day_text = join([names[d] for d in days], language, conjunction="and")
    if language == EN:
        return f"{day_text}, {speak_clock(opens, EN)} to {speak_clock(closes, EN)}"
    se, tak = ("se", "tak") if language == HINGLISH else ("से", "तक")
    return f"{day_text}, {speak_clock(opens, language)} {se} {speak_clock(closes, language)} {tak}"


def dtmf_hint(count: int, language: str) -> str:
    numbers = join([str(n) for n in range(1, count + 1)], language)
    return say("dtmf_choice", language, numbers=numbers)


# --- messages ------------------------------------------------------------------------------

MESSAGES: dict[str, dict[str, str]] = {
    "greet": {
        EN: "Namaste! Welcome to {clinic}. How can I help you today?",
        HINGLISH: "Namaste! {clinic} mein aapka swagat hai. Main aapki kya madad kar sakti hoon?",
        HI: "नमस्ते! {clinic} में आपका स्वागत है। मैं आपकी क्या मदद कर सकती हूँ?",
    },
    "greet_known": {
        EN: "Namaste {name}! Welcome to {clinic}. How can I help you today?",
        HINGLISH: "Namaste {name} ji! {clinic} mein aapka swagat hai. "
        "Main aapki kya madad kar sakti hoon?",
        HI: "नमस्ते {name} जी! {clinic} में आपका स्वागत है। मैं आपकी क्या मदद कर सकती हूँ?",
    },
    "how_help": {
        EN: "How can I help you? I can book, change or cancel an appointment, "
        "or answer questions about the clinic.",
        HINGLISH: "Boliye, main appointment book, change ya cancel kar sakti hoon, "
        "ya clinic ke baare mein jaankari de sakti hoon.",
        HI: "बताइए, मैं अपॉइंटमेंट बुक, बदल या रद्द कर सकती हूँ, या क्लिनिक के बारे में जानकारी दे सकती हूँ।",
    },
    "ask_name": {
        EN: "May I have the patient's full name, please?",
        HINGLISH: "Kripya mareez ka poora naam bataiye.",
        HI: "कृपया मरीज़ का पूरा नाम बताइए।",
    },
    "ask_name_again": {
        EN: "Sorry, I didn't catch the name. Please say just the patient's name.",
        HINGLISH: "Maaf kijiye, naam samajh nahi aaya. Kripya sirf mareez ka naam bataiye.",
        HI: "माफ़ कीजिए, नाम समझ नहीं आया। कृपया सिर्फ़ मरीज़ का नाम बताइए।",
    },
    "check_name": {
        EN: "I have the name as {name}. Is that right?",
        HINGLISH: "Maine naam {name} suna. Kya yeh sahi hai?",
        HI: "मैंने नाम {name} सुना। क्या यह सही है?",
    },
    "ask_name_slowly": {
        EN: "Sorry about that. Please say the patient's name once more, slowly.",
        HINGLISH: "Maaf kijiye. Kripya mareez ka naam ek baar phir, dheere se bataiye.",
        HI: "माफ़ कीजिए। कृपया मरीज़ का नाम एक बार फिर, धीरे से बताइए।",
    },
    "name_noted": {
        EN: "I'll note the name as {name} for now; please give the front desk "
        "the right spelling when you come in.",
        HINGLISH: "Abhi ke liye main naam {name} likh rahi hoon; clinic aane par reception "
        "par sahi naam bata dijiye.",
        HI: "अभी के लिए मैं नाम {name} लिख रही हूँ; क्लिनिक आने पर रिसेप्शन पर सही नाम बता दीजिए।",
    },
    "transfer_for_name": {
        EN: "Sorry, I couldn't get the name right. Let me connect you to our receptionist. "
        "Please stay on the line.",
        HINGLISH: "Maaf kijiye, naam theek se samajh nahi aaya. Main aapko receptionist se "
        "jod rahi hoon. Kripya line par bane rahiye.",
        HI: "माफ़ कीजिए, नाम ठीक से समझ नहीं आया। मैं आपको रिसेप्शनिस्ट से जोड़ रही हूँ। कृपया लाइन पर बने रहिए।",
    },
    "got_name": {
        EN: "Thank you, {name}.",
        HINGLISH: "Dhanyavaad, {name} ji.",
        HI: "धन्यवाद, {name} जी।",
    },
    "ask_patient": {
        EN: "I have {names} on this number. Who is the appointment for? "
        "For someone else, say 'someone else'.",
        HINGLISH: "Is number par {names} ke naam hain. Appointment kiske liye hai? "
        "Kisi aur ke liye ho to 'koi aur' boliye.",
        HI: "इस नंबर पर {names} के नाम दर्ज हैं। अपॉइंटमेंट किसके लिए है? "
        "किसी और के लिए हो तो 'कोई और' बोलिए।",
    },
    "ask_doctor": {
        EN: "Which doctor would you like to see? We have {doctors}.",
        HINGLISH: "Aap kis doctor se milna chahenge? Hamare yahan {doctors} hain.",
        HI: "आप किस डॉक्टर से मिलना चाहेंगे? हमारे यहाँ {doctors} हैं।",
    },
    "ask_doctor_among": {
        EN: "Which one do you mean: {doctors}?",
        HINGLISH: "Aap kinki baat kar rahe hain: {doctors}?",
        HI: "आप किनकी बात कर रहे हैं: {doctors}?",
    },
    "unknown_doctor": {
        EN: "Sorry, we don't have a Dr. {name} here.",
        HINGLISH: "Maaf kijiye, hamare yahan Dr. {name} nahi hain.",
        HI: "माफ़ कीजिए, हमारे यहाँ डॉ. {name} नहीं हैं।",
    },
    "doctor_not_accepting": {
        EN: "Sorry, {doctor} is not taking appointments at the moment.",
        HINGLISH: "Maaf kijiye, {doctor} abhi appointment nahi le rahe hain.",
        HI: "माफ़ कीजिए, {doctor} अभी अपॉइंटमेंट नहीं ले रहे हैं।",
    },
    "closed_leave": {
        EN: "{doctor} is on leave {day}.",
        HINGLISH: "{doctor} {day} chhutti par hain.",
        HI: "{doctor} {day} छुट्टी पर हैं।",
    },
    "closed_holiday": {
        EN: "{doctor} is not in {day}; it is a holiday.",
        HINGLISH: "{day} chhutti hai, {doctor} nahi baithenge.",
        HI: "{day} छुट्टी है, {doctor} नहीं बैठेंगे।",
    },
    "closed_off": {
        EN: "{doctor} does not see patients {day}.",
        HINGLISH: "{doctor} {day} nahi baithte.",
        HI: "{doctor} {day} नहीं बैठते।",
    },
    "closed_past": {
        EN: "That day has already passed.",
        HINGLISH: "Woh din nikal chuka hai.",
        HI: "वह दिन निकल चुका है।",
    },
    "slot_taken": {
        EN: "Sorry, {time} is already booked.",
        HINGLISH: "Maaf kijiye, {time} ka slot pehle se booked hai.",
        HI: "माफ़ कीजिए, {time} का स्लॉट पहले से बुक है।",
    },
    "slot_outside_hours": {
        EN: "{doctor} is not available {time}.",
        HINGLISH: "{doctor} {time} available nahi hain.",
        HI: "{doctor} {time} उपलब्ध नहीं हैं।",
    },
    "slot_past": {
        EN: "{time} has already passed.",
        HINGLISH: "{time} ka samay nikal chuka hai.",
        HI: "{time} का समय निकल चुका है।",
    },
    "nothing_in_period": {
        EN: "Nothing is free then.",
        HINGLISH: "Us samay koi slot khaali nahi hai.",
        HI: "उस समय कोई स्लॉट खाली नहीं है।",
    },
    "offer_slots": {
        EN: "{doctor} is free {slots}. Which time would you like?",
        HINGLISH: "{doctor} ke paas {slots} khaali hai. Aapko kaunsa time chahiye?",
        HI: "{doctor} के पास {slots} खाली है। आपको कौनसा समय चाहिए?",
    },
    "offer_next_slots": {
        EN: "The nearest free times with {doctor} are {slots}. Which one would you like?",
        HINGLISH: "{doctor} ke saath sabse paas ke khaali slot hain {slots}. Kaunsa chahiye?",
        HI: "{doctor} के साथ सबसे पास के खाली स्लॉट हैं {slots}। कौनसा चाहिए?",
    },
    "no_slots": {
        EN: "Sorry, {doctor} has no free time in the next two weeks.",
        HINGLISH: "Maaf kijiye, agle do hafte {doctor} ke paas koi slot khaali nahi hai.",
        HI: "माफ़ कीजिए, अगले दो हफ़्ते {doctor} के पास कोई स्लॉट खाली नहीं है।",
    },
    "dtmf_choice": {
        EN: "You can also press {numbers}.",
        HINGLISH: "Aap {numbers} dabakar bhi chun sakte hain.",
        HI: "आप {numbers} दबाकर भी चुन सकते हैं।",
    },
    "dtmf_yes_no": {
        EN: "Please say yes or no, or press 1 for yes and 2 for no.",
        HINGLISH: "Kripya haan ya nahi boliye, ya haan ke liye 1 aur nahi ke liye 2 dabaiye.",
        HI: "कृपया हाँ या नहीं बोलिए, या हाँ के लिए 1 और नहीं के लिए 2 दबाइए।",
    },
    "confirm_booking": {
        EN: "{doctor}, {when}, for {patient}. Shall I book it?",
        HINGLISH: "{doctor} ke saath {when}, {patient} ke liye. Book kar doon?",
        HI: "{doctor} के साथ {when}, {patient} के लिए। बुक कर दूँ?",
    },
    "booked": {
        EN: "Done! {patient}'s appointment with {doctor} is booked for {when}. "
        "Your appointment number is {id}.",
        HINGLISH: "Ho gaya! {patient} ka appointment {doctor} ke saath {when} book ho gaya hai. "
        "Appointment number {id} hai.",
        HI: "हो गया! {patient} का अपॉइंटमेंट {doctor} के साथ {when} बुक हो गया है। अपॉइंटमेंट नंबर {id} है।",
    },
    "not_booked": {
        EN: "Okay, I haven't booked it.",
        HINGLISH: "Theek hai, maine book nahi kiya.",
        HI: "ठीक है, मैंने बुक नहीं किया।",
    },
    "ask_other_time": {
        EN: "Which other day or time would suit you?",
        HINGLISH: "Aapke liye kaunsa aur din ya time theek rahega?",
        HI: "आपके लिए कौनसा और दिन या समय ठीक रहेगा?",
    },
    "ask_when": {
        EN: "Which day and time would suit you?",
        HINGLISH: "Aap kis din aur kitne baje aana chahenge?",
        HI: "आप किस दिन और कितने बजे आना चाहेंगे?",
    },
    "ask_new_time": {
        EN: "To which day and time should I move it?",
        HINGLISH: "Kis din aur kitne baje ka kar doon?",
        HI: "किस दिन और कितने बजे का कर दूँ?",
    },
    "no_upcoming": {
        EN: "I couldn't find any upcoming appointment for this number.",
        HINGLISH: "Is number par koi aane wala appointment nahi mila.",
        HI: "इस नंबर पर कोई आने वाला अपॉइंटमेंट नहीं मिला।",
    },
    "offer_booking": {
        EN: "Would you like to book one?",
        HINGLISH: "Kya naya appointment book karna chahenge?",
        HI: "क्या नया अपॉइंटमेंट बुक करना चाहेंगे?",
    },
    "appointment_item": {
        EN: "{patient} with {doctor} {when}",
        HINGLISH: "{patient}, {doctor} ke saath {when}",
        HI: "{patient}, {doctor} के साथ {when}",
    },
    "ask_which_appointment": {
        EN: "There are these appointments: {items}. Which one?",
        HINGLISH: "Ye appointment hain: {items}. Kaunsa?",
        HI: "ये अपॉइंटमेंट हैं: {items}। कौनसा?",
    },
    "upcoming": {
        EN: "Upcoming: {items}.",
        HINGLISH: "Aane wale appointment: {items}.",
        HI: "आने वाले अपॉइंटमेंट: {items}।",
    },
    "confirm_cancel": {
        EN: "Shall I cancel the appointment of {item}?",
        HINGLISH: "{item} wala appointment cancel kar doon?",
        HI: "क्या {item} वाला अपॉइंटमेंट रद्द कर दूँ?",
    },
    "cancelled": {
        EN: "The appointment of {item} has been cancelled.",
        HINGLISH: "{item} wala appointment cancel ho gaya hai.",
        HI: "{item} वाला अपॉइंटमेंट रद्द हो गया है।",
    },
    "not_cancelled": {
        EN: "Okay, the appointment stays as it is.",
        HINGLISH: "Theek hai, appointment waise hi rahega.",
        HI: "ठीक है, अपॉइंटमेंट वैसे ही रहेगा।",
    },
    "confirm_reschedule": {
        EN: "Shall I move {patient}'s appointment with {doctor} from {old} to {new}?",
        HINGLISH: "{patient} ka {doctor} wala appointment {old} se badalkar {new} kar doon?",
        HI: "{patient} का {doctor} वाला अपॉइंटमेंट {old} से बदलकर {new} कर दूँ?",
    },
    "rescheduled": {
        EN: "Done! The appointment with {doctor} is now {new}.",
        HINGLISH: "Ho gaya! {doctor} ke saath appointment ab {new} hai.",
        HI: "हो गया! {doctor} के साथ अपॉइंटमेंट अब {new} है।",
    },
    "cannot_change": {
        EN: "Sorry, that appointment can no longer be changed.",
        HINGLISH: "Maaf kijiye, yeh appointment ab badla nahi ja sakta.",
        HI: "माफ़ कीजिए, यह अपॉइंटमेंट अब बदला नहीं जा सकता।",
    },
    "anything_else": {
        EN: "Is there anything else I can help with?",
        HINGLISH: "Aur kuch madad chahiye?",
        HI: "और कुछ मदद चाहिए?",
    },
    "info_hours": {
        EN: "Our timings are {hours}.",
        HINGLISH: "Clinic ka samay hai: {hours}.",
        HI: "क्लिनिक का समय है: {hours}।",
    },
    "info_address": {
        EN: "Our address is {address}.",
        HINGLISH: "Hamara pata hai: {address}.",
        HI: "हमारा पता है: {address}।",
    },
    "info_fees": {
        EN: "Fees: {fees}.",
        HINGLISH: "Fees: {fees}.",
        HI: "फ़ीस: {fees}।",
    },
    "info_doctors": {
        EN: "Our doctors are {doctors}.",
        HINGLISH: "Hamare doctor hain: {doctors}.",
        HI: "हमारे डॉक्टर हैं: {doctors}।",
    },
    "info_fact": {
        EN: "{label}: {value}.",
        HINGLISH: "{label}: {value}.",
        HI: "{label}: {value}।",
    },
    "info_unknown": {
        EN: "Sorry, I don't have that information. I can connect you to our receptionist.",
        HINGLISH: "Maaf kijiye, yeh jaankari mere paas nahi hai. "
        "Main aapko receptionist se jod sakti hoon.",
        HI: "माफ़ कीजिए, यह जानकारी मेरे पास नहीं है। मैं आपको रिसेप्शनिस्ट से जोड़ सकती हूँ।",
    },
    "doctor_hours": {
        EN: "{doctor} sees patients {hours}.",
        HINGLISH: "{doctor} {hours} baithte hain.",
        HI: "{doctor} {hours} बैठते हैं।",
    },
    "not_understood": {
        EN: "Sorry, I didn't understand that.",
        HINGLISH: "Maaf kijiye, main samajh nahi paayi.",
        HI: "माफ़ कीजिए, मैं समझ नहीं पाई।",
    },
    "not_heard": {
        EN: "Sorry, I couldn't hear you.",
        HINGLISH: "Maaf kijiye, aawaaz nahi aayi.",
        HI: "माफ़ कीजिए, आवाज़ नहीं आई।",
    },
    "unclear_line": {
        EN: "Sorry, the line is not clear.",
        HINGLISH: "Maaf kijiye, awaaz saaf nahi aa rahi.",
        HI: "माफ़ कीजिए, आवाज़ साफ़ नहीं आ रही।",
    },
    "transfer": {
        EN: "Sure, I'm connecting you to our receptionist. Please stay on the line.",
        HINGLISH: "Ji, main aapko receptionist se jod rahi hoon. Kripya line par bane rahiye.",
        HI: "जी, मैं आपको रिसेप्शनिस्ट से जोड़ रही हूँ। कृपया लाइन पर बने रहिए।",
    },
    "transfer_after_failures": {
        EN: "Sorry for the trouble. Let me connect you to our receptionist. "
        "Please stay on the line.",
        HINGLISH: "Asuvidha ke liye maaf kijiye. Main aapko receptionist se jod rahi hoon. "
        "Kripya line par bane rahiye.",
        HI: "असुविधा के लिए माफ़ कीजिए। मैं आपको रिसेप्शनिस्ट से जोड़ रही हूँ। कृपया लाइन पर बने रहिए।",
    },
    "no_transfer": {
        EN: "Sorry, no one is free to take the call right now. "
        "I can still book, change or cancel an appointment for you.",
        HINGLISH: "Maaf kijiye, abhi koi call lene ke liye free nahi hai. "
        "Main appointment book, change ya cancel kar sakti hoon.",
        HI: "माफ़ कीजिए, अभी कोई कॉल लेने के लिए उपलब्ध नहीं है। मैं अपॉइंटमेंट बुक, बदल या रद्द कर सकती हूँ।",
    },
    "goodbye": {
        EN: "Thank you for calling {clinic}. Take care, goodbye!",
        HINGLISH: "{clinic} ko call karne ke liye dhanyavaad. Apna khayal rakhiye, namaste!",
        HI: "{clinic} को कॉल करने के लिए धन्यवाद। अपना ख़याल रखिए, नमस्ते!",
    },
    # The line went quiet: asked once (streams and gather alike), then goodbye.
    "still_there": {
        EN: "Are you still there?",
        HINGLISH: "Kya aap line par hain?",
        HI: "क्या आप लाइन पर हैं?",
    },
    "no_answer_goodbye": {
        EN: "I can't hear you, so I'll end the call now. Please call again anytime. Goodbye!",
        HINGLISH: "Aapki awaaz nahi aa rahi, isliye main call khatam kar rahi hoon. "
        "Phir se call kijiye. Namaste!",
        HI: "आपकी आवाज़ नहीं आ रही, इसलिए मैं कॉल समाप्त कर रही हूँ। फिर से कॉल करें। नमस्ते!",
    },
    "error": {
        EN: "Sorry, something went wrong on our side.",
        HINGLISH: "Maaf kijiye, hamari taraf se kuch gadbad ho gayi.",
        HI: "माफ़ कीजिए, हमारी तरफ़ से कुछ गड़बड़ हो गई।",
    },
}


def say(key: str, language: str, **params) -> str:
    templates = MESSAGES[key]
    template = templates.get(lang_or_default(language)) or templates[EN]
    text = template.format(**params)
    return text[:1].upper() + text[1:]  # "{time} has passed" -> "Today at 9 am has passed"


def sentences(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())
