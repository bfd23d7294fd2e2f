"""Bad and edge-case media inputs, generated on the fly so no binary file is committed.

Every function takes a folder (usually pytest's ``tmp_path``), writes one file there and returns
its path. Real recordings come from ``../shared/data`` through :func:`shared_data`, which skips
the test when that folder is not present (see ``/work/shared/data/README.md``).
"""

from __future__ import annotations

import io
import shutil
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import numpy as np
import pytest
from av.stream import Disposition

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
JFK_WAV = "short_clips/jfk.wav"
UNICODE_NAME = "Dil Chahta Hai, पार्ट 1 | (2001).wav"
#: Sample rate of the tracks :func:`multi_track` writes (Opus and AAC both take it).
TRACK_RATE = 16000


def shared_data(relpath: str) -> Path:
    """Path of a file under ``../shared/data``; skips the calling test when it is missing."""
    path = SHARED_DATA / relpath
    if not path.exists():
        pytest.skip(
            f"shared test data {relpath!r} not found at {path}; these tests need the real "
            "recordings that CI keeps in ../shared/data next to the repository"
        )
    return path


# --- not media at all -----------------------------------------------------------------------


def zero_byte(folder: Path) -> Path:
    path = Path(folder) / "empty film.mp4"
    path.write_bytes(b"")
    return path


def not_media(folder: Path) -> Path:
    """A text file with a video extension (someone renamed their notes)."""
    path = Path(folder) / "notes.mp4"
    path.write_text("Shopping list\n- milk\n- rice\n" * 40, encoding="utf-8")
    return path


def random_bytes(folder: Path) -> Path:
    path = Path(folder) / "random.mkv"
    path.write_bytes(np.random.default_rng(1234).bytes(64 * 1024))
    return path


def pdf_as_mkv(folder: Path) -> Path:
    """A PDF document saved with a .mkv name."""
    path = Path(folder) / "invoice.mkv"
    body = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n" * 200
    path.write_bytes(body + b"%%EOF\n")
    return path


# --- real containers with a problem ---------------------------------------------------------


def video_only(folder: Path) -> Path:
    """An MP4 with a few frames of H.264 (or MPEG-4 part 2) video and no audio track."""
    path = Path(folder) / "video only.mp4"
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            pixels = np.full((48, 64, 3), i * 20, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def truncated(folder: Path) -> Path:
    """20 s of Opus in Matroska cut at 40 % of its bytes (an interrupted download).

    Matroska writes the duration into its header, so the file still claims 20 s.
    """
    path = Path(folder) / "truncated download.mkv"
    _encode_audio(path, "libopus", seconds=20.0)
    _cut(path, 0.4)
    return path


def truncated_mp4(folder: Path) -> Path:
    """20 s of AAC in MP4 cut at 40 %: the index (moov) at the end is lost, so it will not open."""
    path = Path(folder) / "truncated download.mp4"
    _encode_audio(path, "aac", seconds=20.0)
    _cut(path, 0.4)
    return path


def corrupt_middle(folder: Path) -> Path:
    """20 s of AAC in Matroska with 2 x 50 garbage bytes in the middle (2-3 bad packets)."""
    path = Path(folder) / "scratched.mkv"
    _encode_audio(path, "aac", seconds=20.0)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(7)
    for where in (0.45, 0.55):
        at = int(len(data) * where)
        data[at : at + 50] = rng.bytes(50)
    path.write_bytes(bytes(data))
    return path


def silence(folder: Path) -> Path:
    """10 s of digital silence, 16 kHz mono s16 WAV."""
    path = Path(folder) / "silence.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(b"\x00\x00" * 16000 * 10)
    return path


def unicode_name(folder: Path) -> Path:
    """jfk.wav under a name with spaces, Devanagari, a comma, a pipe and parentheses."""
    path = Path(folder) / UNICODE_NAME
    shutil.copyfile(shared_data(JFK_WAV), path)
    return path


# --- several audio tracks -------------------------------------------------------------------


@dataclass(frozen=True)
class Track:
    """One audio track to mux: int16 mono ``samples`` (duplicated to every channel)."""

    samples: np.ndarray
    layout: str = "mono"  # mono, stereo, 5.1
    language: str | None = None  # the tag written into the file ("fre", "eng")
    default: bool = False


def tone(freq_hz: float, seconds: float = 3.0, rate: int = TRACK_RATE) -> np.ndarray:
    """A steady sine at ``freq_hz``, int16: tells tracks apart by their dominant frequency."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq_hz * t) * 32767).astype(np.int16)


def speech(relpath: str, rate: int = TRACK_RATE) -> np.ndarray:
    """A shared-data (or tests/data) recording decoded to int16 mono at ``rate``."""
    path = REPO_ROOT / "tests" / "data" / relpath
    path = path if path.is_file() else shared_data(relpath)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(chunks)


def multi_track(folder: Path, name: str, tracks: list[Track], codec: str | None = None) -> Path:
    """A file with ``tracks`` as its audio streams, in order, with language tags and default
    flags; the suffix of ``name`` picks the container (.mkv: Opus, .mp4: AAC by default)."""
    path = Path(folder) / name
    codec = codec or ("aac" if path.suffix == ".mp4" else "libopus")
    with av.open(str(path), "w") as out:
        streams = []
        for track in tracks:
            stream = out.add_stream(codec, rate=TRACK_RATE, layout=track.layout)
            if track.language:
                stream.metadata["language"] = track.language
            stream.disposition = Disposition.default if track.default else Disposition(0)
            streams.append(stream)
        for stream, track in zip(streams, tracks, strict=True):
            _encode_track(out, stream, track)
    return path


def _encode_track(out: av.container.OutputContainer, stream: av.AudioStream,
                  track: Track) -> None:
    channels = av.AudioLayout(track.layout).nb_channels
    chunk = 960
    for start in range(0, track.samples.size, chunk):
        piece = track.samples[start : start + chunk]
        interleaved = np.repeat(piece, channels)[None, :]
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=track.layout)
        frame.sample_rate = TRACK_RATE
        frame.pts = start
        frame.time_base = Fraction(1, TRACK_RATE)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def dominant_hz(samples: np.ndarray, rate: int = 16000) -> float:
    """The strongest frequency of float or int samples."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(samples.size, 1.0 / rate)[int(np.argmax(spectrum))])


# --- helpers --------------------------------------------------------------------------------


def synthetic_signal(seconds: float, rate: int) -> np.ndarray:
    """Deterministic speech-band tones with a 4 Hz envelope and a little noise, int16 mono."""
    t = np.arange(int(seconds * rate)) / rate
    tones = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((220.0, 440.0, 1250.0), 1))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t)
    noise = np.random.default_rng(0).standard_normal(t.size) * 0.02
    return (np.clip(0.3 * tones * envelope + noise, -1, 1) * 32767).astype(np.int16)


def _encode_audio(path: Path, codec: str, seconds: float, rate: int = 48000) -> None:
    """Encode :func:`synthetic_signal` with ``codec``; the suffix of ``path`` picks the muxer."""
    samples = synthetic_signal(seconds, rate)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        chunk = 1152 * 4
        for start in range(0, samples.size, chunk):
            frame = av.AudioFrame.from_ndarray(
                samples[None, start : start + chunk], format="s16", layout="mono"
            )
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _cut(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def wav_bytes(seed: int, seconds: float = 0.5, rate: int = 16000) -> bytes:
    """A short mono 16 kHz WAV whose samples depend on ``seed`` (distinct content per seed)."""
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.2 * np.sin(2 * np.pi * (200 + seed % 997) * t)
    samples = (tone * 32767).astype("<i2")
    samples[:4] = np.frombuffer(int(seed).to_bytes(8, "little"), dtype="<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()
