"""Simultaneous phone calls against a real Daphne process: turn latency, audio gaps, CPU.

    .venv/bin/python bench/voice.py                 # both modes, default sizes
    .venv/bin/python bench/voice.py --calls 25 --mode cloud --cpus 0

Each simulated call goes the way a Twilio call does: a signed POST to
/api/v1/voice/incoming, the TwiML's stream URL and token, then a WebSocket on which
the caller streams 20 ms mu-law frames every 20 ms (speech, then silence) and
answers marks. Per turn it measures, on the caller's side, the time from the end
of its speech to the agent's first audio frame, and gaps of more than 60 ms
between frames inside a reply (late frames, what a caller would hear as a gap).

Modes:
- offline: PocketSphinx, eSpeak NG, Silero VAD in the server process.
- cloud: Deepgram and Cartesia replaced by the local fakes of
  voice/tests/pipeline/fakes.py answering after a fixed delay, so what remains of
  the turn latency beyond the end-of-speech wait and the fakes' delay is our own
  overhead.

The server runs pinned to the CPUs given by --cpus (default: one core), so
"calls per core" is measured, and its CPU time per call is read from /proc.  After
the run it also reports the server's own per-turn breakdown (from the call logs:
recognition, agent, first audio, frames its pacer sent late) and when each gap
happened, to tell a one-off stall from a steady overload.
"""

from __future__ import annotations

import argparse
import asyncio
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
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(
            "Daphne did not start: " + (self.process.stderr.read() if self.process.stderr else "")
        )

    def __exit__(self, *exc):
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.dir.cleanup()


def signed_incoming(port: int, call_sid: str, caller: str) -> tuple[str, str]:
    """The real webhook, signed as Twilio signs it; returns (stream URL, token)."""
    import httpx
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
    response = httpx.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=30)
    response.raise_for_status()
    body = response.text
    stream_url = re.search(r'<Stream url="([^"]+)"', body).group(1)
    token = re.search(r'<Parameter name="token" value="([^"]+)"', body).group(1)
    return stream_url, token


async def one_call(index: int, port: int, speech: list[list[bytes]], results: dict) -> None:
    import websockets

    from voice.simulator import SimulatedCaller

    call_sid = f"CA{uuid.uuid4().hex}"
    caller_phone = f"+91980000{index:04d}"
    stream_url, token = await asyncio.to_thread(signed_incoming, port, call_sid, caller_phone)
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
            caller._speech.extend(frames)
            await asyncio.sleep(len(frames) * 0.02)
            ok = await caller.wait_for_agent(timeout=60)
        await caller.stop()
        if not ok:
            print(f"  call {index} stalled; agent said: {caller.agent_lines()}", file=sys.stderr)
        results["latencies"].extend(caller.log.turn_latencies)
        results["late_frames"] += caller.log.late_frames
        results["gaps"].extend(caller.log.gaps)
        results["frames"] += sum(t.frames for t in caller.log.agent_turns)
        results["failed"] += 0 if ok else 1


async def run_calls(calls: int, port: int, speech, stagger_s: float) -> dict:
    results = {"latencies": [], "late_frames": 0, "frames": 0, "failed": 0, "gaps": []}

    async def start(i):
        await asyncio.sleep(i * stagger_s)
        try:
            await one_call(i, port, speech, results)
        except Exception as exc:  # a failed call is a figure, not a crash
            results["failed"] += 1
            print(f"  call {i} failed: {exc!r}", file=sys.stderr)

    await asyncio.gather(*(start(i) for i in range(calls)))
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


def server_breakdown(sqlite_path: str) -> dict:
    """The server's own view of each turn (CallLog.latency): where the time went."""
    import sqlite3

    rows = sqlite3.connect(sqlite_path).execute("SELECT latency FROM voice_calllog").fetchall()
    logs = [json.loads(raw or "{}") for (raw,) in rows]
    per_turn = [t for log in logs for t in log.get("per_turn", [])]
    out = {
        # The server's pacer: frames sent more than 10 ms after their due time.
        "late_sent": sum(log.get("late_frames", 0) for log in logs),
        "sent": sum(log.get("frames_sent", 0) for log in logs),
    }
    for key in ("stt_ms", "agent_ms", "transcript_ms", "reply_ms", "first_audio_ms"):
        values = [t[key] for t in per_turn if t.get(key) is not None]
        out[key] = (statistics.median(values), percentile(values, 0.95)) if values else None
    return out


def measure(mode: str, calls: int, cpus: str, delay_ms: float, speech) -> dict:
    extra, fakes = {}, None
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
            # One warm-up call builds the clinic's recognizer and loads the models.
            asyncio.run(run_calls(1, server.port, speech[:1], 0))
            cpu_before = cpu_seconds(server.process.pid)
            client_before = time.process_time()
            started = time.monotonic()
            results = asyncio.run(run_calls(calls, server.port, speech, stagger_s=0.2))
            wall = time.monotonic() - started
            cpu = cpu_seconds(server.process.pid) - cpu_before
            client_cpu = time.process_time() - client_before
            time.sleep(1.0)  # the last call logs are finalized
            breakdown = server_breakdown(server.env["SQLITE_PATH"])
    finally:
        if fakes is not None:
            fakes.send_signal(signal.SIGINT)
            fakes.wait(timeout=10)
    latencies_ms = [x * 1000 for x in results["latencies"]]
    fixed_ms = end_of_speech_wait_ms() + (2 * delay_ms if mode == "cloud" else 0)
    return {
        "mode": mode,
        "calls": calls,
        "turns": len(latencies_ms),
        "failed_calls": results["failed"],
        "turn_p50_ms": statistics.median(latencies_ms) if latencies_ms else float("nan"),
        "turn_p95_ms": percentile(latencies_ms, 0.95),
        "overhead_p95_ms": percentile(latencies_ms, 0.95) - fixed_ms,
        "late_frames": results["late_frames"],
        "gaps": sorted(results["gaps"], key=lambda g: g[3]),
        "started": started,
        "frames": results["frames"],
        "cpu_s_per_call": cpu / calls,
        "cpu_share_of_one_core": cpu / wall,
        "server": breakdown,
        # The simulated callers share one process: if it is saturated, the gaps and
        # latencies it measures include its own delays.
        "client_cpu_share": client_cpu / wall,
        "load": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["offline", "cloud", "both"], default="both")
    parser.add_argument("--calls", type=int, default=0, help="default: 10 offline, 25 cloud")
    parser.add_argument("--cpus", default="0", help="CPUs for the server (taskset); '' for all")
    parser.add_argument("--delay-ms", type=float, default=150.0, help="the cloud fakes' delay")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vaani.settings")
    os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
    speech = caller_speech()
    modes = ["offline", "cloud"] if args.mode == "both" else [args.mode]
    rows = []
    for mode in modes:
        calls = args.calls or (10 if mode == "offline" else 25)
        print(
            f"{mode}: {calls} simultaneous calls, server on CPU(s) {args.cpus or 'all'} ...",
            flush=True,
        )
        rows.append(measure(mode, calls, args.cpus, args.delay_ms, speech))

    print()
    print(
        f"{'mode':8} {'calls':>5} {'turns':>5} {'failed':>6} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'own p95':>7} {'late/frames':>12} {'cpu s/call':>10} {'core use':>8}"
    )
    for r in rows:
        print(
            f"{r['mode']:8} {r['calls']:5d} {r['turns']:5d} {r['failed_calls']:6d} "
            f"{r['turn_p50_ms']:7.0f} {r['turn_p95_ms']:7.0f} {r['overhead_p95_ms']:7.0f} "
            f"{r['late_frames']:>5d}/{r['frames']:<6d} {r['cpu_s_per_call']:10.2f} "
            f"{r['cpu_share_of_one_core']:8.0%}"
        )
    print()
    print("Server side, per turn (p50 / p95 ms, from the end of speech as the VAD saw it):")
    for r in rows:
        server = dict(r["server"])
        late, sent = server.pop("late_sent"), server.pop("sent")
        parts = [
            f"{key.removesuffix('_ms')} {v[0]:.0f}/{v[1]:.0f}"
            for key, v in server.items()
            if v is not None
        ]
        load = ", ".join(f"{x:.2f}" for x in r["load"])
        print(f"  {r['mode']:8} {'  '.join(parts)}  sent >10 ms late {late}/{sent}")
        print(
            f"  {'':8} (callers' process used {r['client_cpu_share']:.0%} of a core;"
            f" load average {load})"
        )
    for r in rows:
        if r["gaps"]:
            t0 = r["started"]
            shown = ", ".join(
                f"{at - t0:.1f}s reply {turn} frame {frame} ({ms:.0f} ms)"
                for turn, frame, ms, at in r["gaps"][:12]
            )
            more = " ..." if len(r["gaps"]) > 12 else ""
            print(f"  {r['mode']:8} gaps > 60 ms (time into the run): {shown}{more}")
    print()
    print(
        "Turn latency: caller's end of speech -> agent's first audio frame, measured by the caller,"
    )
    print(
        f"including the {end_of_speech_wait_ms()} ms end-of-speech wait. "
        "'own p95' subtracts that wait and,"
    )
    print(f"in cloud mode, the fakes' fixed delays (2 x {args.delay_ms:.0f} ms): our own overhead.")
    print("The server starts the wait at the last loud frame it hears, the caller's clock at the")
    print("end of its audio clip, whose last 20-40 ms can already be quiet: 'own' can come out")
    print("slightly negative. 'first_audio' above is the server's own view of the same turns.")
    print("Goals: offline p95 < 800 ms; own overhead p95 < 50 ms; >= 25 calls on one core with")
    print("the cloud fakes and no late frames.")


if __name__ == "__main__":
    main()
