"""Vocabulary biasing and the offline PocketSphinx recogniser, end to end from TTS audio."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy", reason="voice pipeline needs numpy")

from voice.pipeline.codecs import (  # noqa: E402
    b64decode_frame,
    b64encode_frame,
    mulaw_to_pcm16,
    resample,
)
from voice.pipeline.stt import (  # noqa: E402
    SpeechToText,
    _load_cmudict,
    build_arpa_lm,
    build_dictionary,
    word_accuracy,
    word_error_counts,
)
from voice.pipeline.vocabulary import (  # noqa: E402
    SLOT_VALUES,
    ClinicVocabulary,
    expand_templates,
    normalize_text,
    number_to_words,
    romanized_g2p,
)

from .helpers import (  # noqa: E402
    KEY_SENTENCE,
    KEY_WORDS,
    phone_frames,
    speech_8k,
    speech_8k_fresh,
    stt,
    tts,
)

needs_engines = pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(m) for m in ("pocketsphinx", "espeakng_loader")),
    reason="offline STT/TTS packages not installed",
)


# -- text and vocabulary ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Dr. Sharma at 10:30 a.m.", "doctor sharma at ten thirty am"),
        ("4pm on the 21st", "four pm on the twenty first"),
        ("That's fine, 9:05!", "that's fine nine oh five"),
        ("Call at 11:00", "call at eleven o'clock"),
    ],
)
def test_normalize_text(raw, normalized):
    assert normalize_text(raw) == normalized


def test_number_to_words():
    assert [number_to_words(n) for n in (0, 7, 15, 40, 45, 100, 2025)] == [
        "zero", "seven", "fifteen", "forty", "forty five", "one hundred",
        "two thousand twenty five",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("word", "phones"),
    [
        ("subah", "S UH B AH HH"),
        ("nahi", "N AH HH IY"),
        ("baje", "B AH JH EY"),
        ("shaam", "SH AA M"),
        ("parso", "P AH R S OW"),
        ("theek", "T IY K"),
        ("mehta", "M EH T AH"),
        ("reddy", "R EY D IY"),
        ("chhe", "CH EY"),
    ],
)
def test_romanized_g2p(word, phones):
    assert " ".join(romanized_g2p(word)) == phones


def test_dictionary_uses_cmudict_and_g2p():
    cmu = {"book": ["B UH K"], "kal": ["K AE L"], "sharma": ["SH AA R M AH"]}
    prons = build_dictionary(["book", "kal", "baje", "sharma"], cmu, g2p_words={"kal", "baje"})
    assert prons["book"] == ["B UH K"]  # English word: CMUdict only
    assert prons["kal"] == ["K AE L", "K AH L"]  # Hindi homograph: both readings
    assert prons["baje"] == ["B AH JH EY"]  # unknown: G2P
    assert prons["sharma"] == ["SH AA R M AH"]
    overridden = build_dictionary(["sharma"], cmu, {"Sharma": ["SH ER M AA"]}, g2p_words=())
    assert overridden["sharma"][0] == "SH ER M AA"


def test_expand_templates_covers_every_slot_value():
    sentences = expand_templates(
        ["see doctor {doctor} at {time}"], {**SLOT_VALUES, "doctor": ("rao", "iyer")}
    )
    assert len(sentences) == len(SLOT_VALUES["time"])
    for value in SLOT_VALUES["time"]:
        assert any(s.endswith(f"at {value}") for s in sentences)
    assert {s.split()[2] for s in sentences} == {"rao", "iyer"}


def test_vocabulary_includes_clinic_phrases_and_names():
    vocab = ClinicVocabulary(phrases=["Dr. Chatterjee's clinic"], doctor_names=["Chatterjee"])
    words = vocab.words()
    assert {"chatterjee", "chatterjee's", "kal", "baje", "appointment", "reschedule"} <= words
    assert "doctor chatterjee" in " ".join(vocab.sentences())
    assert "chatterjee" in vocab.g2p_words()


def test_arpa_lm_is_well_formed(tmp_path):
    path = tmp_path / "t.lm"
    build_arpa_lm(["book an appointment", "cancel an appointment"], str(path))
    text = path.read_text()
    assert "\\data\\" in text and "\\end\\" in text
    assert "an appointment" in text and "<s> book" in text


def test_word_accuracy():
    assert word_error_counts("book at 10 am", "book at ten am") == (0, 4)
    assert word_accuracy("book at ten am", "book at two am") == 0.75
    assert word_accuracy("yes", "") == 0.0


# -- recognition --------------------------------------------------------------


def _recognized(text: str) -> set[str]:
    return set(text.split())


@needs_engines
def test_recognizes_key_words_at_16khz():
    engine = stt()
    assert isinstance(engine, SpeechToText)
    audio = tts().synthesize(KEY_SENTENCE, language="en")
    transcript = engine.transcribe(
        resample(audio.pcm16, audio.sample_rate, 16000), 16000, language="en"
    )
    assert set(KEY_WORDS) <= _recognized(transcript.text)
    assert transcript.language == "en"
    assert 0.0 < transcript.confidence <= 1.0


@needs_engines
def test_recognizes_key_words_from_phone_frames():
    # Exactly what the consumer will do: Twilio base64 mu-law frames -> PCM -> STT.
    # eSpeak jitters every rendition slightly and on narrowband audio "ten" is
    # sometimes heard as "eight" (~5% of renditions), so five renditions are
    # decoded and at least three must contain every key word.
    hits = 0
    for _ in range(5):
        audio = tts().synthesize(KEY_SENTENCE, language="en")
        pcm_8k = resample(audio.pcm16, audio.sample_rate, 8000)
        payloads = [b64encode_frame(f) for f in phone_frames(pcm_8k)]
        pcm = b"".join(mulaw_to_pcm16(b64decode_frame(p)) for p in payloads)
        transcript = stt().transcribe(pcm, 8000, language="en")
        hits += set(KEY_WORDS) <= _recognized(transcript.text)
        # Decoding is much faster than real time (generous bound for a loaded CI box).
        assert transcript.processing_ms < 1000 * len(pcm) / 16000
    assert hits >= 3


@needs_engines
def test_word_accuracy_on_phone_channel():
    cases = [
        "Please cancel my appointment with doctor Gupta on Friday",
        "Can I reschedule to Monday at four thirty pm",
        "Yes that is fine",
        "Is doctor Rao available on Wednesday",
        "Can I see doctor Rao tomorrow morning",
    ]
    scores = [
        word_accuracy(c, stt().transcribe(speech_8k(c), 8000, language="en").text) for c in cases
    ]
    assert np.mean(scores) >= 0.85


@needs_engines
@pytest.mark.parametrize(
    ("said", "heard"),
    [
        ("Monday at 9:30 am", "nine thirty am"),
        ("tomorrow at 11:30 am", "eleven thirty am"),
        ("Friday at 4:30 pm", "four thirty pm"),
        ("at 10:15 am", "ten fifteen am"),
        ("at 5:45 pm", "five forty five pm"),
    ],
)
def test_the_half_of_the_day_is_heard_as_said(said, heard):
    # The corpus once had "thirty pm" and no "thirty am": every half-hour in the
    # morning came out in the evening, a slot the clinic does not have.
    hits = sum(
        heard in stt().transcribe(speech_8k(said), 8000, language="en").text for _ in range(3)
    )
    assert hits >= 2


@needs_engines
@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("What are your clinic hours", "hours"),
        ("Where is the clinic", "address"),
        ("How much is the consultation fee", "fees"),
        ("Which doctors are available", "doctors"),
        ("Can I talk to the receptionist", "transfer"),
    ],
)
def test_clinic_questions_are_heard_well_enough_to_answer(question, topic):
    # Through the phone channel, the transcript carries what the agent needs: the
    # topic of a clinic-information question, or the wish to talk to a person.
    # (Before these were in the corpus, "hours" came out as "august", the fee
    # question as "hello to book on sunday sunday".) Five renditions, three must do:
    # each is heard right in 14-15 of 15 renditions.
    from voice.agent.nlu import detect_transfer, info_topics

    hits = 0
    for _ in range(5):
        text = stt().transcribe(speech_8k_fresh(question), 8000, language="en").text
        canon = normalize_text(text)
        hits += detect_transfer(canon) if topic == "transfer" else topic in info_topics(canon)
    assert hits >= 3, text


@needs_engines
def test_hindi_voice_romanized_transcript():
    # Hindi voice reading Devanagari; the recogniser answers in romanised Hindi.
    # Three jittered renditions each, at least two must carry the key words.
    # (The long sentence is checked at the TTS rate: through the 8 kHz channel
    # it keeps all four key words in only ~85% of renditions.)
    booking = "मुझे डॉक्टर शर्मा का अपॉइंटमेंट चाहिए"
    hits = 0
    for _ in range(3):
        audio = tts().synthesize(booking, language="hi")
        transcript = stt().transcribe(audio.pcm16, audio.sample_rate, language="hi")
        assert transcript.language == "hi"
        hits += {"mujhe", "doctor", "sharma", "appointment"} <= set(transcript.text.split())
    assert hits >= 2
    yes_hits = 0
    for _ in range(3):
        text = stt().transcribe(speech_8k_fresh("हाँ ठीक है", "hi"), 8000, language="hi").text
        yes_hits += text.startswith("haan theek")
    assert yes_hits >= 2


@needs_engines
def test_silence_gives_empty_transcript():
    transcript = stt().transcribe(bytes(16000), 8000, language="en")
    assert transcript.is_empty and transcript.confidence == 0.0


@needs_engines
def test_vocabulary_bias_changes_what_is_heard():
    # A name outside the vocabulary cannot be produced; adding it makes it recognisable.
    from voice.pipeline.stt import PocketsphinxSTT

    sentence = "I want to book an appointment with doctor Kulkarni"
    pcm = speech_8k(sentence)
    assert "kulkarni" not in stt().transcribe(pcm, 8000, language="en").text
    biased = PocketsphinxSTT(doctor_names=["Kulkarni", "Sharma"])
    assert "kulkarni" in biased.transcribe(pcm, 8000, language="en").text.split()


@needs_engines
@pytest.mark.parametrize(
    ("answer", "name"),
    [
        ("My name is Meera Nair", "meera nair"),
        ("Anjali Kapoor", "anjali kapoor"),
        ("My name is Deepak Joshi", "deepak joshi"),
    ],
)
def test_the_name_search_hears_names_the_clinic_model_cannot(answer, name):
    # At "your name?" the recogniser listens with its name search (common Indian
    # given names and surnames). The clinic model has no names of callers: it heard
    # "My name is Meera Nair" as "my name guruvar". The name must be heard exactly
    # in two of three renditions; the words around it may vary ("my name Meera
    # Nair": the decoder's running estimate of the line, kept from the audio it
    # decoded before, changes such details with the order of the tests).
    heard = [
        stt().transcribe(speech_8k_fresh(answer), 8000, language="en", expects="name").text
        for _ in range(3)
    ]
    assert sum(text.split()[-2:] == name.split() for text in heard) >= 2, heard
    general = stt().transcribe(speech_8k(answer), 8000, language="en").text
    assert name not in general


@needs_engines
def test_the_name_search_still_hears_yes_and_no():
    for answer in ("yes", "no", "no that is wrong"):
        text = stt().transcribe(speech_8k(answer), 8000, language="en", expects="name").text
        assert text == answer


@needs_engines
def test_a_stream_for_a_name_gives_what_transcribing_gives():
    request = speech_8k(KEY_SENTENCE)
    before = stt().transcribe(request, 8000, language="en").text
    pcm = speech_8k("My name is Meera Nair")
    session = stt().stream("en", sample_rate=8000, expects="name")
    for start in range(0, len(pcm), 320):
        session.feed(pcm[start : start + 320])
    assert session.finish().text == stt().transcribe(pcm, 8000, expects="name").text
    # The pooled decoder it used hears the next utterance with the clinic model again.
    assert stt().transcribe(request, 8000, language="en").text == before


def test_cmudict_table_keeps_every_variant_untracked(tmp_path):
    import gc

    path = tmp_path / "cmu.dict"
    path.write_text("book B UH K\nread R IY D\nread(2) R EH D # past\n")
    table = _load_cmudict(str(path))
    assert table["read"] == ("R IY D", "R EH D")
    assert table.get("book") == ("B UH K",)
    assert table.get("nope", ()) == ()
    assert sorted(table) == ["book", "read"] and len(table) == 2
    # The whole table is strings: nothing the garbage collector has to walk.
    assert not gc.is_tracked(table._joined)
