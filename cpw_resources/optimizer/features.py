"""A title's audio as the optimizer sees it: the fingerprint, plus the language and how sure.

The fingerprint (loudness, speech / music / silence shares, SNR, high-band share, spectral
flatness, syllable rate) comes from the ``audio`` stage. The language is the setting's or the
sidecar's when given (probability 1); otherwise Whisper detects it on the first
:data:`DETECT_SPEECH_S` seconds of speech found in the first :data:`DETECT_SEARCH_S` seconds of
the film (Silero VAD first, so an opening of music does not decide it): one encoder pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cpw_resources.speech.media import SAMPLE_RATE, WavReader

DETECT_SEARCH_S = 600.0
DETECT_SPEECH_S = 30.0
DETECT_STEP_S = 60.0


def detect_language(model: Any, audio: WavReader) -> tuple[str | None, float]:
    """(language, probability) of the film's first speech; (None, 0.0) when none is found.
    The film is searched :data:`DETECT_STEP_S` at a time until enough speech is found."""
    import numpy as np
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

    found: list[np.ndarray] = []
    need = int(DETECT_SPEECH_S * SAMPLE_RATE)
    step = int(DETECT_STEP_S * SAMPLE_RATE)
    stop = min(audio.frames, int(DETECT_SEARCH_S * SAMPLE_RATE))
    for lo in range(0, stop, step):
        samples = audio.read(lo, min(lo + step, stop))
        speech = get_speech_timestamps(samples, VadOptions()) if samples.size else []
        if speech:
            found.extend(collect_chunks(samples, speech)[0])
        if sum(c.size for c in found) >= need:
            break
    if sum(c.size for c in found) < SAMPLE_RATE // 2:
        return None, 0.0
    language, probability, _ = model.detect_language(np.concatenate(found)[:need])
    return language, float(probability)


def title_features(fingerprint: Mapping[str, Any], language: str | None,
                   probability: float | None) -> dict[str, Any]:
    """The row the optimizer predicts from (and ``training_examples`` keeps)."""
    keys = ("duration_s", "loudness_dbfs", "peak_dbfs", "speech_ratio", "music_ratio",
            "silence_ratio", "snr_db", "highband_ratio", "spectral_flatness", "speech_rate")
    return {**{k: fingerprint.get(k) for k in keys}, "language": language,
            "language_probability": probability}
