"""G.711 mu-law, resampling, framing and base64 helpers."""

from __future__ import annotations

import binascii
import warnings

import pytest

np = pytest.importorskip("numpy", reason="voice pipeline needs numpy")

from voice.pipeline.codecs import (  # noqa: E402
    MULAW_FRAME_BYTES,
    MULAW_SILENCE,
    MulawFramer,
    Resampler,
    TelephonyEncoder,
    b64decode_frame,
    b64encode_frame,
    frame_mulaw,
    mulaw_to_pcm16,
    pcm16_to_mulaw,
    pcm_to_telephony_frames,
    resample,
    resample_array,
)

from .helpers import dominant_frequency, tone  # noqa: E402

ALL_PCM = np.arange(-32768, 32768, dtype="<i2")


def _enc(values: list[int]) -> list[int]:
    return list(pcm16_to_mulaw(np.array(values, dtype="<i2").tobytes()))


def _dec(codes: list[int]) -> list[int]:
    return np.frombuffer(mulaw_to_pcm16(bytes(codes)), dtype="<i2").tolist()


def test_known_g711_encodings():
    # Reference values of the CCITT/Sun G.711 implementation.
    assert _enc([0, 1, -1, 8, 100, -100, 1000, -1000]) == [
        0xFF, 0xFF, 0x7E, 0xFE, 0xF2, 0x72, 0xCE, 0x4E,
    ]  # fmt: skip
    assert _enc([32767, 32635, -32768]) == [0x80, 0x80, 0x00]  # clipping


def test_known_g711_decodings():
    assert _dec([0x00, 0x0F, 0x70, 0x7F, 0x80, 0x8F, 0xEF, 0xFF]) == [
        -32124, -16764, -120, 0, 32124, 16764, 132, 0,
    ]  # fmt: skip
    assert _dec([MULAW_SILENCE]) == [0]


def test_matches_reference_implementation_exhaustively():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # only as an oracle; removed in 3.13
    pcm = ALL_PCM.tobytes()
    assert pcm16_to_mulaw(pcm) == audioop.lin2ulaw(pcm, 2)
    codes = bytes(range(256))
    assert mulaw_to_pcm16(codes) == audioop.ulaw2lin(codes, 2)


def test_round_trip_error_is_within_g711_quantisation_bound():
    decoded = np.frombuffer(mulaw_to_pcm16(pcm16_to_mulaw(ALL_PCM.tobytes())), dtype="<i2")
    x = ALL_PCM.astype(np.int64)
    err = np.abs(x - decoded.astype(np.int64))
    # Logarithmic quantiser: error grows with magnitude, ~1/16 of (|x| + bias).
    assert np.all(err <= (np.abs(x) + 132) / 16)
    assert err[np.abs(x) < 256].max() <= 16  # fine steps near zero
    # Every code decodes and re-encodes to itself (except -0 -> +0).
    codes = bytes(range(256))
    again = pcm16_to_mulaw(mulaw_to_pcm16(codes))
    assert [c for c, a in zip(codes, again, strict=True) if c != a] == [0x7F]


def test_round_trip_snr_on_a_tone():
    x = tone(440, 8000, 1.0, amplitude=0.3)
    pcm = np.rint(x * 32767).astype("<i2")
    y = np.frombuffer(mulaw_to_pcm16(pcm16_to_mulaw(pcm.tobytes())), dtype="<i2")
    noise = pcm.astype(np.float64) - y
    snr = 10 * np.log10(np.sum(pcm.astype(np.float64) ** 2) / np.sum(noise**2))
    assert snr > 35  # G.711 gives ~38 dB over a wide range of levels


@pytest.mark.parametrize(
    ("length", "frames", "padding"),
    [(0, 0, 0), (1, 1, 159), (160, 1, 0), (400, 3, 80), (480, 3, 0)],
)
def test_framing_sizes_and_padding(length, frames, padding):
    data = bytes(range(256)) * 2
    data = data[:length]
    out = frame_mulaw(data)
    assert len(out) == frames
    assert all(len(f) == MULAW_FRAME_BYTES for f in out)
    assert b"".join(out)[:length] == data
    tail = b"".join(out)[length:]
    assert tail == bytes([MULAW_SILENCE]) * padding


def test_streaming_framer_matches_one_shot():
    data = bytes(range(256)) * 7
    framer = MulawFramer()
    frames: list[bytes] = []
    for i in range(0, len(data), 37):
        frames += framer.push(data[i : i + 37])
    frames += framer.flush()
    assert frames == frame_mulaw(data)
    assert framer.flush() == []


def test_base64_round_trip_and_validation():
    frame = bytes(range(160))
    payload = b64encode_frame(frame)
    assert isinstance(payload, str)
    assert b64decode_frame(payload) == frame
    with pytest.raises(binascii.Error):
        b64decode_frame("not base64!!")


@pytest.mark.parametrize(
    ("in_rate", "out_rate", "freq"),
    [
        (8000, 16000, 1000),
        (16000, 8000, 1000),
        (22050, 8000, 3000),
        (22050, 16000, 440),
        (8000, 22050, 300),
    ],
)
def test_resampling_preserves_tone_frequency_amplitude_and_length(in_rate, out_rate, freq):
    x = tone(freq, in_rate, 1.0)
    y = resample_array(x, in_rate, out_rate)
    assert len(y) == out_rate  # exactly 1 s
    assert dominant_frequency(y, out_rate) == pytest.approx(freq, abs=2)
    # Compare with the ideal tone away from the edges: a real resampler, not a copy.
    t = np.arange(len(y)) / out_rate
    ideal = 0.5 * np.sin(2 * np.pi * freq * t)
    mid = slice(out_rate // 10, -out_rate // 10)
    assert np.max(np.abs(y[mid] - ideal[mid])) < 1e-3


def test_downsampling_removes_content_above_new_nyquist():
    x = tone(6000, 22050, 1.0)  # would alias to 2 kHz at 8 kHz without a low-pass
    y = resample_array(x, 22050, 8000)
    assert np.sqrt(np.mean(y[800:-800] ** 2)) < 1e-3  # < -60 dB re the 0.35 rms input


@pytest.mark.parametrize("freq", [4500, 5000, 6000, 8000, 10000])
def test_telephony_downsampling_attenuates_tones_above_4khz(freq):
    # Streamed as eSpeak delivers it (60 ms chunks): these tones would alias into the band.
    pcm = (tone(freq, 22050, 1.0) * 32767).astype("<i2").tobytes()
    r = Resampler(22050, 8000)
    out = b"".join(r.process(pcm[i : i + 2646]) for i in range(0, len(pcm), 2646)) + r.flush()
    y = np.frombuffer(out, dtype="<i2").astype(np.float64) / 32768
    assert len(y) == 8000
    rms = np.sqrt(np.mean(y[800:-800] ** 2))
    assert 20 * np.log10(max(rms, 1e-9) / (0.5 / np.sqrt(2))) < -60


@pytest.mark.parametrize("freq", [300, 1000, 3000])
def test_telephony_downsampling_keeps_the_voice_band(freq):
    x = tone(freq, 22050, 1.0)
    y = resample_array(x, 22050, 8000)
    gain_db = 20 * np.log10(np.sqrt(np.mean(y[800:-800] ** 2)) / (0.5 / np.sqrt(2)))
    assert abs(gain_db) < 0.05
    assert dominant_frequency(y, 8000) == pytest.approx(freq, abs=2)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(22050, 8000), (8000, 16000), (8000, 22050)])
def test_resampler_output_does_not_depend_on_chunking(in_rate, out_rate):
    rng = np.random.default_rng(2)
    pcm = rng.normal(0, 3000, in_rate // 2).astype("<i2").tobytes()
    one_shot = resample(pcm, in_rate, out_rate)
    for size in (2, 322, 882, 2646):
        r = Resampler(in_rate, out_rate)
        chunks = [r.process(pcm[i : i + size]) for i in range(0, len(pcm), size)]
        assert b"".join(chunks) + r.flush() == one_shot
    assert len(one_shot) == 2 * -(-(in_rate // 2) * out_rate // in_rate)


def test_streaming_resampler_equals_one_shot():
    rng = np.random.default_rng(1)
    pcm = (rng.normal(0, 3000, 22050)).astype("<i2").tobytes()
    one_shot = resample(pcm, 22050, 8000)
    r = Resampler(22050, 8000)
    chunks = [r.process(pcm[i : i + 882]) for i in range(0, len(pcm), 882)]  # 20 ms chunks
    assert b"".join(chunks) + r.flush() == one_shot
    assert len(one_shot) == 8000 * 2


def test_telephony_encoder_makes_20ms_mulaw_frames():
    pcm = (tone(440, 22050, 1.0, 0.3) * 32767).astype("<i2").tobytes()
    frames = pcm_to_telephony_frames(pcm, 22050)
    assert len(frames) == 50 and all(len(f) == 160 for f in frames)
    decoded = np.frombuffer(mulaw_to_pcm16(b"".join(frames)), dtype="<i2").astype(np.float32)
    assert dominant_frequency(decoded / 32768, 8000) == pytest.approx(440, abs=2)
    # Streaming in odd-sized chunks gives the same frames.
    enc = TelephonyEncoder(22050)
    streamed: list[bytes] = []
    for i in range(0, len(pcm), 1234):
        streamed += enc.push(pcm[i : i + 1234])
    streamed += enc.flush()
    assert streamed == frames
