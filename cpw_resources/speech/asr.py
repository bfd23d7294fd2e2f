"""Speech recognition and speech translation with faster-whisper (CTranslate2).

One backend for CPU and CUDA: :func:`load_model` resolves the name through the model
registry and caches the loaded model per process; :func:`transcribe` streams segments with
word timestamps and reports progress as a share of the audio; :func:`translate_segments` runs
Whisper's translate task (any language → English) on each transcript segment's audio so the
translation keeps the transcript's ids and times.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cpw_resources.records import Segment, Word
from cpw_resources.speech.media import SAMPLE_RATE
from cpw_resources.speech.models import ModelRegistry

# Whisper's own thresholds for "this window was not speech".
NO_SPEECH_PROB = 0.6
NO_SPEECH_LOGPROB = -1.0
_HAS_WORD_CHAR = re.compile(r"\w", re.UNICODE)


@dataclass(frozen=True)
class AsrConfig:
    model: str
    device: str
    compute_type: str
    beam_size: int
    batch_size: int
    vad_filter: bool
    cpu_threads: int

    @classmethod
    def build(cls, model: str, *, device: str, compute_type: str, beam_size: int,
              batch_size: int, vad_filter: bool, cpu_threads: int) -> AsrConfig:
        """A config with ``auto`` device and compute type resolved for this machine."""
        device = resolve_device(device)
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        return cls(model, device, compute_type, beam_size, batch_size, vad_filter, cpu_threads)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


@functools.lru_cache(maxsize=4)
def _load(path: Path, device: str, compute_type: str, cpu_threads: int) -> Any:
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(path),
        device=device,
        compute_type=compute_type,
        cpu_threads=cpu_threads,
        local_files_only=True,
    )


def load_model(config: AsrConfig, models: ModelRegistry) -> Any:
    """The faster-whisper model for ``config`` (loaded once per process)."""
    return _load(models.resolve(config.model), config.device, config.compute_type,
                 config.cpu_threads)


def is_multilingual(model: Any) -> bool:
    return bool(model.model.is_multilingual)


def _is_hallucination(seg: Any) -> bool:
    """Whisper's rule for silence, plus text with no letters or digits (♪, '...')."""
    if seg.no_speech_prob > NO_SPEECH_PROB and seg.avg_logprob < NO_SPEECH_LOGPROB:
        return True
    return not _HAS_WORD_CHAR.search(seg.text)


def _to_segment(seg: Any, seg_id: int, offset: float = 0.0) -> Segment:
    words = tuple(
        Word(round(w.start + offset, 3), round(w.end + offset, 3), w.word, round(w.probability, 4))
        for w in (seg.words or ())
    )
    return Segment(
        id=seg_id,
        start=round(seg.start + offset, 3),
        end=round(seg.end + offset, 3),
        text=seg.text.strip(),
        words=words,
        avg_logprob=round(float(seg.avg_logprob), 4),
        no_speech_prob=round(float(seg.no_speech_prob), 4),
        compression_ratio=round(float(seg.compression_ratio), 4),
    )


@dataclass(frozen=True)
class Transcription:
    segments: list[Segment]
    language: str | None
    language_probability: float
    duration_s: float
    duration_after_vad_s: float
    dropped_segments: int


def transcribe(
    model: Any,
    audio: np.ndarray,
    config: AsrConfig,
    *,
    language: str | None = None,
    initial_prompt: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> Transcription:
    """Transcribe float32 16 kHz mono ``audio``; ``progress`` gets the share done (0..1)."""
    options: dict[str, Any] = dict(
        language=language,
        beam_size=config.beam_size,
        word_timestamps=True,
        vad_filter=config.vad_filter,
        initial_prompt=initial_prompt,
    )
    if config.batch_size > 1:
        from faster_whisper import BatchedInferencePipeline

        pipeline = BatchedInferencePipeline(model)
        stream, info = pipeline.transcribe(audio, batch_size=config.batch_size, **options)
    else:
        stream, info = model.transcribe(audio, **options)
    duration = len(audio) / SAMPLE_RATE
    segments: list[Segment] = []
    dropped = 0
    for seg in stream:
        if _is_hallucination(seg):
            dropped += 1
        else:
            segments.append(_to_segment(seg, len(segments)))
        if progress is not None and duration > 0:
            progress(min(1.0, seg.end / duration))
    if progress is not None:
        progress(1.0)
    detected = info.language if segments or language else None
    return Transcription(
        segments=segments,
        language=detected,
        language_probability=float(info.language_probability or 0.0),
        duration_s=duration,
        duration_after_vad_s=float(info.duration_after_vad or 0.0),
        dropped_segments=dropped,
    )


def translate_segments(
    model: Any,
    audio: np.ndarray,
    segments: Sequence[Segment],
    config: AsrConfig,
    *,
    source_language: str | None,
    initial_prompt: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[Segment]:
    """Whisper's translate task (→ English) on each segment's audio; same ids and times.

    A segment whose audio yields no English text keeps its source text, so nothing the
    speaker said silently disappears.
    """
    out: list[Segment] = []
    for index, seg in enumerate(segments):
        lo, hi = int(seg.start * SAMPLE_RATE), int(seg.end * SAMPLE_RATE)
        clip = audio[lo:hi]
        pieces, _ = model.transcribe(
            clip,
            task="translate",
            language=source_language,
            beam_size=config.beam_size,
            word_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
            initial_prompt=initial_prompt,
        )
        pieces = [p for p in pieces if not _is_hallucination(p)]
        text = " ".join(p.text.strip() for p in pieces).strip()
        words = tuple(
            Word(
                round(min(max(w.start + seg.start, seg.start), seg.end), 3),
                round(min(max(w.end + seg.start, seg.start), seg.end), 3),
                w.word,
                round(w.probability, 4),
            )
            for p in pieces
            for w in (p.words or ())
        )
        logprob = float(np.mean([p.avg_logprob for p in pieces])) if pieces else 0.0
        out.append(
            Segment(
                id=seg.id,
                start=seg.start,
                end=seg.end,
                text=text or seg.text,
                words=words if text else seg.words,
                avg_logprob=round(logprob, 4),
                no_speech_prob=seg.no_speech_prob,
                compression_ratio=seg.compression_ratio,
            )
        )
        if progress is not None:
            progress((index + 1) / len(segments))
    return out
