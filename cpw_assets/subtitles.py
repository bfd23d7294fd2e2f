"""``subtitles``: SRT and WebVTT that follow the style rules, a ``preview.html`` to watch them
play (docs/quickstart.md), and the run's outcome event."""


import time
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

from cpw_assets.language.enhanced_translation import enhanced_translation
from cpw_assets.speech.media import audio
from cpw_assets.speech.transcript import transcript
from cpw_assets.stage import Stage, stage
from cpw_resources.orchestration.config import SubtitlesConfig
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import EventStoreResource, TitleRegistryResource
from cpw_resources.records import read_segments
from cpw_resources.subtitles.preview import cue_problems, wav_peaks, write_preview
from cpw_resources.subtitles.rules import (
    SubtitleRules,
    bilingual_cues,
    build_cues,
    check_cues,
    write_subtitle_files,
)


@asset(
    partitions_def=titles,
    group_name="subtitles",
    deps=[enhanced_translation, transcript, audio],
    check_specs=[AssetCheckSpec(
        "follows_subtitle_rules", asset="subtitles",
        description="Every cue follows the style rules: at most 2 lines of 42 characters, "
                    "at most 17 characters per second (never above 20 where speech allows), "
                    "5/6 s to 7 s on screen, 2 frames between cues (WARN: counts only)")],
    kinds={"srt", "webvtt"},
)
def subtitles(context: AssetExecutionContext, config: SubtitlesConfig,
              store: EventStoreResource, titles: TitleRegistryResource) -> MaterializeResult:
    """Subtitle files in each target language (and bilingual on request), each with a
    ``preview.<lang>.html``; one cache entry per language."""
    rules = SubtitleRules()
    with stage(context, store, titles) as st:
        languages = st.files.languages("enhanced.json")
        st.target_language = ",".join(languages)
        results, hits = {}, []
        for language in languages:
            document = st.files.enhanced(language)
            paths = st.files.subtitles(language)
            result = st.reuse(config, language=language, rules=asdict(rules))
            hits.append(result is not None)
            if result is None:
                made = _write_subtitles(st, config, document, rules, paths)
                result = st.save(made, [*paths.values(), made["preview"],
                                        *map(Path, made["bilingual"])])
            st.timer.outputs.extend([*paths.values(), Path(result["preview"])])
            results[language] = result
        st.cache_hit = bool(hits) and all(hits)
        st.audio_seconds = st.files.transcript()["duration_s"]
    run_stats = context.instance.get_run_stats(context.run_id)
    wall = time.time() - run_stats.start_time if run_stats.start_time else None
    first = next(iter(results.values()), None)
    st.record("runs", [{
        "status": "success", "media_path": st.title.media_path,
        "audio_seconds": st.audio_seconds, "wall_seconds": wall,
        "source_language": first["source_language"] if first else None,
        "target_language": ",".join(results) or None,
        "cues": sum(r["cues"] for r in results.values()),
    }])
    for language, made in results.items():
        context.log.info(f"subtitles ({language}): {made['srt']} and {made['vtt']} "
                         f"({made['cues']} cues); preview: {made['preview']}")
    result = {k: v for k, v in (first or {"cues": 0}).items() if k != "bilingual"}
    result["languages"] = ",".join(results) or "none"
    if len(results) > 1:
        for key in [k for k in result if k.startswith("violations_") or k == "cues"]:
            result[key] = sum(r.get(key, 0) for r in results.values())
    violations = {k.removeprefix("violations_"): v for k, v in result.items()
                  if k.startswith("violations_")}
    metadata = st.metadata(result)
    if first is not None:
        metadata["preview"] = MetadataValue.path(str(first["preview"]))
    return MaterializeResult(
        metadata=metadata,
        check_results=[
            AssetCheckResult(
                check_name="follows_subtitle_rules",
                passed=sum(violations.values()) == 0,
                severity=AssetCheckSeverity.WARN,
                metadata=violations,
                description="≤42 chars × 2 lines, ≤17 cps (never >20), 5/6–7 s, ≥2 frames gap",
            )
        ],
    )


def _write_subtitles(st: Stage, config: SubtitlesConfig, document: dict, rules: SubtitleRules,
                     paths: dict[str, Path]) -> dict:
    cues = build_cues(read_segments(document), rules)
    write_subtitle_files(cues, paths["srt"], paths["vtt"])
    source, target = document["source_language"], document["target_language"]
    bilingual: list[Path] = []
    if config.bilingual and source != target:
        both = st.files.bilingual(source, target)
        write_subtitle_files(bilingual_cues(cues, st.files.transcript_segments(), rules),
                             st.output(both["srt"]), st.output(both["vtt"]))
        bilingual = [str(both["srt"]), str(both["vtt"])]
    violations = check_cues(cues, rules)
    preview = st.output(st.dir / f"preview.{target}.html")
    enhanced = {d["id"] for d in document.get("decisions", ()) if d.get("status") == "enhanced"}
    wav = st.files.audio()
    write_preview(preview, title=st.title.media.name, language=target,
                  audio_name="audio.wav", vtt=paths["vtt"].read_text(encoding="utf-8"),
                  cues=cues, problems=cue_problems(cues, rules), enhanced=enhanced,
                  peaks=wav_peaks(wav), duration=wav.duration_s)
    chars = sum(c.chars for c in cues)
    shown = sum(c.duration for c in cues)
    return {
        "cues": len(cues),
        "srt": paths["srt"],
        "vtt": paths["vtt"],
        "preview": preview,
        "bilingual": bilingual,
        "source_language": source or "none",
        "target_language": target,
        "mean_cps": round(chars / shown, 2) if shown else 0.0,
        "max_cps": round(max((c.chars / c.duration for c in cues), default=0.0), 2),
        "rule_violations": sum(violations.values()),
        **{f"violations_{k}": v for k, v in violations.items()},
    }
