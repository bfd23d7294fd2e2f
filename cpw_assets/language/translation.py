"""``translation``: one target-language segment per transcript segment (same ids and times).

Embedded backend: Whisper's translate task on each segment's audio (any language → English).
Speech already in the target language, or no speech at all, passes through with the reason.
"""


import json
from dataclasses import asdict
from pathlib import Path

from cpw_resources.llm.translate import PROMPT_VERSION, translate_batches
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    asset,
)

from cpw_assets.language.glossary import glossary
from cpw_assets.stage import Stage, stage
from cpw_resources.atomic import write_json
from cpw_resources.errors import ConfigError
from cpw_resources.language.glossary import prompt_names
from cpw_resources.llm.providers import provider_from_settings
from cpw_resources.orchestration.instance import ASR_POOL
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import CpwResource
from cpw_resources.records import read_segments
from cpw_resources.settings import Settings
from cpw_resources.speech.asr import AsrConfig, is_multilingual, load_model, translate_segments
from cpw_resources.speech.media import SAMPLE_RATE, load_wav
from cpw_resources.speech.models import is_english_only


def translation_model_name(settings: Settings) -> str:
    if settings.translation_model:
        return settings.translation_model
    return "base" if is_english_only(settings.whisper_model) else settings.whisper_model


@asset(partitions_def=titles, group_name="language", deps=[glossary], pool=ASR_POOL,
       check_specs=[AssetCheckSpec("translation_complete", asset="translation")])
def translation(context: AssetExecutionContext, cpw: CpwResource) -> MaterializeResult:
    """The transcript in the target language, segment by segment."""
    with stage(context, cpw, "translation") as st:
        output = st.artifact("translation.json", output=True)
        config = AsrConfig.from_settings(st.settings, translation_model_name(st.settings))
        settings = st.settings
        llm = ({"provider": settings.llm_provider, "model": settings.llm_model,
                "batch": settings.llm_batch_size, "prompt": PROMPT_VERSION}
               if settings.translation_backend == "llm" else None)
        result = st.reuse(
            transcript=st.input_hash("transcript.json"), glossary=st.input_hash("glossary.json"),
            audio=st.input_hash("audio.wav"), target=settings.target_language,
            config=asdict(config) | {"cpu_threads": None}, llm=llm,
        )
        if result is None:
            result = _translate(st, config, output)
            if not result.get("degraded_segments"):  # a degraded result is retried next run
                st.save(result)
    degraded = result.get("degraded_segments", 0)
    return MaterializeResult(
        metadata=st.metadata(result),
        check_results=[AssetCheckResult(
            check_name="translation_complete", passed=degraded == 0,
            severity=AssetCheckSeverity.WARN,
            description="every segment translated (none kept in the original language)",
            metadata={"degraded_segments": degraded},
        )],
    )


def _translate(st: Stage, config: AsrConfig, output: Path) -> dict:
    document = json.loads(st.artifact("transcript.json").read_text())
    segments = read_segments(document)
    source, target = document["language"], st.settings.target_language
    if not segments:
        return _write(st, output, source, target, "passthrough", "no speech", segments)
    if source == target:
        return _write(st, output, source, target, "passthrough",
                      f"source already in target language {target!r}", segments)
    if st.settings.translation_backend == "llm":
        return _llm_translate(st, output, source, target, segments)
    if target != "en":
        raise ConfigError(
            f"Whisper's translate task only produces English, but CPW_TARGET_LANGUAGE is "
            f"{target!r}; set CPW_TARGET_LANGUAGE=en."
        )
    terms = json.loads(st.artifact("glossary.json").read_text())
    with st.asr_slot():
        model = load_model(config, st.settings)
        if not is_multilingual(model):
            raise ConfigError(
                f"translation model {config.model!r} is English-only and cannot translate "
                f"from {source!r}; set CPW_TRANSLATION_MODEL to a multilingual model."
            )
        samples = load_wav(st.artifact("audio.wav"))
        st.audio_seconds = len(samples) / SAMPLE_RATE
        st.context.log.info(f"translating {len(segments)} segments {source} → en "
                            f"with Whisper {config.model}")
        translated = translate_segments(
            model, samples, segments, config, source_language=source,
            initial_prompt=prompt_names(terms), progress=st.log_progress("translation"),
        )
    return _write(st, output, source, target, f"whisper-translate:{config.model}", None,
                  translated)


def _llm_translate(st: Stage, output: Path, source: str, target: str, segments: list) -> dict:
    settings = st.settings
    provider = provider_from_settings(settings, st.cpw.reliability(
        run_id=st.context.run_id, title=st.key, asset="translation"))
    terms = json.loads(st.artifact("glossary.json").read_text())
    names = [t["term"] for t in terms.get("terms", ())]
    st.context.log.info(f"translating {len(segments)} segments {source} → {target} with "
                        f"{settings.llm_provider} {settings.llm_model}")
    done = translate_batches(provider, segments, source=source, target=target, glossary=names,
                             batch_size=settings.llm_batch_size,
                             progress=st.log_progress("translation"))
    if done.failed_ids:
        st.record("degradations", [{
            "service": settings.llm_provider, "kind": "translation_failed",
            "message": "; ".join(done.errors)[:2000],
            "fallback": f"{len(done.failed_ids)} segment(s) kept in the original language",
        }])
        st.context.log.warning(f"{len(done.failed_ids)} of {len(segments)} segments kept in "
                               f"{source}: {done.errors[-1] if done.errors else ''}")
    result = _write(st, output, source, target, f"llm:{settings.llm_provider}:{settings.llm_model}",
                    None, done.segments, failed_ids=done.failed_ids)
    return result | {"degraded_segments": len(done.failed_ids), "llm_requests": done.requests,
                     "input_tokens": done.input_tokens, "output_tokens": done.output_tokens}


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
