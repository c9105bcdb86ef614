"""The turn engine with fake providers: streaming recognition during the utterance."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from voice.pipeline.codecs import b64encode_frame, mulaw_to_pcm16, pcm16_to_mulaw
from voice.pipeline.conversation import AgentTurn, Conversation, ConversationConfig, SessionState
from voice.pipeline.stt import Transcript
from voice.pipeline.vad import EnergyVAD, SpeechEnded

LOUD = (np.random.default_rng(1).normal(0, 4000, 160)).astype("<i2").tobytes()  # 20 ms
SILENT = bytes(320)


def _payload(pcm: bytes) -> str:
    return b64encode_frame(pcm16_to_mulaw(pcm))


class FakeTTS:
    sample_rate = 8000

    def __init__(self, seconds: float = 0.1) -> None:
        self.seconds = seconds

    def synthesize_stream(self, text: str, *, language: str = "en"):
        for _ in range(round(self.seconds / 0.1)):
            yield bytes(1600)  # 100 ms


class FakeAgent:
    def __init__(self) -> None:
        self.heard: list[str] = []

    async def greet(self) -> AgentTurn:
        return AgentTurn("Hello", "en")

    async def respond(self, text: str, *, language: str, confidence: float) -> AgentTurn:
        self.heard.append(text)
        return AgentTurn("Sure", "en")

    async def respond_dtmf(self, digits: str) -> AgentTurn:
        return AgentTurn("Pressed", "en")

    async def still_there(self, attempt: int) -> AgentTurn:
        return AgentTurn("Still there?", "en")


class FakeSession:
    def __init__(self, fail: bool = False) -> None:
        self.fed: list[bytes] = []
        self.threads: set[int] = set()
        self.finished = self.cancelled = False
        self.fail = fail

    def feed(self, pcm16: bytes) -> None:
        if self.fail:
            raise RuntimeError("decoder broke")
        self.threads.add(threading.get_ident())
        self.fed.append(pcm16)

    def finish(self) -> Transcript:
        self.finished = True
        return Transcript("streamed words", "en", 0.9)

    def cancel(self) -> None:
        self.cancelled = True


class StreamingSTT:
    def __init__(self, fail: bool = False) -> None:
        self.sessions: list[FakeSession] = []
        self.transcribed: list[bytes] = []
        self.fail = fail
        self.expects: list[str] = []  # the hint of every recognition started

    def transcribe(
        self, pcm16: bytes, sample_rate: int, *, language: str, expects: str = ""
    ) -> Transcript:
        self.transcribed.append(pcm16)
        return Transcript("transcribed words", language, 0.9)

    def stream(self, language: str, *, sample_rate: int = 8000, expects: str = "") -> FakeSession:
        self.expects.append(expects)
        self.sessions.append(FakeSession(self.fail))
        return self.sessions[-1]


class PlainSTT:
    def __init__(self) -> None:
        self.transcribed: list[bytes] = []
        self.expects: list[str] = []

    def transcribe(
        self, pcm16: bytes, sample_rate: int, *, language: str, expects: str = ""
    ) -> Transcript:
        self.expects.append(expects)
        self.transcribed.append(pcm16)
        return Transcript("transcribed words", language, 0.9)


class FakeCloudStream:
    """The asyncio shape of a cloud provider's live session (e.g. Deepgram's)."""

    def __init__(self) -> None:
        self.fed: list[bytes] = []
        self.finished_with: bytes | None = None
        self.aborted = False

    def feed(self, audio: bytes) -> None:
        self.fed.append(audio)

    async def finish(self, pcm16: bytes, sample_rate: int) -> Transcript:
        self.finished_with = pcm16
        return Transcript("cloud words", "en", 0.95)

    async def abort(self) -> None:
        self.aborted = True


class CloudSTT(PlainSTT):
    def __init__(self) -> None:
        super().__init__()
        self.streams: list[FakeCloudStream] = []
        self.encodings: list[str] = []

    def open_stream(
        self, *, language: str, encoding: str = "mulaw", sample_rate: int = 8000, expects: str = ""
    ):
        self.expects.append(expects)
        self.encodings.append(encoding)
        self.streams.append(FakeCloudStream())
        return self.streams[-1]


async def _call(
    stt,
    *,
    greeting_s: float = 0.1,
    config: ConversationConfig | None = None,
    agent: FakeAgent | None = None,
):
    sent: list[dict] = []

    async def send(message: dict) -> None:
        message["_at"] = asyncio.get_running_loop().time()
        sent.append(message)

    async def nothing(*_args) -> None:
        return None

    agent = agent or FakeAgent()
    conversation = Conversation(
        stt=stt,
        tts=FakeTTS(greeting_s),
        vad=EnergyVAD(),
        agent=agent,
        send_twilio=send,
        publish=nothing,
        on_hangup=nothing,
        on_transfer=nothing,
        language="en",
        config=config,
    )
    events: list = []
    process = conversation.segmenter.process

    def recording(pcm16: bytes):
        out = process(pcm16)
        events.extend(out)
        return out

    conversation.segmenter.process = recording
    await conversation.start("MZtest")
    return conversation, agent, events, sent


async def _until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _say(conversation, speech_frames: int, *, pause_every: int = 10) -> None:
    """Speech (real time does not matter to the segmenter), then the end-of-speech silence."""
    for _ in range(20):
        await conversation.feed_media(_payload(SILENT))
    for i in range(speech_frames):
        await conversation.feed_media(_payload(LOUD))
        if i % pause_every == 0:
            await asyncio.sleep(0.01)  # let the recogniser's worker catch up
    for _ in range(35):
        await conversation.feed_media(_payload(SILENT))


def _ended(events) -> SpeechEnded:
    (ended,) = [e for e in events if isinstance(e, SpeechEnded)]
    return ended


def test_the_utterance_is_recognised_while_spoken_and_finished_at_the_end():
    stt = StreamingSTT()

    async def scenario():
        conversation, agent, events, _ = await _call(stt)
        await _until(lambda: conversation.state == SessionState.LISTENING)
        await _say(conversation, 60)
        await _until(lambda: agent.heard)
        await conversation.close()
        return agent, events

    agent, events = asyncio.run(scenario())
    assert agent.heard == ["streamed words"]
    (session,) = stt.sessions
    assert session.finished and not session.cancelled and not stt.transcribed
    assert len(session.fed) >= 4  # in batches while the caller spoke, plus the rest at the end
    assert threading.get_ident() not in session.threads  # never on the event loop
    # Exactly the utterance's audio, pre-roll included, in order.
    ended = _ended(events)
    assert b"".join(session.fed) == ended.pcm16
    assert ended.pcm16.startswith(mulaw_to_pcm16(pcm16_to_mulaw(SILENT)))


@pytest.mark.parametrize("stt_kind", ["streaming", "plain", "cloud"])
def test_each_utterance_is_recognised_for_what_the_agent_last_asked(stt_kind):
    # "Your name?" switches the offline recogniser to its name search; the answer
    # to the next question is heard with the general model again.
    stt = {"streaming": StreamingSTT, "plain": PlainSTT, "cloud": CloudSTT}[stt_kind]()

    class AskingAgent(FakeAgent):
        async def greet(self) -> AgentTurn:
            return AgentTurn("Your name, please?", "en", expects="name")

        async def respond(self, text: str, *, language: str, confidence: float) -> AgentTurn:
            self.heard.append(text)
            return AgentTurn("Shall I book it?", "en", expects="yes_no")

    async def scenario():
        conversation, agent, _, _ = await _call(stt, agent=AskingAgent())
        await _until(lambda: conversation.state == SessionState.LISTENING)
        await _say(conversation, 40)
        await _until(lambda: len(agent.heard) == 1 and conversation.state == SessionState.LISTENING)
        await _say(conversation, 40)
        await _until(lambda: len(agent.heard) == 2)
        await conversation.close()

    asyncio.run(scenario())
    assert stt.expects == ["name", "yes_no"]


def test_a_backchannel_over_the_agent_cancels_its_recognition():
    stt = StreamingSTT()

    async def scenario():
        conversation, agent, _, sent = await _call(stt, greeting_s=3.0)
        await _until(lambda: conversation.state == SessionState.SPEAKING)
        await _say(conversation, 15)  # 300 ms: "haan"
        await asyncio.sleep(0.1)
        speaking = conversation.state
        await conversation.close()
        return agent, speaking, sent

    agent, speaking, sent = asyncio.run(scenario())
    assert speaking == SessionState.SPEAKING and not agent.heard
    assert not any(m["event"] == "clear" for m in sent)
    (session,) = stt.sessions
    assert session.cancelled and not session.finished


def test_providers_without_streaming_transcribe_the_whole_utterance():
    stt = PlainSTT()

    async def scenario():
        conversation, agent, events, _ = await _call(stt)
        await _until(lambda: conversation.state == SessionState.LISTENING)
        await _say(conversation, 40)
        await _until(lambda: agent.heard)
        await conversation.close()
        return agent, events

    agent, events = asyncio.run(scenario())
    assert agent.heard == ["transcribed words"]
    assert stt.transcribed == [_ended(events).pcm16]


def test_a_failing_stream_falls_back_to_transcribing_the_utterance():
    stt = StreamingSTT(fail=True)

    async def scenario():
        conversation, agent, events, _ = await _call(stt)
        await _until(lambda: conversation.state == SessionState.LISTENING)
        await _say(conversation, 40)
        await _until(lambda: agent.heard)
        await conversation.close()
        return agent, events

    agent, events = asyncio.run(scenario())
    assert agent.heard == ["transcribed words"]
    assert stt.transcribed == [_ended(events).pcm16]
    assert stt.sessions[0].cancelled


def test_cloud_streams_get_mulaw_live_and_the_utterance_at_the_end():
    stt = CloudSTT()

    async def scenario():
        conversation, agent, events, _ = await _call(stt)
        await _until(lambda: conversation.state == SessionState.LISTENING)
        await _say(conversation, 40)
        await _until(lambda: agent.heard)
        await conversation.close()
        return agent, events

    agent, events = asyncio.run(scenario())
    assert agent.heard == ["cloud words"] and not stt.transcribed
    (stream,) = stt.streams
    ended = _ended(events)
    assert stt.encodings == ["mulaw"] and len(stream.fed) >= 4
    assert b"".join(stream.fed) == pcm16_to_mulaw(ended.pcm16)
    assert stream.finished_with == ended.pcm16 and not stream.aborted


def test_closing_the_call_mid_utterance_releases_the_recogniser():
    stt = StreamingSTT()

    async def scenario():
        conversation, _, _, _ = await _call(stt)
        await _until(lambda: conversation.state == SessionState.LISTENING)
        for _ in range(30):
            await conversation.feed_media(_payload(LOUD))
        await conversation.close()

    asyncio.run(scenario())
    (session,) = stt.sessions
    assert session.cancelled and not session.finished


def test_reply_frames_come_from_a_synthesis_thread_all_of_them_paced():
    stt = PlainSTT()

    async def scenario():
        conversation, _, _, sent = await _call(stt, greeting_s=0.5)
        started = asyncio.get_running_loop().time()
        await _until(lambda: any(m["event"] == "mark" for m in sent))
        elapsed = asyncio.get_running_loop().time() - started
        await conversation.close()
        return sent, conversation, elapsed

    sent, conversation, elapsed = asyncio.run(scenario())
    media = [m for m in sent if m["event"] == "media"]
    assert len(media) == 25 and conversation.frames_sent == 25
    assert elapsed >= 0.3  # paced in real time, not dumped at once


@pytest.mark.parametrize("per_wake", [1, 2])
def test_a_reply_keeps_its_playout_lead_queued_ahead_and_paces_the_rest(per_wake):
    """The first ``playout_lead_frames`` go at once (Twilio's jitter buffer); every later
    frame is sent on its 20 ms schedule, that lead ahead of real time (in groups of
    ``frames_per_wake``: never more than the group's span early)."""
    stt = PlainSTT()
    lead = 4
    config = ConversationConfig(playout_lead_frames=lead, frames_per_wake=per_wake)

    async def scenario():
        conversation, _, _, sent = await _call(stt, greeting_s=0.5, config=config)
        await _until(lambda: any(m["event"] == "mark" for m in sent))
        await conversation.close()
        return [m["_at"] for m in sent if m["event"] == "media"]

    times = asyncio.run(scenario())
    assert len(times) == 25
    start = times[0]  # the pacer's clock starts a little before it (the first chunk)
    assert times[lead] - start < 0.015  # the lead goes out with the first frame
    for index in range(lead + 1, 25):
        due = start + (index - lead) * 0.02
        early = (per_wake - 1) * 0.02
        assert times[index] >= due - early - 0.01, f"frame {index} went early"
    assert times[-1] - start >= (24 - lead) * 0.02 - (per_wake - 1) * 0.02 - 0.01
