"""``transcript``: faster-whisper with VAD and word timestamps, plus a training example."""

import time
from dataclasses import asdict

import numpy as np
from dagster import AssetExecutionContext, MaterializeResult, asset

from cpw_assets.speech.media import audio
from cpw_assets.stage import Stage, stage
from cpw_resources.atomic import write_json
from cpw_resources.errors import ConfigError, MediaError
from cpw_resources.language.glossary import sidecar_language
from cpw_resources.orchestration.config import TranscriptConfig
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import (
    EventStoreResource,
    TitleRegistryResource,
    WhisperResource,
)
from cpw_resources.speech.asr import (
    DECODING,
    WINDOW_S,
    AsrConfig,
    is_multilingual,
    transcribe,
)
from cpw_resources.store.cache import sha256_file
from cpw_resources.store.sidecars import SUBTITLE_FORMATS, Sidecars
from cpw_resources.subtitles.quality import load_reference, word_error_rate


@asset(partitions_def=titles, group_name="speech", deps=[audio],
       kinds={"whisper"})
def transcript(context: AssetExecutionContext, config: TranscriptConfig,
               store: EventStoreResource, titles: TitleRegistryResource,
               whisper: WhisperResource) -> MaterializeResult:
    """Timed segments and words in the spoken language (given, from the sidecar, or detected)."""
    with stage(context, store, titles) as st:
        asr = whisper.asr_config(config.model, beam_size=config.beam_size,
                                 batch_size=config.batch_size, vad_filter=config.vad_filter)
        language = config.language or sidecar_language(st.title.media)
        references = [p for p in Sidecars(st.title.media).existing()
                      if p.suffix.lower() in SUBTITLE_FORMATS]
        result = st.reuse(
            config, model=whisper.models.identity(asr.model),
            asr=asdict(asr) | {"cpu_threads": None}, language=language,
            references={p.name: sha256_file(p) for p in references}, window_s=WINDOW_S,
            decoding=DECODING,
        )
        if result is None:
            with st.asr_slot(whisper):
                result = st.save(_transcribe(st, whisper, asr, language,
                                             from_setting=bool(config.language)))
        st.audio_seconds = result["audio_seconds"]
    return MaterializeResult(metadata=st.metadata(result))


def _transcribe(st: Stage, whisper: WhisperResource, config: AsrConfig, language: str | None,
                *, from_setting: bool) -> dict:
    wav = st.files.audio()
    fingerprint = st.files.fingerprint()
    audio_seconds = wav.duration_s
    language_source = "setting" if from_setting else "sidecar" if language else None
    loaded = time.perf_counter()
    model = whisper.load(config)
    if language not in (None, "en") and not is_multilingual(model):
        raise ConfigError(
            f"model {config.model!r} is English-only but {st.title.media.name} is in "
            f"{language!r}; set CPW_WHISPER_MODEL (or the transcript's run config `model`) "
            f"to a multilingual model (e.g. base)."
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
    result = transcribe(model, wav, config, language=language, progress=progress)
    asr_seconds = time.perf_counter() - started
    segments = result.segments
    write_json(st.output(st.files.path("transcript.json")), {
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
    reference = Sidecars(st.title.media).reference(result.language) if result.language else None
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
        "segments": len(segments), "words": words, **proxies, "source": "pipeline",
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
