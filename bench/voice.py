"""Simultaneous phone calls against a real Daphne process: turn latency, audio gaps, CPU.

    .venv/bin/python bench/voice.py                 # both modes, default sizes
    .venv/bin/python bench/voice.py --calls 25 --mode cloud --cpus 0
    .venv/bin/python bench/voice.py --mode offline --cold   # pools grow during the run

Each simulated call goes the way a Twilio call does: a signed POST to
/api/v1/voice/incoming, the TwiML's stream URL and token, then a WebSocket on which
the caller streams 20 ms mu-law frames every 20 ms (speech, then digital silence)
and answers marks. Per turn it measures, on the caller's side, the time from the end
of its speech to the agent's first audio frame. Inside replies it counts:

- late frames: more than 60 ms between two consecutive frames (jitter as it arrives);
- heard gaps: silences the caller would hear, modelling Twilio's playback queue
  (voice.simulator.Playout): frames are played back to back, so a frame that comes
  late is only heard as a gap if the audio queued before it (the pacer's lead) has
  already run out.  This is the "no audible gap" figure; late frames are shown too.

Modes:
- offline: PocketSphinx, eSpeak NG, Silero VAD in the server process.
- cloud: Deepgram and Cartesia replaced by the local fakes of
  voice/tests/pipeline/fakes.py answering after a fixed delay (--delay-ms), so what
  remains of the turn latency is our own overhead.

Own overhead ("own p95") = caller's turn latency p95 - the end-of-speech wait -
2 x the fakes' delay.  Why 2 x, once each: in a turn the pipeline waits on each
provider exactly once on its critical path.  Deepgram: the audio is streamed while
the caller speaks, so at the end of speech only the final result is awaited (the fake
answers CloseStream after the delay; interim results are not waited for).  Cartesia:
one request per reply, and its first chunk comes after the delay; the rest of the
reply arrives while the first frames play.  Everything else is ours: the VAD's frame
processing, sending CloseStream and reading the result, the agent (rules, database),
the request and first chunk's decoding and encoding, the pacer, the event loop's
queueing.  A fake that answers later than its delay (its own process busy) counts
against us; the fakes report what they really waited, printed below, to tell.

Where the caller's clock starts matters as much (the subtraction assumes it starts
when the server's end-of-speech wait does).  It starts when the audio of the caller's
last loud frame ended (voice.simulator.speech_end_index: the detector's own loudness
rule), as sent Twilio's way, at the end of the frame's 20 ms.  Until this change it
started at the end of the clip's last frame, counted from 20 ms after sending it: the
quiet tail of a synthesized clip and the frame sent "early" put the clock 20-40 ms off
the server's (own p50 came out negative).  The server's own view ("server own p95",
from first_audio in the call logs) is printed as a cross-check; it cannot see delays
before its end-of-speech detector (frames waiting to be read), the caller's view can.

The server is warmed up with as many calls as the run (one sentence each), so it is
measured as a process that has served that many calls before (recognizer built, Silero
models and decoders pooled); --cold warms up with one call only.  The callers run
with their garbage collector off: its pauses (40-60 ms) were measured as gaps.  The
machine is shared: print and compare figures with the load average beside them.

The server runs pinned to the CPUs given by --cpus (default: one core), so
"calls per core" is measured, and its CPU time per call is read from /proc; the
callers and the fakes run on the other CPUs (none of them on the server's).  After
the run it also reports the server's own per-turn breakdown (from the call logs:
recognition, agent, first audio, frames its pacer sent late) and when each gap
happened, to tell a one-off stall from a steady overload.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "bench-auth-token-0123456789abcdef"
CLINIC_NUMBER = "+911234567890"


def end_of_speech_wait_ms() -> int:
    """The silence the server waits for before it answers (SegmenterConfig)."""
    from voice.pipeline.vad import SegmenterConfig

    return SegmenterConfig().trailing_silence_ms


SENTENCES = [
    "What are your clinic hours",
    "What is the consultation fee",
    "Where is the clinic",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """Daphne on a fresh SQLite database with the demo clinic, pinned to some CPUs."""

    def __init__(self, *, env_extra: dict, cpus: str):
        self.dir = tempfile.TemporaryDirectory(prefix="vaani-bench-voice-")
        self.port = free_port()
        self.env = {
            **os.environ,
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + "x" * 50,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SQLITE_PATH": str(Path(self.dir.name) / "bench.sqlite3"),
            "TWILIO_AUTH_TOKEN": TOKEN,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}",
            "VOICE_IDLE_TIMEOUT_SECONDS": "30",
            "VOICE_STREAM_CUSTOM_EVENTS": "1",
            "LOG_LEVEL": "WARNING",
            "DEMO_PASSWORD": "bench-password-123",
            "VOICE_GC_LOG_MS": "10",
            **env_extra,
        }
        for name in ("DATABASE_URL", "REDIS_URL"):
            self.env.pop(name, None)
        self.cpus = cpus
        self.process = None

    def __enter__(self):
        python = sys.executable
        for command in (["migrate", "-v0"], ["seed_demo"]):
            subprocess.run(
                [python, "manage.py", *command],
                cwd=ROOT,
                env=self.env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        command = [
            python,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "vaani.asgi:application",
        ]
        if self.cpus:
            command = ["taskset", "-c", self.cpus, *command]
        # Its stderr goes to a file (read for the collector's pauses, see gc_pauses()): a
        # pipe nobody reads during the run would fill up and stall the server.
        self.stderr_path = Path(self.dir.name) / "server.stderr"
        with open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=stderr
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("Daphne did not start: " + self.stderr_path.read_text())

    def gc_pauses(self, since: float, until: float) -> list[dict]:
        """The server's garbage collections logged between two ``time.monotonic()``
        readings (VOICE_GC_LOG_MS, voice/gcwatch.py): every full one, younger ones
        of 10 ms or more."""
        pauses = []
        for line in self.stderr_path.read_text().splitlines():
            if not line.startswith("vaani-gc gen="):
                continue
            fields = dict(part.split("=", 1) for part in line.split()[1:])
            if since <= float(fields["at"]) <= until:
                pauses.append({k: float(v) for k, v in fields.items()})
        return pauses

    def gc_idle_before(self, until: float) -> dict | None:
        """The last collection the server ran with no call in flight (voice.runtime)
        before ``until``: what it freed, left tracked, froze."""
        found = None
        for line in self.stderr_path.read_text().splitlines():
            if line.startswith("vaani-gc idle "):
                fields = dict(part.split("=", 1) for part in line.split()[2:])
                if float(fields.get("at", 0)) <= until:
                    found = {k: float(v) for k, v in fields.items()}
        return found

    def __exit__(self, *exc):
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.dir.cleanup()


async def signed_incoming(client, port: int, call_sid: str, caller: str) -> tuple[str, str]:
    """The real webhook, signed as Twilio signs it; returns (stream URL, token).

    On the callers' event loop with one shared client: in a thread with a client each
    (as it was), every call's start held the GIL for 30-50 ms (an SSL context built
    per client) while the loop was timing other calls' frames.
    """
    from twilio.request_validator import RequestValidator

    url = f"http://127.0.0.1:{port}/api/v1/voice/incoming"
    params = {
        "CallSid": call_sid,
        "From": caller,
        "To": CLINIC_NUMBER,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "AccountSid": "ACbench",
    }
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    response = await client.post(url, data=params, headers={"X-Twilio-Signature": signature})
    response.raise_for_status()
    body = response.text
    stream_url = re.search(r'<Stream url="([^"]+)"', body).group(1)
    token = re.search(r'<Parameter name="token" value="([^"]+)"', body).group(1)
    return stream_url, token


async def one_call(client, index: int, port: int, speech: list[list[bytes]], results: dict) -> None:
    import websockets

    from voice.simulator import SimulatedCaller

    call_sid = f"CA{uuid.uuid4().hex}"
    caller_phone = f"+91980000{index:04d}"
    stream_url, token = await signed_incoming(client, port, call_sid, caller_phone)
    async with websockets.connect(stream_url, max_size=2**20, open_timeout=30) as ws:

        async def receive():
            try:
                return await ws.recv()
            except websockets.ConnectionClosed:
                return None

        caller = SimulatedCaller(
            send=ws.send, receive=receive, call_sid=call_sid, token=token, caller_phone=caller_phone
        )
        await caller.start()
        ok = await caller.wait_for_agent(timeout=60)
        for frames in speech:
            if not ok:
                break
            caller._agent_done.clear()
            caller.speak(frames)
            await asyncio.sleep(len(frames) * 0.02)
            ok = await caller.wait_for_agent(timeout=60)
        await caller.stop()
        if not ok:
            print(f"  call {index} stalled; agent said: {caller.agent_lines()}", file=sys.stderr)
        results["latencies"].extend(caller.log.turn_latencies)
        results["late_frames"] += caller.log.late_frames
        results["gaps"].extend(caller.log.gaps)
        results["underruns"].extend(caller.log.underruns)
        results["frames"] += sum(t.frames for t in caller.log.agent_turns)
        results["failed"] += 0 if ok else 1


async def run_calls(calls: int, port: int, speech, stagger_s: float) -> dict:
    results = {
        "latencies": [],
        "late_frames": 0,
        "frames": 0,
        "failed": 0,
        "gaps": [],
        "underruns": [],
    }

    import httpx

    async def start(client, i):
        await asyncio.sleep(i * stagger_s)
        try:
            await one_call(client, i, port, speech, results)
        except Exception as exc:  # a failed call is a figure, not a crash
            results["failed"] += 1
            print(f"  call {i} failed: {exc!r}", file=sys.stderr)

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(start(client, i) for i in range(calls)))
    return results


def caller_speech() -> list[list[bytes]]:
    from voice.pipeline.codecs import pcm_to_telephony_frames
    from voice.pipeline.tts import EspeakTTS

    tts = EspeakTTS()
    return [
        pcm_to_telephony_frames(a.pcm16, a.sample_rate)
        for a in (tts.synthesize(s, language="en") for s in SENTENCES)
    ]


def start_fakes(delay_ms: float):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voice.tests.pipeline.fakes",
            "--delay-ms",
            str(delay_ms),
            "--transcript",
            SENTENCES[0].lower(),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    urls = json.loads(process.stdout.readline())
    return process, urls


def stop_fakes(process) -> dict:
    """Stops the fakes; returns the delays their answers really waited (ms)."""
    process.send_signal(signal.SIGINT)
    try:
        out, _ = process.communicate(timeout=10)
        return json.loads(out.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        process.kill()
        return {}


def wait_until_idle(pid: int, *, busy_below: float = 0.03, timeout_s: float = 90.0) -> float:
    """Waits until the process uses less than ``busy_below`` of a core over half a second;
    returns how long that took (s)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if (cpu_seconds(pid) - before) / 0.5 < busy_below:
            break
    return time.monotonic() - started


def last_call_log_id(sqlite_path: str) -> int:
    import sqlite3

    row = sqlite3.connect(sqlite_path).execute("SELECT MAX(id) FROM voice_calllog").fetchone()
    return row[0] or 0


def server_breakdown(sqlite_path: str, after_id: int = 0) -> dict:
    """The server's own view of each turn (CallLog.latency) of the calls after the
    warm-up: where the time went."""
    import sqlite3

    rows = (
        sqlite3.connect(sqlite_path)
        .execute("SELECT latency, providers FROM voice_calllog WHERE id > ?", (after_id,))
        .fetchall()
    )
    logs = [json.loads(raw or "{}") for raw, _ in rows]
    per_turn = [t for log in logs for t in log.get("per_turn", [])]
    served: dict[str, int] = {}
    for _, raw in rows:  # who really served (a cloud run must not quietly fall back)
        providers = json.loads(raw or "{}")
        for key in ("stt_served", "tts_served"):
            for name, count in (providers.get(key) or {}).items():
                served[name] = served.get(name, 0) + count
    out = {
        # The server's pacer: frames sent more than 10 ms after their due time.
        "late_sent": sum(log.get("late_frames", 0) for log in logs),
        "sent": sum(log.get("frames_sent", 0) for log in logs),
        "served": served,
    }
    for key in ("stt_ms", "agent_ms", "transcript_ms", "reply_ms", "first_audio_ms"):
        values = [t[key] for t in per_turn if t.get(key) is not None]
        out[key] = (statistics.median(values), percentile(values, 0.95)) if values else None
    return out


def measure(
    mode: str, calls: int, cpus: str, delay_ms: float, speech, *, cold: bool = False
) -> dict:
    extra, fakes, fake_delays = {}, None, {}
    if mode == "cloud":
        fakes, urls = start_fakes(delay_ms)
        extra = {
            "DEEPGRAM_API_KEY": urls["api_key"],
            "DEEPGRAM_URL": urls["deepgram_url"],
            "CARTESIA_API_KEY": urls["api_key"],
            "CARTESIA_URL": urls["cartesia_url"],
            "VOICE_STT_PROVIDER": "deepgram",
            "VOICE_TTS_PROVIDER": "cartesia",
        }
    try:
        with Server(env_extra=extra, cpus=cpus) as server:
            # Warm-up: as many calls as the run, one sentence each, so the server is
            # measured the way a process that has served that many calls before is: the
            # clinic's recognizer built, the per-call pools (Silero models, PocketSphinx
            # decoders, provider sockets) grown to the peak.  --cold: one call only,
            # and the pools grow during the run (a fresh process's first burst).
            asyncio.run(run_calls(1 if cold else calls, server.port, speech[:1], 0.05))
            time.sleep(1.0)  # the warm-up's call logs are finalized
            # The pools fill in the background (Silero models load at a low priority, so
            # under 25 starting calls they take tens of seconds): measure once the server
            # has gone quiet, not while it is still loading what the warm-up asked for.
            settle_s = wait_until_idle(server.process.pid)
            warm_up_logs = last_call_log_id(server.env["SQLITE_PATH"])
            cpu_before = cpu_seconds(server.process.pid)
            client_before = time.process_time()
            started = time.monotonic()
            # The callers' own garbage collections paused their event loop for 40-60 ms,
            # which they then measured as late frames and gaps of the server's.  They
            # are a measuring instrument: no collections while they measure.
            gc.collect()
            gc.freeze()
            gc.disable()
            try:
                results = asyncio.run(run_calls(calls, server.port, speech, stagger_s=0.2))
            finally:
                gc.enable()
                gc.unfreeze()
            wall = time.monotonic() - started
            cpu = cpu_seconds(server.process.pid) - cpu_before
            gc_pauses = server.gc_pauses(started, started + wall)
            gc_idle = server.gc_idle_before(started)
            client_cpu = time.process_time() - client_before
            time.sleep(1.0)  # the last call logs are finalized
            breakdown = server_breakdown(server.env["SQLITE_PATH"], warm_up_logs)
    finally:
        if fakes is not None:
            fake_delays = stop_fakes(fakes)
    latencies_ms = [x * 1000 for x in results["latencies"]]
    fixed_ms = end_of_speech_wait_ms() + (2 * delay_ms if mode == "cloud" else 0)
    first_audio = breakdown.get("first_audio_ms")
    return {
        "mode": mode + (" cold" if cold else ""),
        "calls": calls,
        "settle_s": settle_s,
        "turns": len(latencies_ms),
        "failed_calls": results["failed"],
        "turn_p50_ms": statistics.median(latencies_ms) if latencies_ms else float("nan"),
        "turn_p95_ms": percentile(latencies_ms, 0.95),
        "overhead_p95_ms": percentile(latencies_ms, 0.95) - fixed_ms,
        "server_overhead_p95_ms": first_audio[1] - fixed_ms if first_audio else float("nan"),
        "fake_delays": fake_delays,
        "late_frames": results["late_frames"],
        "gaps": sorted(results["gaps"], key=lambda g: g[3]),
        "underruns": sorted(results["underruns"], key=lambda g: g[3]),
        "started": started,
        "frames": results["frames"],
        "cpu_s_per_call": cpu / calls,
        "cpu_share_of_one_core": cpu / wall,
        "server": breakdown,
        # The simulated callers share one process: if it is saturated, the gaps and
        # latencies it measures include its own delays.
        "client_cpu_share": client_cpu / wall,
        "gc_pauses": gc_pauses,
        "gc_idle": gc_idle,
        "load": os.getloadavg(),
    }


def keep_off_server_cpus(server_cpus: str) -> None:
    """The callers and the fakes (started from here, so they inherit it) run on the CPUs
    the server does not: it is measured on its core(s) alone, as "calls per core" means.
    Before this, the scheduler put callers and fakes on the server's core too, and what
    they took of it was measured as the server's lateness."""
    if not server_cpus or not hasattr(os, "sched_setaffinity"):
        return
    ours = set()
    for part in server_cpus.split(","):
        low, _, high = part.partition("-")
        ours.update(range(int(low), int(high or low) + 1))
    others = os.sched_getaffinity(0) - ours
    if others:
        os.sched_setaffinity(0, others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["offline", "cloud", "both"], default="both")
    parser.add_argument("--calls", type=int, default=0, help="default: 10 offline, 25 cloud")
    parser.add_argument("--cpus", default="0", help="CPUs for the server (taskset); '' for all")
    parser.add_argument("--delay-ms", type=float, default=150.0, help="the cloud fakes' delay")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="warm up with one call, not as many as the run (pools grow during the run)",
    )
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vaani.settings")
    os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
    keep_off_server_cpus(args.cpus)
    speech = caller_speech()
    modes = ["offline", "cloud"] if args.mode == "both" else [args.mode]
    rows = []
    for mode in modes:
        calls = args.calls or (10 if mode == "offline" else 25)
        print(
            f"{mode}: {calls} simultaneous calls, server on CPU(s) {args.cpus or 'all'} ...",
            flush=True,
        )
        rows.append(measure(mode, calls, args.cpus, args.delay_ms, speech, cold=args.cold))

    print()
    print(
        f"{'mode':12} {'calls':>5} {'turns':>5} {'failed':>6} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'own p95':>7} {'heard gaps':>11} {'late/frames':>12} {'cpu s/call':>10} "
        f"{'core use':>8}"
    )
    for r in rows:
        print(
            f"{r['mode']:12} {r['calls']:5d} {r['turns']:5d} {r['failed_calls']:6d} "
            f"{r['turn_p50_ms']:7.0f} {r['turn_p95_ms']:7.0f} {r['overhead_p95_ms']:7.0f} "
            f"{len(r['underruns']):>11d} {r['late_frames']:>5d}/{r['frames']:<6d} "
            f"{r['cpu_s_per_call']:10.2f} {r['cpu_share_of_one_core']:8.0%}"
        )
    print()
    print("Server side, per turn (p50 / p95 ms, from the end of speech as the VAD saw it):")
    for r in rows:
        server = dict(r["server"])
        late, sent = server.pop("late_sent"), server.pop("sent")
        served = server.pop("served")
        parts = [
            f"{key.removesuffix('_ms')} {v[0]:.0f}/{v[1]:.0f}"
            for key, v in server.items()
            if v is not None
        ]
        load = ", ".join(f"{x:.2f}" for x in r["load"])
        print(f"  {r['mode']:8} {'  '.join(parts)}  sent >10 ms late {late}/{sent}")
        print(f"  {'':8} server own p95 {r['server_overhead_p95_ms']:.0f} ms; served by {served}")
        delays = {
            name.removesuffix("_delays_ms"): values
            for name, values in r["fake_delays"].items()
            if values
        }
        if delays:
            shown = ", ".join(
                f"{name} {statistics.median(v):.0f}/{percentile(v, 0.95):.0f}/{max(v):.0f}"
                for name, v in delays.items()
            )
            print(f"  {'':8} the fakes really waited (p50/p95/max ms): {shown}")
        full = [p for p in r["gc_pauses"] if p["gen"] == 2]
        long_young = [p for p in r["gc_pauses"] if p["gen"] < 2]
        if full:
            longest = max(full, key=lambda p: p["ms"])
            median = statistics.median(p["ms"] for p in full)
            tracked = ", ".join(str(int(p["tracked"])) for p in full[:6])
            print(
                f"  {'':8} server's full GCs: {len(full)}, median {median:.0f} ms, longest"
                f" {longest['ms']:.0f} ms ({longest['cpu_ms']:.0f} ms CPU); objects tracked"
                f" after them: {tracked}{' ...' if len(full) > 6 else ''}"
                f" (frozen {int(full[-1]['frozen'])})"
            )
        else:
            print(f"  {'':8} server's full GCs: none")
        if r["gc_idle"]:
            idle = r["gc_idle"]
            froze = "froze them" if idle["frozen_now"] else "did not freeze"
            print(
                f"  {'':8} idle before the run, the server collected {int(idle['collected'])}"
                f" objects, {int(idle['left'])} left tracked, {froze} (frozen"
                f" {int(idle['frozen'])})"
            )
        if long_young:
            shown = ", ".join(
                f"gen{int(p['gen'])} {p['ms']:.0f} ms ({p['cpu_ms']:.0f} CPU)"
                for p in long_young[:8]
            )
            print(f"  {'':8} server's younger GCs of 10 ms or more: {shown}")
        print(
            f"  {'':8} (callers' process used {r['client_cpu_share']:.0%} of a core;"
            f" load average {load}; server quiet {r['settle_s']:.1f} s after the warm-up)"
        )
    for r in rows:
        for title, key in (("heard gaps", "underruns"), ("gaps > 60 ms", "gaps")):
            if r[key]:
                t0 = r["started"]
                shown = ", ".join(
                    f"{at - t0:.1f}s reply {turn} frame {frame} ({ms:.0f} ms)"
                    for turn, frame, ms, at in r[key][:12]
                )
                more = " ..." if len(r[key]) > 12 else ""
                print(f"  {r['mode']:8} {title} (time into the run): {shown}{more}")
    print()
    print(
        "Turn latency: caller's end of speech -> agent's first audio frame, measured by the caller,"
    )
    print(
        f"including the {end_of_speech_wait_ms()} ms end-of-speech wait. "
        "'own p95' subtracts that wait and,"
    )
    print(f"in cloud mode, the fakes' fixed delays (2 x {args.delay_ms:.0f} ms): our own overhead.")
    print("The caller's clock starts when its last loud frame ended, where the server starts")
    print("the wait. 'first_audio' above is the server's own view of the same turns.")
    print("'heard gaps': silences inside replies with Twilio's playback queue modelled (frames")
    print("play back to back; a late frame is heard only once the queued lead has run out);")
    print("'late': frames more than 60 ms after the previous one, heard or not.")
    print("Goals: offline p95 < 800 ms; own overhead p95 < 50 ms; >= 25 calls on one core with")
    print("the cloud fakes and no audible gap in any reply.")


if __name__ == "__main__":
    main()
