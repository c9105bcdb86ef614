"""The garbage collector's pauses in a process serving calls, measured; off by default.

``VOICE_GC_LOG_MS=N`` (read by ``vaani.asgi``): every full (generation 2) collection,
and any younger one that takes N ms or more, is written to stderr as one line::

    vaani-gc gen=2 ms=41.3 cpu_ms=20.4 collected=352 tracked=48123 frozen=301554 at=1234.567

``ms``: the pause's wall time; ``cpu_ms``: the thread's CPU time in it (less when the
process was preempted: a busy core, not the collector's work); ``tracked``: objects the
collector still tracks outside the frozen ones, after the collection (what the next
full one walks), counted after the pause is timed and only for full collections;
``at``: ``time.monotonic()``, which on Linux other processes (``bench/voice.py``) can
compare with their own.  At exit a ``vaani-gc summary`` line gives the count, total and
longest pause per generation; ``vaani-gc idle`` lines the collections
``voice.runtime`` runs when no call is in flight (what they freed and froze).
"""

from __future__ import annotations

import atexit
import gc
import sys
import time

_started: list[float] = [0.0, 0.0]
_totals: dict[int, list[float]] = {}  # generation -> [count, total ms, max ms]
_threshold_ms: list[float] = [0.0]


def _callback(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0], _started[1] = time.perf_counter(), time.thread_time()
        return
    ms = (time.perf_counter() - _started[0]) * 1000
    cpu_ms = (time.thread_time() - _started[1]) * 1000
    generation = info["generation"]
    totals = _totals.setdefault(generation, [0, 0.0, 0.0])
    totals[0] += 1
    totals[1] += ms
    totals[2] = max(totals[2], ms)
    if generation == 2 or ms >= _threshold_ms[0]:
        tracked = len(gc.get_objects()) if generation == 2 else -1
        sys.stderr.write(
            f"vaani-gc gen={generation} ms={ms:.1f} cpu_ms={cpu_ms:.1f}"
            f" collected={info['collected']} tracked={tracked}"
            f" frozen={gc.get_freeze_count()} at={time.monotonic():.3f}\n"
        )


def _summary() -> None:
    parts = [
        f"gen{g}: {int(c)} collections, {total:.0f} ms in all, longest {longest:.1f} ms"
        for g, (c, total, longest) in sorted(_totals.items())
    ]
    sys.stderr.write("vaani-gc summary " + "; ".join(parts) + "\n")
    sys.stderr.flush()


def installed() -> bool:
    return _callback in gc.callbacks


def install(threshold_ms: float) -> None:
    """Starts logging (once per process)."""
    if _callback in gc.callbacks:
        return
    _threshold_ms[0] = threshold_ms
    gc.callbacks.append(_callback)
    atexit.register(_summary)
