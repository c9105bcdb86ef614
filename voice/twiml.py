"""TwiML the webhooks answer: greetings in the caller's language, the stream, the gather
fallback's questions, goodbyes."""

from twilio.twiml.voice_response import Connect, Gather, Stream, VoiceResponse

from clinic.models import Language

# Twilio <Say> voices: Amazon Polly's Indian voices read Hindi and romanized Hinglish well.
SAY_VOICES = {
    Language.ENGLISH: {"voice": "alice", "language": "en-US"},
    Language.HINDI: {"voice": "Polly.Aditi", "language": "hi-IN"},
    Language.HINGLISH: {"voice": "Polly.Raveena", "language": "en-IN"},
}

GREETINGS = {
    Language.ENGLISH: "Hello! Please wait while we connect you to our AI assistant.",
    Language.HINDI: "नमस्ते! कृपया प्रतीक्षा करें, हम आपको हमारे सहायक से जोड़ रहे हैं।",
    Language.HINGLISH: (
        "Namaste! Kripya thoda intezaar kijiye, hum aapko hamare AI assistant se jod rahe hain."
    ),
}

UNKNOWN_NUMBER = (
    "Sorry, this number is not set up with our clinic assistant. "
    "Please check the number and call again. Goodbye."
)


# <Gather> speech recognition per agent language: Hinglish is heard best as Indian English.
GATHER_LANGUAGES = {
    Language.ENGLISH: "en-IN",
    Language.HINDI: "hi-IN",
    Language.HINGLISH: "en-IN",
}


def say_voice(language: str) -> dict:
    return SAY_VOICES.get(language, SAY_VOICES[Language.ENGLISH])


def gather_language(language: str) -> str:
    return GATHER_LANGUAGES.get(language, GATHER_LANGUAGES[Language.ENGLISH])


def gather(
    text: str,
    *,
    language: str,
    action: str,
    hints: list[str] | tuple[str, ...] = (),
    num_digits: int | None = None,
) -> str:
    """Says ``text`` while listening for speech or keys; silence falls through to a
    ``<Redirect>`` to the same ``action`` without input, so the app decides what next."""
    response = VoiceResponse()
    options = {"num_digits": num_digits} if num_digits else {}
    phrases = [h.replace(",", " ").strip()[:100] for h in hints]
    if phrases := [p for p in phrases if p]:
        options["hints"] = ", ".join(phrases)
    listen = Gather(
        input="speech dtmf",
        action=action,
        method="POST",
        language=gather_language(language),
        speech_timeout="auto",
        **options,
    )
    listen.say(text, **say_voice(language))
    response.append(listen)
    response.redirect(action, method="POST")
    return str(response)


def connect_stream(*, language: str, stream_url: str, parameters: dict[str, str]) -> str:
    response = VoiceResponse()
    response.say(GREETINGS.get(language, GREETINGS[Language.ENGLISH]), **say_voice(language))
    connect = Connect()
    stream = Stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    connect.append(stream)
    response.append(connect)
    return str(response)


def say_and_hang_up(text: str, language: str = Language.ENGLISH) -> str:
    response = VoiceResponse()
    response.say(text, **say_voice(language))
    response.hangup()
    return str(response)


def dial(number: str, *, text: str, language: str) -> str:
    """Hands the caller to a person at the front desk."""
    response = VoiceResponse()
    response.say(text, **say_voice(language))
    response.dial(number)
    return str(response)
