"""Real-time pacing of outbound 20 ms frames, cancellable for barge-in.

Why pace at all: Twilio plays what it receives; dumping a whole reply at
once fills its buffer, so a barge-in "clear" arrives after seconds of queued
audio and marks lose their timing.  Sending each frame at its due time keeps
only a small lead in flight (``prebuffer_frames``: enough to ride out jitter,
little enough that marks say what was heard), so the bot can stop talking at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class PacingStats:
    frames_sent: int = 0
    late_frames: int = 0  # sent more than late_threshold_ms after their due time
    max_late_ms: float = 0.0
    underruns: int = 0  # source was so late that the schedule was re-anchored
    cancelled: bool = False
    send_times: list[float] = field(default_factory=list, repr=False)  # clock() at each send


class FramePacer:
    """Sends frames at ``start + i * frame_ms`` on a monotonic clock.

    Due times are computed from the start rather than sleeping a fixed 20 ms
    per frame, so sleep overshoot and send time never accumulate into drift.
    ``cancel()`` wakes the pacer at once and no further frame is sent.
    """

    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        *,
        frame_ms: float = 20.0,
        prebuffer_frames: int = 0,
        late_threshold_ms: float = 10.0,
        max_catchup_ms: float = 100.0,
        frames_per_wake: int = 1,
        clock: Callable[[], float] = time.monotonic,
        record_send_times: bool = False,
    ) -> None:
        self._send = send
        self.frame_s = frame_ms / 1000.0
        # Lead over real time to absorb network jitter: frame i is due at
        # start + (i - prebuffer_frames) * frame_ms, so frames 0..prebuffer go out at once.
        self.prebuffer_frames = prebuffer_frames
        # Frames sent per timer wake-up: k frames every k x 20 ms, each still sent no
        # earlier than ``(k - 1) x 20 ms`` before its due time.  A server with many
        # calls spends much of its event loop on these wake-ups (a timer, a callback,
        # a socket write each); with a lead larger than k frames the caller hears no
        # difference.
        self.frames_per_wake = max(1, frames_per_wake)
        self.late_threshold_s = late_threshold_ms / 1000.0
        self.max_catchup_s = max_catchup_ms / 1000.0
        self._clock = clock
        self._record = record_send_times
        self._cancelled = False
        self._waiter: asyncio.Future[None] | None = None
        self.stats = PacingStats()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """Stop playback now (call from the event loop thread, e.g. on barge-in)."""
        self._cancelled = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _sleep_until(self, due: float) -> None:
        delay = due - self._clock()
        if delay <= 0:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(delay, lambda: waiter.done() or waiter.set_result(None))
        self._waiter = waiter
        try:
            await waiter
        finally:
            handle.cancel()
            self._waiter = None

    async def play(self, frames: Iterable[bytes] | AsyncIterable[bytes]) -> PacingStats:
        """Send every frame on schedule; returns stats (also on cancel via ``cancel()``)."""
        stats = self.stats = PacingStats()
        start = self._clock()
        index = 0
        source = _as_async(frames)
        try:
            async for frame in source:
                if self._cancelled:
                    break
                due = start + (index - self.prebuffer_frames) * self.frame_s
                # The first frame of each group waits for its due time; the rest follow it.
                wake = due - (index % self.frames_per_wake) * self.frame_s
                if wake > self._clock():
                    await self._sleep_until(wake)
                    if self._cancelled:
                        break
                now = self._clock()
                late = now - due  # a slow source or a busy event loop (negative: early)
                if index >= self.prebuffer_frames and late > self.late_threshold_s:
                    stats.late_frames += 1
                    stats.max_late_ms = max(stats.max_late_ms, late * 1000)
                if late > self.max_catchup_s:
                    # Far behind (e.g. TTS stalled).  Bursting the backlog would
                    # defeat pacing, so restart the schedule from now, lead included:
                    # the caller's side has run dry and restarts playback with this
                    # frame, so the next ``prebuffer_frames`` go at once, as at the
                    # start (without them every later frame would be due exactly when
                    # it must play, and any jitter after a stall would be heard).
                    stats.underruns += 1
                    start = now - index * self.frame_s
                await self._send(frame)
                if self._record:
                    stats.send_times.append(self._clock())
                stats.frames_sent += 1
                index += 1
        except asyncio.CancelledError:
            stats.cancelled = True
            raise
        finally:
            await source.aclose()  # stops an upstream generator (e.g. TTS) on barge-in
        stats.cancelled = stats.cancelled or self._cancelled
        return stats


async def _as_async(frames: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(frames, AsyncIterable):
        try:
            async for item in frames:
                yield item
        finally:
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                await aclose()
    else:
        for item in frames:
            yield item


async def aiter_in_thread(iterable: Iterable[T]) -> AsyncIterator[T]:
    """Iterate a blocking iterator (TTS synthesis, file reads) off the event loop.

    Each ``next()`` runs in the default executor, so a slow synthesis step
    never blocks the consumer's websocket; closing the async iterator closes
    the underlying generator (stopping synthesis on barge-in).
    """
    iterator = iter(iterable)
    done = object()
    try:
        while True:
            item = await asyncio.to_thread(next, iterator, done)
            if item is done:
                return
            yield item  # type: ignore[misc]
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            # ValueError: still running in the worker thread; it ends on its own.
            with contextlib.suppress(ValueError):
                close()


# Threads for aiter_from_thread: idle ones are reused, so starting a reply does not
# start a thread (Thread.start() waits for the new thread, a stall on a busy loop).
_producers = ThreadPoolExecutor(max_workers=64, thread_name_prefix="producer")


async def aiter_from_thread(iterable: Iterable[T]) -> AsyncIterator[T]:
    """Run a blocking iterator (TTS synthesis and encoding) to the end in a thread of its own.

    Items are handed to the event loop through a buffer: the loop is woken at
    most once per batch of items that arrive while it waits, not once per item
    as with :func:`aiter_in_thread`, and the producer runs ahead of the consumer
    (a whole reply is synthesised in a fraction of its playing time, so the
    pacer never waits for a sentence boundary).  Its own thread, not the
    default executor: a reply streamed from a cloud TTS blocks on the network,
    and a few such replies would otherwise starve every other call's thread
    work.  Closing the async iterator (barge-in) stops the producer at the next
    item; the iterator is closed in the producer thread, where it ran.  The
    threads come from a pool of 64 kept for this (more replies at once queue).
    """
    loop = asyncio.get_running_loop()
    items: deque[T] = deque()
    ready = asyncio.Event()
    stop = threading.Event()
    state = {"done": False, "error": None, "woken": False}

    def wake() -> None:  # on the loop
        state["woken"] = False
        ready.set()

    def notify() -> None:  # in the producer
        if not state["woken"]:
            state["woken"] = True
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                loop.call_soon_threadsafe(wake)

    def produce() -> None:
        iterator = iter(iterable)
        try:
            for item in iterator:
                if stop.is_set():
                    break
                items.append(item)
                notify()
        except BaseException as exc:  # handed to the consumer
            state["error"] = exc
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
            state["done"] = True
            notify()

    _producers.submit(produce)
    try:
        while True:
            ready.clear()  # before looking: an item added after this wakes us again
            while items:
                yield items.popleft()
            if state["done"]:
                while items:  # added between the check above and "done"
                    yield items.popleft()
                if state["error"] is not None:
                    raise state["error"]
                return
            await ready.wait()
    finally:
        stop.set()


async def pace_frames(
    frames: Iterable[bytes] | AsyncIterable[bytes],
    send: Callable[[bytes], Awaitable[None]],
    **options: float,
) -> PacingStats:
    """One-shot convenience around :class:`FramePacer` (cancel by cancelling the task)."""
    return await FramePacer(send, **options).play(frames)  # type: ignore[arg-type]
