"""``transcript``: faster-whisper with VAD and word timestamps, plus a training example.

The glossary's names (the user's, TMDB's and the context learner's suggestions) reach Whisper
before it decodes, as hotwords or as the initial prompt (run config ``names``); near misses
left in the text are then written as the glossary spells them (``repair_names``), each repair
recorded in ``name_repairs`` and in ``transcript.json``."""

import time
from collections import Counter
from dataclasses import asdict, dataclass, replace

import numpy as np
from dagster import AssetExecutionContext, MaterializeResult, asset

from cpw_assets.language.glossary import glossary
from cpw_assets.speech.media import audio
from cpw_assets.stage import Stage, stage
from cpw_resources.atomic import write_json
from cpw_resources.errors import ConfigError, MediaError
from cpw_resources.language.glossary import (
    asr_names,
    heard_terms,
    prompt_names,
    repair_segments,
    sidecar_language,
    sidecar_whisper_pin,
)
from cpw_resources.optimizer.candidates import Candidate, candidates
from cpw_resources.optimizer.decide import Decision, decide
from cpw_resources.optimizer.explore import explores, neighbour, run_trials, slice_span
from cpw_resources.optimizer.features import detect_language, title_features
from cpw_resources.optimizer.model import audio_vector, candidate_of
from cpw_resources.orchestration.config import TranscriptConfig
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import (
    EventStoreResource,
    OptimizerResource,
    TitleRegistryResource,
    WhisperResource,
)
from cpw_resources.records import Segment
from cpw_resources.speech.asr import (
    DECODING,
    WINDOW_S,
    AsrConfig,
    is_multilingual,
    transcribe,
)
from cpw_resources.speech.media import SAMPLE_RATE, WavReader, write_wav
from cpw_resources.speech.models import is_english_only
from cpw_resources.store.cache import sha256_file
from cpw_resources.store.sidecars import SUBTITLE_FORMATS, Sidecars
from cpw_resources.subtitles.quality import load_reference, word_error_rate

#: English-only models are candidates for a film detected as English only this surely.
ENGLISH_ONLY_MIN_PROBABILITY = 0.9


@asset(partitions_def=titles, group_name="speech", deps=[audio, glossary],
       kinds={"whisper"})
def transcript(context: AssetExecutionContext, config: TranscriptConfig,
               store: EventStoreResource, titles: TitleRegistryResource,
               whisper: WhisperResource, optimizer: OptimizerResource) -> MaterializeResult:
    """Timed segments and words in the spoken language (given, from the sidecar, or detected),
    with the Whisper config the optimizer chose for this audio (or the pinned one)."""
    with stage(context, store, titles) as st:
        language = config.language or sidecar_language(st.title.media)
        choice = _choose(st, config, whisper, optimizer, language)
        picked = choice.decision.candidate
        asr = whisper.asr_config(picked.model, beam_size=picked.beam_size,
                                 batch_size=config.batch_size, vad_filter=config.vad_filter,
                                 vad_threshold=picked.vad_threshold,
                                 temperature_fallback=picked.temperature_fallback)
        if language is None and is_english_only(picked.model):
            language = choice.language  # chosen for English it was detected to be
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
                result = st.save(_transcribe(st, whisper, optimizer, asr, language,
                                             from_setting=bool(config.language), choice=choice,
                                             names=_Names.of(st, config)))
        st.audio_seconds = result["audio_seconds"]
    return MaterializeResult(metadata=st.metadata(result))


@dataclass(frozen=True)
class _Names:
    """What the glossary gives the transcript: names for Whisper, and terms to repair."""

    mode: str  # auto, hotwords, prompt or off
    asr: list[str]  # names given to Whisper
    terms: list[dict]  # every glossary entry (repairs and counts)
    repair: bool

    @classmethod
    def of(cls, st: Stage, config: TranscriptConfig) -> "_Names":
        found = st.files.glossary()
        return cls(config.names, asr_names(found) if config.names != "off" else [],
                   list(found.get("terms", ())), config.repair_names)

    @property
    def given_as(self) -> str:
        return self.mode if self.asr else "none"

    @property
    def hotwords(self) -> str | None:
        return ", ".join(self.asr) if self.mode == "hotwords" and self.asr else None

    @property
    def prompt(self) -> str | None:
        return prompt_names({"terms": [{"term": n, "kind": "term"} for n in self.asr]}) \
            if self.mode == "prompt" else None


def _resolve_auto(st: Stage, names: _Names, model: object, wav: WavReader,
                  language: str | None) -> _Names:
    """``auto``: hotwords for English speech, nothing for other languages. Measured
    (docs/context.md): on French speech Whisper base heard poorly, hotwords turned lines into
    lists of the names; on English they took name recall from 12 % to 80 %. An unknown
    language is detected first (once, on the film's first speech) when there are names."""
    if names.mode != "auto" or not names.asr:
        return names
    if language is None:
        language, _ = detect_language(model, wav)
    mode = "hotwords" if language == "en" else "off"
    if mode == "off":
        st.context.log.info(f"glossary names not given to Whisper: the speech is in "
                            f"{language or 'an unknown language'}, and hotwords help English "
                            f"(set CPW_ASR_NAMES=hotwords to give them anyway)")
    return replace(names, mode=mode, asr=names.asr if mode != "off" else [])


@dataclass(frozen=True)
class _Choice:
    decision: Decision
    features: dict
    language: str | None  # given, or detected for the choice (None: unknown)
    seconds: float  # what features and prediction cost


def _choose(st: Stage, config: TranscriptConfig, whisper: WhisperResource,
            optimizer: OptimizerResource, language: str | None) -> _Choice:
    """The Whisper config for this title: pinned by its sidecar, the run config's when the
    optimizer is off, else the optimizer's choice among the installed candidates."""
    started = time.perf_counter()
    default = Candidate(config.model, config.beam_size)
    fingerprint = st.files.fingerprint()
    pin = sidecar_whisper_pin(st.title.media)
    if pin is not None:
        decision = decide({}, [], default, model=None, min_examples=1, tolerance=0.0,
                          pinned=Candidate(**pin.model_dump()))
        return _Choice(decision, title_features(fingerprint, language, None), language,
                       time.perf_counter() - started)
    if config.optimizer == "off" or not optimizer.enabled:
        decision = decide({}, [], default, model=None, min_examples=1, tolerance=0.0,
                          enabled=False)
        return _Choice(decision, title_features(fingerprint, language, None), language,
                       time.perf_counter() - started)
    probability: float | None = 1.0 if language else None
    model = optimizer.models.current()
    learned = model is not None and int(model.info.get("rows", 0)) >= optimizer.min_examples
    if language is None and is_english_only(config.model):
        language, probability = "en", None  # as the transcript itself assumes
    elif language is None and learned:  # the rules do not look at the language
        default_asr = whisper.asr_config(config.model, beam_size=config.beam_size)
        language, probability = detect_language(whisper.load(default_asr), st.files.audio())
    models = whisper.models.available()
    sure_english = language == "en" and (probability is None
                                          or probability >= ENGLISH_ONLY_MIN_PROBABILITY)
    features = title_features(fingerprint, language, probability)
    decision = decide(audio_vector(features),
                      candidates(models, english=sure_english),
                      default, model=model,
                      min_examples=optimizer.min_examples, tolerance=optimizer.tolerance)
    seconds = time.perf_counter() - started
    st.context.log.info(f"optimizer: {decision.candidate.key} ({decision.source}: "
                        f"{decision.reason}); features and choice took {seconds:.2f} s")
    return _Choice(decision, features, language, seconds)


def _transcribe(st: Stage, whisper: WhisperResource, optimizer: OptimizerResource,
                config: AsrConfig, language: str | None, *, from_setting: bool,
                choice: _Choice, names: _Names) -> dict:
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
    names = _resolve_auto(st, names, model, wav, language or choice.language)
    if names.asr:
        st.context.log.info(f"{len(names.asr)} glossary names given to Whisper as "
                            f"{names.mode}: {', '.join(names.asr[:8])}"
                            f"{' ...' if len(names.asr) > 8 else ''}")
    result = transcribe(model, wav, config, language=language, progress=progress,
                        initial_prompt=names.prompt, hotwords=names.hotwords,
                        names=names.asr)
    asr_seconds = time.perf_counter() - started
    segments, repairs = result.segments, []
    spellings = [t["term"] for t in names.terms if t.get("kind") in ("character", "actor",
                                                                     "term")]
    if names.repair and spellings:
        segments, repairs = repair_segments(segments, spellings)
        if repairs:
            st.record("name_repairs", repairs)
            st.context.log.info(f"{len(repairs)} near misses of glossary names repaired, e.g. "
                                f"{repairs[0]['heard']!r} → {repairs[0]['name']!r}")
    heard = heard_terms(names.terms, segments)
    write_json(st.output(st.files.path("transcript.json")), {
        "language": result.language,
        "language_probability": round(result.language_probability, 4),
        "language_source": language_source or "detected",
        "duration_s": round(result.duration_s, 3),
        "duration_after_vad_s": round(result.duration_after_vad_s, 3),
        "dropped_segments": result.dropped_segments,
        "config": asdict(config),
        "names": {"given_as": names.given_as, "given": names.asr,
                  "windows_without_hotwords": result.windows_without_hotwords,
                  "repairs": repairs, **heard},
        "segments": [asdict(s) for s in segments],
    })
    words = sum(len(s.words) for s in segments)
    proxies = _quality_proxies(segments)
    reference = Sidecars(st.title.media).reference(result.language) if result.language else None
    reference_lines = None
    if reference is not None:
        try:
            reference_lines = load_reference(reference)
            proxies["wer"] = word_error_rate(reference_lines, segments)
            st.context.log.info(f"WER against {reference.name}: {proxies['wer']}")
        except MediaError as error:  # optional: the transcript stands without it
            st.context.log.warning(f"reference not used for WER: {error}")
    rtf = asr_seconds / audio_seconds if audio_seconds else None
    explored = _explore(st, whisper, optimizer, config, choice, wav, result.language,
                        reference_lines)
    st.record("training_examples", [{
        **title_features(fingerprint, result.language, result.language_probability),
        "model": config.model, "device": config.device,
        "compute_type": config.compute_type, "beam_size": config.beam_size,
        "batch_size": config.batch_size, "vad_filter": config.vad_filter,
        "vad_threshold": config.vad_threshold,
        "temperature_fallback": config.temperature_fallback,
        "wall_seconds": asr_seconds, "realtime_factor": rtf,
        "segments": len(segments), "words": words, **proxies, "source": "pipeline",
        "recording": st.key,
    }])
    decision = choice.decision
    st.record("optimizer_decisions", [{
        "config": decision.candidate.key, "model": config.model,
        "beam_size": config.beam_size, "vad_threshold": config.vad_threshold,
        "temperature_fallback": config.temperature_fallback, "source": decision.source,
        "reason": decision.reason, "predicted_wer": decision.predicted_error,
        "predicted_seconds_per_audio_s": decision.predicted_seconds_per_audio_s,
        "measured_wer": proxies.get("wer"), "measured_seconds_per_audio_s": rtf,
        "audio_seconds": audio_seconds, "features_seconds": choice.seconds,
        "explored_config": explored[0] if explored else None,
        "explore_seconds": explored[1] if explored else None,
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
        "names_given": len(names.asr),
        "names_repaired": len(repairs),
        "glossary_terms_heard": len(heard["found_terms"]),
        "optimizer": {**decision.as_metadata(), "measured_wer": proxies.get("wer"),
                      "measured_seconds_per_audio_s": _round(rtf),
                      "features_seconds": round(choice.seconds, 3),
                      "explored": explored[0] if explored else None},
        **{k: round(v, 4) for k, v in proxies.items() if v is not None},
    }


def _explore(st: Stage, whisper: WhisperResource, optimizer: OptimizerResource,
             config: AsrConfig, choice: _Choice, wav: WavReader, language: str | None,
             reference: list | None) -> tuple[str, float] | None:
    """For the share of titles that explore: one slice decoded with the chosen config and
    with its least-labelled neighbour, each recorded as a timed (and, with a reference,
    scored) training example. Returns (the neighbour's key, seconds spent), or None."""
    if choice.decision.source in ("pinned", "off") or not explores(
            st.key, optimizer.explore_share):
        return None
    span = slice_span(wav.duration_s, optimizer.explore_seconds)
    models = whisper.models.available()
    space = candidates(models, english=language == "en")
    labels = Counter(candidate_of(r).key
                     for r in st.store.events.read("training_examples").to_dicts()
                     if r.get("wer") is not None and r.get("model"))
    other = neighbour(choice.decision.candidate, space, labels)
    if span is None or other is None:
        return None
    started = time.perf_counter()
    lo, hi = span
    piece = st.dir / ".explore.wav"
    write_wav(piece, wav.read(int(lo * SAMPLE_RATE), int(hi * SAMPLE_RATE)))
    said = [r for r in reference or () if lo <= (r.start + r.end) / 2 < hi]

    def decode(c: Candidate) -> tuple[str, float]:
        asr = whisper.asr_config(c.model, beam_size=c.beam_size, batch_size=config.batch_size,
                                 vad_filter=config.vad_filter, vad_threshold=c.vad_threshold,
                                 temperature_fallback=c.temperature_fallback)
        slice_reader = WavReader(piece)
        result = transcribe(whisper.load(asr), slice_reader, asr, language=language)
        return " ".join(s.text for s in result.segments), slice_reader.duration_s

    def score(text: str) -> float | None:
        return word_error_rate(said, [Segment(0, lo, hi, text)]) if said else None

    try:
        trials = run_trials([choice.decision.candidate, other], decode, score)
    finally:
        piece.unlink(missing_ok=True)
    st.record("training_examples", [{
        **choice.features, "language": language, "model": t.candidate.model,
        "device": config.device,
        "compute_type": config.compute_type, "beam_size": t.candidate.beam_size,
        "batch_size": config.batch_size, "vad_filter": config.vad_filter,
        "vad_threshold": t.candidate.vad_threshold,
        "temperature_fallback": t.candidate.temperature_fallback, "wall_seconds": t.seconds,
        "realtime_factor": t.seconds / t.audio_seconds, "wer": t.wer, "source": "exploration",
        "recording": st.key} for t in trials])
    spent = time.perf_counter() - started
    st.context.log.info(f"optimizer: explored {other.key} against {trials[0].candidate.key} on "
                        f"{hi - lo:.0f} s of audio ({spent:.1f} s)")
    return other.key, spent


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


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
