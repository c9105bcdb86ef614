"""Audio format helpers for the telephony leg: G.711 mu-law, resampling, framing.

Twilio Media Streams carry 8 kHz mono mu-law in 20 ms frames (160 bytes),
base64-encoded inside JSON.  Everything here is pure numpy so it is cheap to
call on every 20 ms frame and does not depend on the deprecated ``audioop``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from functools import lru_cache
from math import gcd

import numpy as np

TELEPHONY_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES_8K = TELEPHONY_RATE * FRAME_MS // 1000  # 160 samples
MULAW_FRAME_BYTES = FRAME_SAMPLES_8K  # one byte per sample
MULAW_SILENCE = 0xFF  # encodes PCM 0 (positive zero)

# G.711 constants, expressed on the 16-bit scale (the classic CCITT/Sun
# implementation works on 14-bit samples with BIAS 33 / CLIP 8159; shifting by
# two gives identical codes for every 16-bit input).
_BIAS = 0x84
_CLIP = 32635


def _build_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _build_encode_table() -> np.ndarray:
    # Index = the int16 sample reinterpreted as uint16, so a lookup is one
    # fancy-index op per buffer (64 KiB table).
    pcm = np.arange(65536, dtype=np.int32)
    pcm = np.where(pcm >= 32768, pcm - 65536, pcm)
    pcm = pcm >> 2  # 14-bit domain, as in the reference implementation
    sign = np.where(pcm < 0, 0x80, 0)
    # Clip, add bias, and saturate at the top of segment 7 (the reference code
    # returns code 0x7F^mask when the biased value overflows 13 bits).
    mag = np.minimum(np.minimum(np.abs(pcm), _CLIP >> 2) + (_BIAS >> 2), 0x1FFF)
    # Segment = position of the highest set bit above bit 5 (0..7).
    exponent = np.zeros_like(mag)
    for seg in range(1, 8):
        exponent = np.where(mag >= (0x40 << (seg - 1)), seg, exponent)
    mantissa = (mag >> (exponent + 1)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


_ULAW_TO_PCM = _build_decode_table()
_PCM_TO_ULAW = _build_encode_table()


def mulaw_to_pcm16(data: bytes) -> bytes:
    """Decode G.711 mu-law bytes into little-endian signed 16-bit PCM bytes."""
    codes = np.frombuffer(data, dtype=np.uint8)
    return _ULAW_TO_PCM[codes].astype("<i2").tobytes()


def pcm16_to_mulaw(data: bytes) -> bytes:
    """Encode little-endian signed 16-bit PCM bytes into G.711 mu-law bytes."""
    samples = np.frombuffer(data, dtype="<i2")
    return _PCM_TO_ULAW[samples.view(np.uint16)].tobytes()


def mulaw_to_array(data: bytes) -> np.ndarray:
    """Decode mu-law bytes to an int16 array (no bytes round trip)."""
    return _ULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)]


def array_to_mulaw(samples: np.ndarray) -> bytes:
    """Encode an int16 array to mu-law bytes."""
    return _PCM_TO_ULAW[np.ascontiguousarray(samples, dtype=np.int16).view(np.uint16)].tobytes()


# ---------------------------------------------------------------------------
# PCM <-> float helpers
# ---------------------------------------------------------------------------


def pcm16_to_float(data: bytes) -> np.ndarray:
    """int16 PCM bytes -> float32 samples in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """float samples in [-1, 1] -> int16 PCM bytes (clipped, rounded)."""
    samples = np.asarray(samples)
    if samples.dtype != np.float32:  # float32 * 2**15 is exact: the same result, half the work
        samples = samples.astype(np.float64)
    scaled = np.clip(np.rint(samples * samples.dtype.type(32768.0)), -32768, 32767)
    return scaled.astype("<i2").tobytes()


# ---------------------------------------------------------------------------
# Resampling: windowed-sinc polyphase filter, numpy only.
# ---------------------------------------------------------------------------

_ZERO_CROSSINGS = 16  # filter half-width in zero crossings of the cut-off sinc
_ROLLOFF = 0.92  # cut-off as a fraction of the lower Nyquist (leaves a transition band)
_KAISER_BETA = 8.6  # ~ -85 dB stop band


@lru_cache(maxsize=16)
def _filter_bank(up: int, down: int) -> tuple[np.ndarray, int]:
    """Return (bank[up, 2*half], half): one FIR row per output phase.

    Output sample n sits at input position t = n*down/up.  Its phase is
    (n*down) % up and the taps cover input indices floor(t)-half+1 .. floor(t)+half.
    """
    cutoff = _ROLLOFF * min(1.0, up / down)  # relative to input Nyquist
    half = int(np.ceil(_ZERO_CROSSINGS / cutoff))
    phases = np.arange(up, dtype=np.float64)[:, None] / up  # fractional offset
    taps = np.arange(-half + 1, half + 1, dtype=np.float64)[None, :]
    x = taps - phases  # distance (input samples) from the output position
    window = np.kaiser(2 * half + 1, _KAISER_BETA)
    # Evaluate the Kaiser window continuously by interpolating its samples.
    win = np.interp(x, np.arange(-half, half + 1, dtype=np.float64), window)
    bank = cutoff * np.sinc(cutoff * x) * win
    bank /= bank.sum(axis=1, keepdims=True)  # exact unity gain at DC for every phase
    return bank.astype(np.float32), half


_MAX_PERIOD_OUTPUTS = 480  # longer periods (odd rate pairs) use per-output taps


@lru_cache(maxsize=16)
def _period_groups(up: int, down: int) -> tuple[tuple[tuple[int, np.ndarray], ...], int]:
    """The filter bank laid out for one period: ``up`` outputs from ``down`` new inputs.

    Output ``m`` of period ``k`` is output ``n = k*up + m``: its taps start at input
    ``k*down + m*down//up - half + 1`` and its phase is ``(m*down) % up``.  Rows are
    grouped so that each group's taps fit one short window (at most ~2x the taps
    of one output): returns ((first column of the group's window, taps[rows, width]),
    ...) with columns counted from the period's first tap, and the period's input span.
    """
    bank, half = _filter_bank(up, down)
    taps = 2 * half
    offsets = (np.arange(up, dtype=np.int64) * down) // up
    rows = max(1, min(up, -(-taps * up // down)))  # a group spans ~taps inputs
    groups = []
    for first in range(0, up, rows):
        ms = np.arange(first, min(up, first + rows))
        col = int(offsets[ms[0]])
        width = int(offsets[ms[-1]]) - col + taps
        w = np.zeros((len(ms), width), dtype=np.float32)
        for i, m in enumerate(ms):
            start = int(offsets[m]) - col
            w[i, start : start + taps] = bank[(m * down) % up]
        groups.append((col, w))
    return tuple(groups), int(offsets[-1]) + taps


class Resampler:
    """Stateful streaming resampler (chunk boundaries leave no clicks).

    Why stateful: TTS audio arrives in chunks and each chunk must be converted
    to 8 kHz immediately; resampling chunks independently would glitch at the
    seams.  Feed chunks with :meth:`process`, then call :meth:`flush` once.

    Output comes in whole periods of the rate ratio (22050 -> 8000: 160 outputs per
    441 inputs, i.e. one 20 ms telephony frame; 8000 -> 16000: 2 outputs per input).
    A period is computed as a few products of strided input windows (views, no
    copies) with the filter rows, instead of gathering taps through index arrays
    per output: the same filter (outputs within 1 LSB), 1.5-2.5x less CPU for eSpeak's
    22050 -> 8000 Hz chunks and ~5x for the recogniser's 8000 -> 16000 Hz.  einsum,
    not BLAS: each output's arithmetic is then the same whatever the chunking
    (streamed == one-shot, byte for byte).  Rate pairs with very long periods fall
    back to per-output taps.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError("sample rates must be positive")
        g = gcd(in_rate, out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._up = out_rate // g
        self._down = in_rate // g
        self._bank, self._half = _filter_bank(self._up, self._down)
        self._groups: tuple[tuple[int, np.ndarray], ...] = ()
        self._span = 0
        if self._up != self._down and self._up <= _MAX_PERIOD_OUTPUTS:
            self._groups, self._span = _period_groups(self._up, self._down)
        # Buffer holds input samples starting at absolute index _buf_start.
        # Starting at -half means the signal is preceded by zeros.
        self._buf = np.zeros(self._half, dtype=np.float32)
        self._buf_start = -self._half
        self._n_in = 0  # absolute input samples received
        self._n_out = 0  # absolute output samples produced
        self._flushed = False

    def _emit(self, limit: int) -> np.ndarray:
        """Produce every output whose taps end before absolute input index ``limit``."""
        if self._groups:
            return self._emit_periods(limit)
        up, down, half = self._up, self._down, self._half
        # Output n needs input index floor(n*down/up) + half < limit.
        max_base = limit - half - 1
        if max_base < 0:
            return np.zeros(0, dtype=np.float32)
        n_end = (max_base * up) // down + 1  # first n with base > max_base
        if n_end <= self._n_out:
            return np.zeros(0, dtype=np.float32)
        n = np.arange(self._n_out, n_end, dtype=np.int64)
        base = (n * down) // up
        phase = (n * down) % up
        idx = (base - half + 1 - self._buf_start)[:, None] + np.arange(2 * half)[None, :]
        out = np.einsum("ij,ij->i", self._buf[idx], self._bank[phase])
        self._n_out = int(n_end)
        self._drop_before((self._n_out * down) // up - half + 1)
        return out.astype(np.float32)

    def _emit_periods(self, limit: int) -> np.ndarray:
        """Every whole period whose inputs are all before ``limit`` (see _period_groups)."""
        up, down = self._up, self._down
        k0 = self._n_out // up
        # Period k's last tap is input k*down - half + span.
        k1 = (limit - 1 + self._half - self._span) // down + 1
        if k1 <= k0:
            return np.zeros(0, dtype=np.float32)
        periods = k1 - k0
        buf = self._buf
        first = k0 * down - self._half + 1 - self._buf_start  # the period's first tap in buf
        out = np.empty((periods, up), dtype=np.float32)
        step = buf.strides[0]
        row = 0
        for col, w in self._groups:
            view = np.ndarray(
                (periods, w.shape[1]),
                dtype=np.float32,
                buffer=buf,
                offset=(first + col) * step,
                strides=(down * step, step),
            )
            out[:, row : row + w.shape[0]] = np.einsum("kl,ml->km", view, w)
            row += w.shape[0]
        self._n_out = k1 * up
        self._drop_before(k1 * down - self._half + 1)
        return out.reshape(-1)

    def _drop_before(self, keep_from: int) -> None:
        """Drop input no longer needed by future outputs."""
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop

    def process_float(self, samples: np.ndarray) -> np.ndarray:
        if self._flushed:
            raise RuntimeError("resampler already flushed")
        samples = np.asarray(samples, dtype=np.float32)
        if self._up == self._down:
            return samples.copy()
        self._buf = np.concatenate([self._buf, samples])
        self._n_in += len(samples)
        return self._emit(self._buf_start + len(self._buf))

    def flush_float(self) -> np.ndarray:
        """Emit the tail (zero-padding the future) so lengths match in*out/in."""
        if self._flushed:
            return np.zeros(0, dtype=np.float32)
        self._flushed = True
        if self._up == self._down:
            return np.zeros(0, dtype=np.float32)
        total_out = -(-self._n_in * self._up // self._down)  # ceil
        # Zeros until the last output's taps (and, by periods, its whole period) are in.
        pad = self._half + 1
        if self._groups:
            last_period = max(0, (total_out - 1) // self._up)
            need = last_period * self._down - self._half + self._span
            pad = max(pad, need + 1 - (self._buf_start + len(self._buf)))
        self._buf = np.concatenate([self._buf, np.zeros(pad, dtype=np.float32)])
        out = self._emit(self._buf_start + len(self._buf))
        excess = self._n_out - total_out
        return out[: len(out) - excess] if excess > 0 else out

    def process(self, pcm16: bytes) -> bytes:
        """Resample a chunk of int16 PCM bytes; may return fewer/more samples than ratio."""
        return float_to_pcm16(self.process_float(pcm16_to_float(pcm16)))

    def flush(self) -> bytes:
        return float_to_pcm16(self.flush_float())


def resample(pcm16: bytes, in_rate: int, out_rate: int) -> bytes:
    """One-shot resampling of int16 PCM bytes (output length = ceil(n*out/in))."""
    if in_rate == out_rate:
        return bytes(pcm16)
    r = Resampler(in_rate, out_rate)
    return r.process(pcm16) + r.flush()


def resample_array(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """One-shot resampling of a float array."""
    if in_rate == out_rate:
        return np.asarray(samples, dtype=np.float32).copy()
    r = Resampler(in_rate, out_rate)
    return np.concatenate([r.process_float(samples), r.flush_float()])


# ---------------------------------------------------------------------------
# Framing and base64
# ---------------------------------------------------------------------------


def frame_mulaw(data: bytes, frame_bytes: int = MULAW_FRAME_BYTES) -> list[bytes]:
    """Split mu-law audio into fixed frames; the last is padded with mu-law silence."""
    if frame_bytes <= 0:
        raise ValueError("frame_bytes must be positive")
    frames = [data[i : i + frame_bytes] for i in range(0, len(data), frame_bytes)]
    if frames and len(frames[-1]) < frame_bytes:
        frames[-1] = frames[-1] + bytes([MULAW_SILENCE]) * (frame_bytes - len(frames[-1]))
    return frames


class MulawFramer:
    """Incremental framer for streamed audio: push arbitrary-size chunks, get 20 ms frames."""

    def __init__(self, frame_bytes: int = MULAW_FRAME_BYTES) -> None:
        self.frame_bytes = frame_bytes
        self._pending = bytearray()

    def push(self, data: bytes) -> list[bytes]:
        self._pending.extend(data)
        n_full = len(self._pending) // self.frame_bytes
        cut = n_full * self.frame_bytes
        frames = [
            bytes(self._pending[i : i + self.frame_bytes]) for i in range(0, cut, self.frame_bytes)
        ]
        del self._pending[:cut]
        return frames

    def flush(self) -> list[bytes]:
        if not self._pending:
            return []
        frames = frame_mulaw(bytes(self._pending), self.frame_bytes)
        self._pending.clear()
        return frames


class TelephonyEncoder:
    """PCM chunks at any rate -> 20 ms 8 kHz mu-law frames, streaming.

    Combines the stateful resampler with the framer so a TTS stream can be
    turned into outbound Twilio frames chunk by chunk.
    """

    def __init__(
        self, in_rate: int, out_rate: int = TELEPHONY_RATE, frame_ms: int = FRAME_MS
    ) -> None:
        self._resampler = Resampler(in_rate, out_rate)
        self._framer = MulawFramer(out_rate * frame_ms // 1000)

    def push(self, pcm16: bytes) -> list[bytes]:
        return self._framer.push(pcm16_to_mulaw(self._resampler.process(pcm16)))

    def flush(self) -> list[bytes]:
        tail = self._framer.push(pcm16_to_mulaw(self._resampler.flush()))
        return tail + self._framer.flush()


def pcm_to_telephony_frames(pcm16: bytes, sample_rate: int) -> list[bytes]:
    """Whole-buffer convenience: PCM at any rate -> list of 160-byte mu-law frames."""
    enc = TelephonyEncoder(sample_rate)
    return enc.push(pcm16) + enc.flush()


def iter_pcm_chunks(pcm16: bytes, sample_rate: int, chunk_ms: int = FRAME_MS) -> Iterator[bytes]:
    """Yield fixed-duration PCM chunks (last one may be short)."""
    step = sample_rate * chunk_ms // 1000 * 2
    for i in range(0, len(pcm16), step):
        yield pcm16[i : i + step]


def b64encode_frame(frame: bytes) -> str:
    """Bytes -> base64 text, as placed in a Twilio ``media.payload``."""
    return base64.b64encode(frame).decode("ascii")


def b64decode_frame(payload: str) -> bytes:
    """Base64 text from a Twilio ``media.payload`` -> bytes (strict validation)."""
    return base64.b64decode(payload, validate=True)


def concat(chunks: Iterable[bytes]) -> bytes:
    return b"".join(chunks)
