"""``translation``: one target-language segment per transcript segment (same ids and times).

Routes (:func:`cpw_resources.language.targets.route`): Whisper's translate task over the film
(any language → English), or an LLM on the transcript's segments (any language → any), the
local model by default where it measured better (``CPW_TRANSLATION_BACKEND=auto``). Speech
already in the target language, or no speech at all, passes through with the reason.
"""


from dataclasses import asdict
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from cpw_assets.language.glossary import glossary
from cpw_assets.speech.media import audio
from cpw_assets.speech.transcript import transcript
from cpw_assets.stage import Stage, stage
from cpw_resources.atomic import write_json
from cpw_resources.errors import ConfigError
from cpw_resources.language.glossary import prompt_names
from cpw_resources.language.targets import Route, route, unavailable
from cpw_resources.llm import translate as llm_translate
from cpw_resources.llm.engine import ReplyCache
from cpw_resources.llm.providers import ProviderSpec
from cpw_resources.optimizer.candidates import Candidate
from cpw_resources.orchestration.config import TranslationConfig
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import (
    EventStoreResource,
    LlmResource,
    ReliabilityResource,
    TitleRegistryResource,
    WhisperResource,
)
from cpw_resources.speech.asr import TRANSLATION, AsrConfig, is_multilingual, translate
from cpw_resources.speech.models import is_english_only


def whisper_translation_model(config: TranslationConfig, transcript_model: str) -> str:
    """The configured model, else the transcript's when it is multilingual, else base."""
    if config.whisper_model:
        return config.whisper_model
    return "base" if is_english_only(transcript_model) else transcript_model


@asset(partitions_def=titles, group_name="language", deps=[transcript, glossary, audio],
       kinds={"whisper", "openai"},
       check_specs=[AssetCheckSpec(
           "translation_complete", asset="translation",
           description="Every segment has a translation (none left in the spoken language "
                       "after the backend's retries and fallbacks)")])
def translation(context: AssetExecutionContext, config: TranslationConfig,
                store: EventStoreResource, titles: TitleRegistryResource,
                whisper: WhisperResource, llm: LlmResource,
                reliability: ReliabilityResource) -> MaterializeResult:
    """The transcript in each target language, segment by segment: one
    ``translation.<lang>.json`` and one cache entry per language, so adding or switching a
    language never redoes or overwrites another. A language no configured backend can
    produce is left out with a warning (the check says so), not a failed title."""
    with stage(context, store, titles) as st:
        languages = config.languages()
        st.target_language = ",".join(languages)
        document = st.files.transcript()
        spoken = document["config"]  # Whisper's translate pass decodes like the transcript
        # ... with the config the optimizer (or a pin) chose for it, on a multilingual model.
        asr = whisper.asr_config(whisper_translation_model(config, spoken["model"]),
                                 beam_size=spoken["beam_size"], batch_size=spoken["batch_size"],
                                 vad_filter=spoken["vad_filter"],
                                 vad_threshold=spoken.get("vad_threshold", 0.5),
                                 temperature_fallback=spoken.get("temperature_fallback", True))
        results, hits = {}, []
        for language in languages:
            refused = unavailable(document.get("language"), language, config.backend)
            if refused:
                st.record("degradations", [{"service": "translation", "kind":
                                            "language_unavailable", "message": refused,
                                            "fallback": f"no {language} subtitles"}])
                context.log.warning(f"translation: {refused}")
                results[language] = {"refused": refused}
                continue
            way = route(config.backend, config.llm, document.get("language"), language)
            prompt = llm_translate.TRANSLATION_PROMPT.version if way.backend == "llm" else None
            result = st.reuse(config, language=language, asr=asdict(asr) | {"cpu_threads": None},
                              llm_prompt=prompt, whisper_translation=TRANSLATION,
                              route=[way.backend, way.llm])
            hits.append(result is not None)
            if result is None:
                output = st.output(st.files.path(f"translation.{language}.json"))
                context.log.info(f"translation into {language}: {way.reason}")
                result = _translate(st, config, way, document, asr, whisper, llm, reliability,
                                    language, output) | {"route": way.reason}
                if not result.get("degraded_segments"):  # a degraded one is retried next run
                    st.save(result, [output])
            results[language] = result
        st.cache_hit = bool(hits) and all(hits)
        made = [lang for lang, r in results.items() if "refused" not in r]
        write_json(st.output(st.files.path("translation.json")),
                   {"source_language": document.get("language"), "languages": made})
    refused = {k: v["refused"] for k, v in results.items() if "refused" in v}
    degraded = sum(r.get("degraded_segments", 0) for r in results.values())
    first = next((r for r in results.values() if "refused" not in r), {})
    chosen = Candidate(asr.model, asr.beam_size, asr.vad_threshold, asr.temperature_fallback)
    summary = {lang: ({"refused": r["refused"]} if "refused" in r else
                      {k: r.get(k) for k in ("backend", "route", "segments",
                                             "passthrough_reason", "degraded_segments")
                       if r.get(k) is not None})
               for lang, r in results.items()}
    return MaterializeResult(
        metadata=st.metadata({**first, "languages": ",".join(languages),
                              "whisper_config": chosen.key,
                              "whisper_config_source": "CPW_TRANSLATION_MODEL"
                              if config.whisper_model else "the transcript's"})
        | {"by_language": MetadataValue.json(summary)},
        check_results=[AssetCheckResult(
            check_name="translation_complete", passed=degraded == 0 and not refused,
            severity=AssetCheckSeverity.WARN,
            description="every segment translated (none kept in the original language) into "
                        "every language asked for",
            metadata={"degraded_segments": degraded,
                      "languages_refused": MetadataValue.json(refused)},
        )],
    )


def _translate(st: Stage, config: TranslationConfig, way: Route, document: dict,
               asr: AsrConfig, whisper: WhisperResource, llm: LlmResource,
               reliability: ReliabilityResource, target: str, output: Path) -> dict:
    segments = st.files.transcript_segments()
    source = document["language"]
    if not segments:
        return _write(st, output, source, target, "passthrough", "no speech", segments)
    if source == target:
        return _write(st, output, source, target, "passthrough",
                      f"source already in target language {target!r}", segments)
    if way.backend == "llm":
        return _llm_translate(st, config, way.llm or config.llm, output, source, segments,
                              llm, reliability, target)
    terms = st.files.glossary()
    with st.asr_slot(whisper):
        model = whisper.load(asr)
        if not is_multilingual(model):
            raise ConfigError(
                f"translation model {asr.model!r} is English-only and cannot translate "
                f"from {source!r}; set CPW_TRANSLATION_MODEL to a multilingual model."
            )
        wav = st.files.audio()
        st.audio_seconds = wav.duration_s
        st.context.log.info(f"translating {len(segments)} segments {source} → en "
                            f"with Whisper {asr.model}")
        translated = translate(
            model, wav, segments, asr, source_language=source,
            initial_prompt=prompt_names(terms), progress=st.log_progress("translation"),
            names=[t["term"] for t in terms.get("terms", ())],
        )
    return _write(st, output, source, target, f"whisper-translate:{asr.model}", None,
                  translated)


def _llm_translate(st: Stage, config: TranslationConfig, model: str, output: Path,
                   source: str, segments: list, llm: LlmResource,
                   reliability: ReliabilityResource, target: str) -> dict:
    calls = reliability.for_call(run_id=st.context.run_id, title=st.key, asset=st.name,
                                 secrets=llm.secrets)
    spec = ProviderSpec.parse(model, "CPW_TRANSLATION_LLM")
    provider = llm.provider(spec, calls, setting="CPW_TRANSLATION_LLM",
                            log=st.context.log.info)
    names = [t["term"] for t in st.files.glossary().get("terms", ())]
    st.context.log.info(f"translating {len(segments)} segments {source} → {target} with "
                        f"{model}")
    done = llm_translate.run(
        [(provider, llm.pricing.price(spec.provider, spec.model))], segments, source=source,
        target=target, glossary_terms=names, batch_size=config.llm_batch_size,
        cache=ReplyCache(llm.cache_path), on_cache_hits=st.record_cache_hits("translate"),
        progress=st.log_progress("translation"))
    if done.failed_ids:
        st.record("degradations", [{
            "service": provider.service, "kind": "translation_failed",
            "message": "; ".join(done.errors)[:2000],
            "fallback": f"{len(done.failed_ids)} segment(s) kept in the original language",
        }])
        st.context.log.warning(f"{len(done.failed_ids)} of {len(segments)} segments kept in "
                               f"{source}: {done.errors[-1] if done.errors else ''}")
    result = _write(st, output, source, target, f"llm:{model}", None, done.segments,
                    failed_ids=done.failed_ids)
    return result | {"degraded_segments": len(done.failed_ids), "llm_requests": done.requests,
                     "input_tokens": done.input_tokens, "output_tokens": done.output_tokens,
                     "cost_usd": round(done.cost_usd, 6), "cache_hits": done.cache_hits}


def _write(st: Stage, output: Path, source: str | None, target: str, backend: str,
           reason: str | None, translated: list, failed_ids: tuple | list = ()) -> dict:
    if reason:
        st.context.log.info(f"translation passed through: {reason}")
    write_json(output, {
        "source_language": source,
        "target_language": target,
        "backend": backend,
        "passthrough_reason": reason,
        "untranslated_segment_ids": list(failed_ids),
        "segments": [asdict(s) for s in translated],
    })
    return {
        "segments": len(translated),
        "words": sum(len(s.text.split()) for s in translated),
        "backend": backend,
        "passthrough_reason": reason or "",
        "source_language": source or "none",
    }
