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
    """Subtitle files in the target language (and bilingual on request)."""
    rules = SubtitleRules()
    with stage(context, store, titles) as st:
        document = st.files.enhanced()
        st.target_language = document["target_language"]
        paths = st.files.subtitles(st.target_language)
        st.timer.outputs.extend(paths.values())
        result = st.reuse(config, rules=asdict(rules))
        if result is None:
            result = st.save(_write_subtitles(st, config, document, rules, paths))
        st.audio_seconds = st.files.transcript()["duration_s"]
    run_stats = context.instance.get_run_stats(context.run_id)
    wall = time.time() - run_stats.start_time if run_stats.start_time else None
    st.record("runs", [{
        "status": "success", "media_path": st.title.media_path,
        "audio_seconds": st.audio_seconds, "wall_seconds": wall,
        "source_language": result["source_language"],
        "target_language": result["target_language"], "cues": result["cues"],
    }])
    context.log.info(f"subtitles: {paths['srt']} and {paths['vtt']} ({result['cues']} cues); "
                     f"preview: {result['preview']}")
    violations = {k.removeprefix("violations_"): v for k, v in result.items()
                  if k.startswith("violations_")}
    metadata = st.metadata(result)
    metadata["preview"] = MetadataValue.path(str(result["preview"]))
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
    if config.bilingual and source != target:
        both = st.files.bilingual(source, target)
        write_subtitle_files(bilingual_cues(cues, st.files.transcript_segments(), rules),
                             st.output(both["srt"]), st.output(both["vtt"]))
    violations = check_cues(cues, rules)
    preview = st.output(st.dir / "preview.html")
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
        "source_language": source or "none",
        "target_language": target,
        "mean_cps": round(chars / shown, 2) if shown else 0.0,
        "max_cps": round(max((c.chars / c.duration for c in cues), default=0.0), 2),
        "rule_violations": sum(violations.values()),
        **{f"violations_{k}": v for k, v in violations.items()},
    }
