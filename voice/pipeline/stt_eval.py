"""Word-accuracy / latency check of an STT provider on TTS-generated speech.

Run ``python -m voice.pipeline.stt_eval`` for a report.  Synthetic speech is
no substitute for real calls, but it catches regressions in the vocabulary,
the language model and the 8 kHz telephone path without any recordings.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .codecs import TELEPHONY_RATE, mulaw_to_pcm16, pcm16_to_mulaw, resample
from .stt import SpeechToText, word_accuracy
from .tts import TextToSpeech
from .vocabulary import normalize_text


@dataclass(frozen=True)
class EvalCase:
    spoken: str  # text given to the TTS
    reference: str  # expected (normalised, romanised) transcript
    language: str = "en"
    expects: str = ""  # the recogniser's hint (stt.EXPECTS_NAME: the answer to "your name?")


def _en(text: str, expects: str = "") -> EvalCase:
    return EvalCase(text, normalize_text(text), "en", expects)


EVAL_CASES: tuple[EvalCase, ...] = (
    _en("I want to book an appointment with doctor Sharma tomorrow at ten am"),
    _en("Please cancel my appointment with doctor Gupta on Friday"),
    _en("Can I reschedule to Monday at four thirty pm"),
    _en("Can I come on Thursday at nine thirty am"),
    _en("Yes that is fine"),
    _en("No I want doctor Mehta"),
    _en("Is doctor Rao available on Wednesday"),
    _en("I would like to see doctor Gupta next Tuesday evening"),
    _en("What time is my appointment"),
    # Not verbatim in the template corpus: checks the LM still generalises.
    _en("Can I see doctor Rao tomorrow morning"),
    _en("I need an appointment on Saturday"),
    # Clinic information and asking for a person: intents of their own.
    _en("What are your clinic hours"),
    _en("Where is the clinic"),
    _en("How much is the consultation fee"),
    _en("Which doctors are available"),
    _en("Can I talk to the receptionist"),
    # Hindi voice reading Devanagari; the recogniser answers in romanised Hindi.
    EvalCase("मुझे डॉक्टर शर्मा का अपॉइंटमेंट चाहिए", "mujhe doctor sharma ka appointment chahiye", "hi"),
    EvalCase("हाँ ठीक है", "haan theek hai", "hi"),
    EvalCase("नहीं, परसों शाम को", "nahi parso shaam ko", "hi"),
    EvalCase("हाँ, कल सुबह दस बजे", "haan kal subah das baje", "hi"),
    EvalCase("क्लिनिक कब खुलता है", "clinic kab khulta hai", "hi"),
    EvalCase("फीस कितनी है", "fees kitni hai", "hi"),
)


# Answers to "your name?", heard with the name search.  None of these is in a
# template verbatim; the names are from its lists.
NAME_EVAL_CASES: tuple[EvalCase, ...] = (
    _en("My name is Meera Nair", "name"),
    _en("Anjali Kapoor", "name"),
    _en("My name is Deepak Joshi", "name"),
    _en("Rahul Verma", "name"),
    _en("It is for my son Aarav", "name"),
    _en("My name is Sunita Reddy", "name"),
    _en("Vikram Singh", "name"),
    _en("My name is Imran Khan", "name"),
    _en("Pooja Sharma", "name"),
    _en("My name is Neha Patel", "name"),
    _en("No that is wrong", "name"),
    _en("Yes", "name"),
    EvalCase("मेरा नाम प्रिया है", "mera naam priya hai", "hi", "name"),
    EvalCase("राहुल वर्मा", "rahul verma", "hi", "name"),
)


@dataclass(frozen=True)
class EvalResult:
    case: EvalCase
    channel: str  # "16k" or "8k-mulaw"
    hypothesis: str
    accuracy: float
    audio_s: float
    decode_ms: float


def telephone_channel(pcm16: bytes, sample_rate: int) -> bytes:
    """What the caller's audio looks like after Twilio: 8 kHz G.711 mu-law."""
    return mulaw_to_pcm16(pcm16_to_mulaw(resample(pcm16, sample_rate, TELEPHONY_RATE)))


def evaluate(
    stt: SpeechToText,
    tts: TextToSpeech,
    cases: Sequence[EvalCase] = EVAL_CASES,
    channels: Sequence[str] = ("16k", "8k-mulaw"),
    renditions: int = 1,
) -> list[EvalResult]:
    """Decode every case through every channel; ``renditions`` > 1 averages over
    several syntheses (eSpeak output jitters, so one rendition is a noisy sample).
    """
    results: list[EvalResult] = []
    for case, _ in ((c, r) for c in cases for r in range(renditions)):
        audio = tts.synthesize(case.spoken, language=case.language)
        for channel in channels:
            if channel == "8k-mulaw":
                pcm, rate = telephone_channel(audio.pcm16, audio.sample_rate), TELEPHONY_RATE
            else:
                pcm, rate = resample(audio.pcm16, audio.sample_rate, 16000), 16000
            started = time.perf_counter()
            transcript = stt.transcribe(pcm, rate, language=case.language, expects=case.expects)
            elapsed = (time.perf_counter() - started) * 1000
            results.append(
                EvalResult(
                    case,
                    channel,
                    transcript.text,
                    word_accuracy(case.reference, transcript.text),
                    len(pcm) / 2 / rate,
                    elapsed,
                )
            )
    return results


def summarize(results: Sequence[EvalResult]) -> dict[str, dict[str, float]]:
    """Per channel and language: mean word accuracy, mean/max decode ms, real-time factor."""
    summary: dict[str, dict[str, float]] = {}
    keys = sorted({(r.channel, r.case.language, r.case.expects) for r in results})
    for channel, language, expects in keys:
        rs = [
            r
            for r in results
            if (r.channel, r.case.language, r.case.expects) == (channel, language, expects)
        ]
        key = f"{channel}/{language}" + (f"/{expects}" if expects else "")
        summary[key] = {
            "word_accuracy": statistics.fmean(r.accuracy for r in rs),
            "exact": statistics.fmean(r.hypothesis == r.case.reference for r in rs),
            "mean_decode_ms": statistics.fmean(r.decode_ms for r in rs),
            "max_decode_ms": max(r.decode_ms for r in rs),
            "real_time_factor": sum(r.decode_ms for r in rs) / 1000 / sum(r.audio_s for r in rs),
        }
    return summary


def main() -> None:  # pragma: no cover - manual report
    import sys

    from .stt import PocketsphinxSTT
    from .tts import EspeakTTS

    started = time.perf_counter()
    stt = PocketsphinxSTT(doctor_names=["Sharma", "Gupta", "Mehta", "Rao"])
    print(f"recogniser ready in {(time.perf_counter() - started) * 1000:.0f} ms")
    renditions = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    results = evaluate(stt, EspeakTTS(), EVAL_CASES + NAME_EVAL_CASES, renditions=renditions)
    for r in results if renditions == 1 else ():
        line = f"{r.channel:9} {r.accuracy:4.2f} {r.decode_ms:6.0f} ms"
        print(f"{line}  {r.case.reference!r} -> {r.hypothesis!r}")
    for key, stats in summarize(results).items():
        print(key, {k: round(v, 3) for k, v in stats.items()})


if __name__ == "__main__":  # pragma: no cover
    main()
