"""``transcript``: faster-whisper with VAD and word timestamps, plus a training example."""

import json
import time
from dataclasses import asdict

import numpy as np
from dagster import AssetExecutionContext, MaterializeResult, asset

from cpw_assets.speech.media import audio
from cpw_assets.stage import Stage, stage
from cpw_resources.atomic import write_json
from cpw_resources.errors import ConfigError, MediaError
from cpw_resources.language.glossary import sidecar_language
from cpw_resources.orchestration.instance import ASR_POOL
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import CpwResource
from cpw_resources.speech.asr import AsrConfig, is_multilingual, load_model, transcribe
from cpw_resources.speech.media import SAMPLE_RATE, load_wav
from cpw_resources.speech.models import model_identity
from cpw_resources.subtitles.quality import load_reference, reference_path, word_error_rate


@asset(partitions_def=titles, group_name="speech", deps=[audio], pool=ASR_POOL)
def transcript(context: AssetExecutionContext, cpw: CpwResource) -> MaterializeResult:
    """Timed segments and words in the spoken language (given, from the sidecar, or detected)."""
    with stage(context, cpw, "transcript") as st:
        config = AsrConfig.from_settings(st.settings)
        language = st.settings.language or sidecar_language(st.title.media)
        result = st.reuse(
            audio=st.input_hash("audio.wav"), model=model_identity(config.model, st.settings),
            config=asdict(config) | {"cpu_threads": None}, language=language,
        )
        if result is None:
            with st.asr_slot():
                result = st.save(_transcribe(st, config, language))
        st.audio_seconds = result["audio_seconds"]
    return MaterializeResult(metadata=st.metadata(result))


def _transcribe(st: Stage, config: AsrConfig, language: str | None) -> dict:
    samples = load_wav(st.artifact("audio.wav"))
    fingerprint = json.loads(st.artifact("fingerprint.json").read_text())
    audio_seconds = len(samples) / SAMPLE_RATE
    language_source = "setting" if st.settings.language else "sidecar" if language else None
    loaded = time.perf_counter()
    model = load_model(config, st.settings)
    if language not in (None, "en") and not is_multilingual(model):
        raise ConfigError(
            f"model {config.model!r} is English-only but {st.title.media.name} is in "
            f"{language!r}; set CPW_WHISPER_MODEL to a multilingual model (e.g. base)."
        )
    if language is None and not is_multilingual(model):
        language, language_source = "en", "english-only model"
    st.context.log.info(
        f"transcribing {audio_seconds:.1f} s with {config.model} on {config.device} "
        f"({config.compute_type}, beam {config.beam_size}, batch {config.batch_size}, "
        f"language {language or 'auto'}); model ready in {time.perf_counter() - loaded:.1f} s"
    )
    progress = st.log_progress("transcript")
    progress.total = audio_seconds
    started = time.perf_counter()
    result = transcribe(model, samples, config, language=language, progress=progress)
    asr_seconds = time.perf_counter() - started
    segments = result.segments
    write_json(st.artifact("transcript.json", output=True), {
        "language": result.language,
        "language_probability": round(result.language_probability, 4),
        "language_source": language_source or "detected",
        "duration_s": round(result.duration_s, 3),
        "duration_after_vad_s": round(result.duration_after_vad_s, 3),
        "dropped_segments": result.dropped_segments,
        "config": asdict(config),
        "segments": [asdict(s) for s in segments],
    })
    words = sum(len(s.words) for s in segments)
    proxies = _quality_proxies(segments)
    reference = reference_path(st.title.media, result.language) if result.language else None
    if reference is not None:
        try:
            proxies["wer"] = word_error_rate(load_reference(reference), segments)
            st.context.log.info(f"WER against {reference.name}: {proxies['wer']}")
        except MediaError as error:  # optional: the transcript stands without it
            st.context.log.warning(f"reference not used for WER: {error}")
    st.record("training_examples", [{
        **{k: fingerprint.get(k) for k in (
            "duration_s", "loudness_dbfs", "peak_dbfs", "speech_ratio", "music_ratio",
            "silence_ratio", "snr_db")},
        "language": result.language,
        "language_probability": result.language_probability,
        "model": config.model, "device": config.device,
        "compute_type": config.compute_type, "beam_size": config.beam_size,
        "batch_size": config.batch_size, "vad_filter": config.vad_filter,
        "wall_seconds": asr_seconds,
        "realtime_factor": asr_seconds / audio_seconds if audio_seconds else None,
        "segments": len(segments), "words": words, **proxies,
    }])
    return {
        "audio_seconds": audio_seconds,
        "language": result.language or "none",
        "language_probability": round(result.language_probability, 3),
        "segments": len(segments),
        "words": words,
        "speech_seconds": round(result.duration_after_vad_s, 3),
        "dropped_segments": result.dropped_segments,
        "audio_seconds_per_second": round(audio_seconds / max(asr_seconds, 1e-9), 2),
        "model": config.model,
        **{k: round(v, 4) for k, v in proxies.items() if v is not None},
    }


def _quality_proxies(segments: list) -> dict[str, float | None]:
    """Whisper's own confidence, weighted by segment duration (no reference needed)."""
    if not segments:
        return {"avg_logprob": None, "avg_no_speech_prob": None, "avg_compression_ratio": None}
    weights = np.array([max(s.end - s.start, 1e-3) for s in segments])

    def mean(attr: str) -> float:
        return float(np.average([getattr(s, attr) for s in segments], weights=weights))

    return {
        "avg_logprob": mean("avg_logprob"),
        "avg_no_speech_prob": mean("no_speech_prob"),
        "avg_compression_ratio": mean("compression_ratio"),
    }
