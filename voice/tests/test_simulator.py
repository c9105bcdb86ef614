"""The simulated caller's accounting of what it hears: turn latency, late frames, gaps."""

import asyncio
import base64
import json

from voice import simulator
from voice.simulator import Playout, SimulatedCaller


def test_playout_hears_no_gap_while_the_sender_keeps_its_lead():
    playout = Playout()
    # Three frames at once (two of lead), then one every 20 ms, each up to 35 ms late:
    # the queue never runs dry.
    arrivals = [0.0, 0.0, 0.0] + [0.02 * i + 0.035 for i in range(1, 40)]
    assert [playout.frame(t) for t in arrivals] == [0.0] * len(arrivals)


def test_playout_hears_the_silence_when_the_queue_runs_dry():
    playout = Playout()
    assert playout.frame(0.0) == playout.frame(0.0) == 0.0  # 40 ms queued
    assert playout.frame(0.02) == 0.0  # runs out at 0.06
    gap = playout.frame(0.10)  # 40 ms after the queue ran dry
    assert abs(gap - 0.04) < 1e-9
    assert playout.frame(0.12) == 0.0  # back on a fresh schedule from 0.10
    assert playout.frame(0.1405) == 0.0  # within the tolerance of timer noise
    playout.reset()  # a new reply (or a clear): silence before it is not a gap
    assert playout.frame(5.0) == 0.0


def test_the_caller_counts_gaps_and_underruns_per_reply(monkeypatch):
    """Frames arrive at scripted times: one late frame with lead to spare, one that is heard."""
    payload = base64.b64encode(b"\xff" * 160).decode()
    media = json.dumps({"event": "media", "streamSid": "MZ", "media": {"payload": payload}})
    mark = json.dumps({"event": "mark", "streamSid": "MZ", "mark": {"name": "reply-1"}})
    # (arrival time, message): 4 frames at once (60 ms of lead), two on time, then one 70 ms
    # after the last (the queue still held 10 ms: late, but not heard), then one 150 ms
    # after that (the queue ran dry 120 ms before it: heard).
    script = [(0.0, media)] * 4 + [(0.02, media), (0.04, media), (0.11, media)]
    script += [(0.26, media), (0.28, media), (0.30, mark)]
    clock = {"now": 0.0}
    queue = list(script)

    async def receive():
        if not queue:
            return None
        clock["now"], message = queue.pop(0)
        return message

    async def send(_text):
        return None

    monkeypatch.setattr(simulator.time, "monotonic", lambda: clock["now"])
    caller = SimulatedCaller(
        send=send, receive=receive, call_sid="CA1", token="t", caller_phone="+1"
    )
    asyncio.run(caller._listen())
    log = caller.log
    assert [t.frames for t in log.agent_turns] == [9]
    assert log.late_frames == 2  # inter-arrival gaps over 60 ms: 70 ms and 150 ms
    assert [round(g[2]) for g in log.gaps] == [70, 150]
    (underrun,) = log.underruns  # only the second one is heard
    assert underrun[:2] == (0, 7) and round(underrun[2]) == 120


def test_the_callers_speech_ends_at_its_last_loud_frame_as_sent():
    """Turn latency starts when the last loud frame's audio ended (a frame is sent once its
    20 ms are captured, as Twilio sends them), not at the end of a quiet tail."""
    import numpy as np

    from voice.pipeline.codecs import pcm16_to_mulaw
    from voice.simulator import speech_end_index

    t = np.arange(160) / 8000
    loud = pcm16_to_mulaw((8000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes())
    fading = pcm16_to_mulaw((20 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes())
    frames = [loud] * 5 + [fading] * 3
    assert speech_end_index(frames) == 5
    assert speech_end_index(frames, gate_db=60) == 8  # a laxer gate keeps the tail
    sent: list[tuple[float, str]] = []

    async def send(text):
        sent.append((simulator.time.monotonic(), json.loads(text)["media"]["payload"]))

    async def receive():
        return None

    async def scenario():
        caller = SimulatedCaller(
            send=send, receive=receive, call_sid="CA1", token="t", caller_phone="+1"
        )
        caller.speak(frames)
        microphone = asyncio.ensure_future(caller._microphone())
        await asyncio.sleep(0.3)
        microphone.cancel()
        return caller

    caller = asyncio.run(scenario())
    payloads = [payload for _, payload in sent]
    assert payloads[:8] == [base64.b64encode(f).decode() for f in frames]  # the tail is sent too
    assert abs(caller._utterance_end - sent[4][0]) < 0.005  # when the 5th loud frame went
