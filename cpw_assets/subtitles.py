"""``subtitles``: SRT and WebVTT that follow the style rules, and the run's outcome event."""


import json
import time
from dataclasses import asdict
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    asset,
)

from cpw_assets.language.enhanced_translation import enhanced_translation
from cpw_assets.stage import Stage, stage
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import CpwResource
from cpw_resources.records import read_segments
from cpw_resources.settings import Settings
from cpw_resources.subtitles.rules import (
    SubtitleRules,
    bilingual_cues,
    build_cues,
    check_cues,
    write_subtitle_files,
)


def subtitle_paths(settings: Settings, key: str) -> dict[str, Path]:
    """Where a title's subtitles land: ``titles/KEY/KEY.<target>.srt`` and ``.vtt``."""
    stem = f"{key}.{settings.target_language}"
    return {fmt: settings.title_dir(key) / f"{stem}.{fmt}" for fmt in ("srt", "vtt")}


@asset(
    partitions_def=titles,
    group_name="subtitles",
    deps=[enhanced_translation],
    check_specs=[AssetCheckSpec("follows_subtitle_rules", asset="subtitles")],
)
def subtitles(context: AssetExecutionContext, cpw: CpwResource) -> MaterializeResult:
    """Subtitle files in the target language (and bilingual on request)."""
    rules = SubtitleRules()
    with stage(context, cpw, "subtitles") as st:
        paths = subtitle_paths(st.settings, st.key)
        st.timer.outputs.extend(paths.values())
        bilingual = st.settings.bilingual
        result = st.reuse(
            translation=st.input_hash("enhanced.json"),
            transcript=st.input_hash("transcript.json") if bilingual else None,
            rules=asdict(rules), bilingual=bilingual, target=st.settings.target_language,
        )
        if result is None:
            result = st.save(_write_subtitles(st, rules, paths))
        st.audio_seconds = json.loads(st.artifact("fingerprint.json").read_text())["duration_s"]
    run_stats = context.instance.get_run_stats(context.run_id)
    wall = time.time() - run_stats.start_time if run_stats.start_time else None
    st.record("runs", [{
        "status": "success", "media_path": st.title.media_path,
        "audio_seconds": st.audio_seconds, "wall_seconds": wall,
        "source_language": result["source_language"],
        "target_language": result["target_language"], "cues": result["cues"],
    }])
    context.log.info(f"subtitles: {paths['srt']} and {paths['vtt']} ({result['cues']} cues)")
    violations = {k.removeprefix("violations_"): v for k, v in result.items()
                  if k.startswith("violations_")}
    return MaterializeResult(
        metadata=st.metadata(result),
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


def _write_subtitles(st: Stage, rules: SubtitleRules, paths: dict[str, Path]) -> dict:
    document = json.loads(st.artifact("enhanced.json").read_text())
    cues = build_cues(read_segments(document), rules)
    write_subtitle_files(cues, paths["srt"], paths["vtt"])
    source, target = document["source_language"], document["target_language"]
    if st.settings.bilingual and source != target:
        transcript = read_segments(json.loads(st.artifact("transcript.json").read_text()))
        name = f"{st.key}.{source}-{target}"
        write_subtitle_files(bilingual_cues(cues, transcript, rules),
                             st.artifact(f"{name}.srt", output=True),
                             st.artifact(f"{name}.vtt", output=True))
    violations = check_cues(cues, rules)
    chars = sum(c.chars for c in cues)
    shown = sum(c.duration for c in cues)
    return {
        "cues": len(cues),
        "srt": paths["srt"],
        "vtt": paths["vtt"],
        "source_language": source or "none",
        "target_language": target,
        "mean_cps": round(chars / shown, 2) if shown else 0.0,
        "max_cps": round(max((c.chars / c.duration for c in cues), default=0.0), 2),
        "rule_violations": sum(violations.values()),
        **{f"violations_{k}": v for k, v in violations.items()},
    }
