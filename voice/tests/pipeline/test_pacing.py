"""Real-time frame pacing: no drift, no bursts, instant cancellation."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from voice.pipeline.pacing import FramePacer, aiter_from_thread, aiter_in_thread, pace_frames

FRAMES = [bytes([i % 256]) * 160 for i in range(25)]


class Recorder:
    def __init__(self, delay_s: float = 0.0):
        self.times: list[float] = []
        self.frames: list[bytes] = []
        self.delay_s = delay_s

    async def __call__(self, frame: bytes) -> None:
        self.times.append(time.monotonic())
        self.frames.append(frame)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)


def test_frames_are_sent_on_a_20ms_grid():
    rec = Recorder()

    async def run():
        start = time.monotonic()
        # No re-anchoring: a stall of the (shared, busy) test machine must not shift the grid.
        stats = await FramePacer(rec, max_catchup_ms=10_000).play(FRAMES)
        return start, stats

    start, stats = asyncio.run(run())
    assert rec.frames == FRAMES and stats.frames_sent == 25 and not stats.cancelled
    offsets = [(t - start) * 1000 for t in rec.times]
    for i, off in enumerate(offsets):
        assert off >= i * 20 - 1.5, f"frame {i} sent early at {off:.1f} ms"  # never ahead
    assert offsets[-1] == pytest.approx(24 * 20, abs=40)
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert sorted(gaps)[len(gaps) // 2] == pytest.approx(20, abs=3)
    # Not bursty: back-to-back sends happen only to catch up after a late frame
    # (possible when the test machine is busy), never as the normal rhythm.
    assert sum(g < 5 for g in gaps) <= stats.late_frames


def test_no_drift_when_sending_takes_time():
    # A 6 ms send would accumulate to 25 x 26 ms with fixed sleeps; due times absorb it.
    rec = Recorder(delay_s=0.006)

    async def run():
        start = time.monotonic()
        await pace_frames(FRAMES, rec, max_catchup_ms=10_000)
        return start

    start = asyncio.run(run())
    assert (rec.times[-1] - start) * 1000 == pytest.approx(24 * 20, abs=40)  # not 25 x 26 ms


def test_prebuffer_frames_go_out_immediately():
    rec = Recorder()

    async def run():
        start = time.monotonic()
        await FramePacer(rec, prebuffer_frames=3).play(FRAMES[:7])
        return start

    start = asyncio.run(run())
    offsets = [(t - start) * 1000 for t in rec.times]
    assert offsets[3] < 10  # frames 0..3 without waiting: 3 frames of lead
    assert offsets[4] >= 20 - 1.5
    assert offsets[6] == pytest.approx(3 * 20, abs=15)


def test_frames_go_in_groups_per_wake_up_never_more_than_the_group_early():
    rec = Recorder()

    async def run():
        start = time.monotonic()
        await FramePacer(rec, prebuffer_frames=2, frames_per_wake=2).play(FRAMES[:10])
        return start

    start = asyncio.run(run())
    offsets = [(t - start) * 1000 for t in rec.times]
    # Frame i is due at (i - 2) x 20 ms; a pair's first frame (even i) waits for its due
    # time and the odd one goes with it, 20 ms early: 0-3 at once, 4+5 at 40 ms, 6+7 at 80.
    for index, offset in enumerate(offsets):
        due = (index - 2) * 20
        assert offset >= due - (index % 2) * 20 - 1.5, f"frame {index} before its group's time"
        assert offset < max(due, 0) + 15, f"frame {index} late"
    assert offsets[3] < 10
    assert offsets[5] - offsets[4] < 5  # a pair goes together
    assert offsets[6] - offsets[4] == pytest.approx(40, abs=10)  # the next pair waits


def test_cancel_stops_at_once():
    rec = Recorder()

    async def run():
        pacer = FramePacer(rec)
        task = asyncio.create_task(pacer.play([bytes(160)] * 500))
        await asyncio.sleep(0.1)
        cancelled_at = time.monotonic()
        pacer.cancel()
        stats = await task
        return cancelled_at, stats

    cancelled_at, stats = asyncio.run(run())
    assert stats.cancelled
    assert all(t <= cancelled_at for t in rec.times)  # nothing sent after the barge-in
    assert 3 <= stats.frames_sent <= 8


def test_cancel_interrupts_the_wait_for_the_next_frame():
    # Long frames make the pacer sleep ~0.5 s; cancel must not wait that out.
    rec = Recorder()

    async def run():
        pacer = FramePacer(rec, frame_ms=500)
        task = asyncio.create_task(pacer.play([bytes(160)] * 10))
        await asyncio.sleep(0.1)
        cancelled_at = time.monotonic()
        pacer.cancel()
        stats = await task
        return time.monotonic() - cancelled_at, stats

    waited, stats = asyncio.run(run())
    assert waited < 0.1
    assert stats.frames_sent == 1 and stats.cancelled


def test_task_cancellation_also_stops_playback():
    rec = Recorder()

    async def run():
        task = asyncio.create_task(pace_frames([bytes(160)] * 500, rec))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        sent = len(rec.frames)
        await asyncio.sleep(0.05)
        return sent

    sent = asyncio.run(run())
    assert len(rec.frames) == sent < 6


def test_stalled_source_counts_underrun_and_does_not_burst():
    rec = Recorder()

    async def source():
        for i in range(10):
            if i == 5:
                await asyncio.sleep(0.2)  # TTS hiccup
            yield bytes([i]) * 160

    async def run():
        return await FramePacer(rec).play(source())

    stats = asyncio.run(run())
    assert stats.frames_sent == 10 and stats.underruns == 1 and stats.late_frames >= 1
    # Paced again after the stall (4 gaps of ~20 ms), not dumped in a burst (~0 ms).
    assert (rec.times[9] - rec.times[5]) * 1000 > 60


def test_the_lead_is_rebuilt_after_a_stall():
    rec = Recorder()

    async def source():
        for i in range(12):
            if i == 6:
                await asyncio.sleep(0.2)  # TTS hiccup: the caller's queue runs dry
            yield bytes([i]) * 160

    async def run():
        return await FramePacer(rec, prebuffer_frames=2).play(source())

    stats = asyncio.run(run())
    assert stats.underruns == 1
    # After the stall frame 6 plays at once, and 7 and 8 go with it (40 ms of lead again,
    # as at a reply's start); frame 9 follows 20 ms later, and so on in real time.
    restart = rec.times[6]
    assert (rec.times[8] - restart) * 1000 < 15
    assert (rec.times[9] - restart) * 1000 > 10
    assert (rec.times[11] - rec.times[9]) * 1000 > 30


def test_async_source_is_closed_on_cancel():
    closed = []

    async def source():
        try:
            for _ in range(100):
                yield bytes(160)
        finally:
            closed.append(True)

    async def run():
        pacer = FramePacer(Recorder())
        task = asyncio.create_task(pacer.play(source()))
        await asyncio.sleep(0.05)
        pacer.cancel()
        await task

    asyncio.run(run())
    assert closed == [True]


def test_aiter_in_thread_yields_items_and_closes_generator():
    produced, closed = [], []

    def gen():
        try:
            for i in range(100):
                produced.append(i)
                yield i
        finally:
            closed.append(True)

    async def run():
        out = []
        agen = aiter_in_thread(gen())
        async for item in agen:
            out.append(item)
            if item == 3:
                break
        await agen.aclose()
        return out

    assert asyncio.run(run()) == [0, 1, 2, 3]
    assert closed == [True] and len(produced) == 4  # lazily produced, stopped on close


def test_aiter_from_thread_runs_the_producer_ahead_and_closes_it_there():
    import threading

    produced, closed_in = [], []

    def gen():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed_in.append(threading.current_thread().name)

    async def run():
        out = []
        agen = aiter_from_thread(gen())
        async for item in agen:
            out.append(item)
            if item == 0:
                await asyncio.sleep(0.05)  # meanwhile the producer runs ahead
            if item == 3:
                break
        await agen.aclose()
        await asyncio.sleep(0.05)
        return out

    assert asyncio.run(run()) == [0, 1, 2, 3]
    assert len(produced) > 4  # ran ahead of the consumer
    assert closed_in[0].startswith("producer")  # closed where it ran


def test_aiter_from_thread_delivers_everything_and_raises_producer_errors():
    def gen():
        yield from range(500)
        raise ValueError("synthesis failed")

    async def run():
        out = []
        with pytest.raises(ValueError, match="synthesis failed"):
            async for item in aiter_from_thread(gen()):
                out.append(item)
        return out

    assert asyncio.run(run()) == list(range(500))
