"""The performance report: where a title's time goes, from ``stage_metrics`` and ``runs``.

Charts: a timeline of each recent title's stages (its latest run), throughput over time
(audio seconds per wall second of each successful run), and the slowest stages (p50 / p95 of
wall seconds, cache hits left out). Recommendations come from rules on the same rows, each with
the figure that triggered it (:func:`recommend`).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from cpw_resources.reports.page import STAGE_COLOURS, Recommendation, Report, chart, write_page
from cpw_resources.store.events import EventStore

#: Titles on the timeline (their latest runs).
TIMELINE_TITLES = 12
#: A stage above this share of a title's time is a bottleneck.
BOTTLENECK_SHARE = 0.2


def stage_rows(store: EventStore) -> pl.DataFrame:
    """Successful stage executions with their start time (end minus wall time)."""
    rows = store.read("stage_metrics")
    if rows.is_empty():
        return rows.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias("start"))
    return (rows.filter((pl.col("status") == "success") & (pl.col("run_id") != ""))
            .with_columns((pl.col("ts") - pl.duration(
                microseconds=(pl.col("wall_seconds") * 1e6).cast(pl.Int64))).alias("start")))


def _shares(stages: pl.DataFrame) -> pl.DataFrame:
    """Per stage: runs, p50 / p95 seconds and mean share of its run (cache hits left out)."""
    work = stages.filter(~pl.col("cache_hit").fill_null(False))
    if work.is_empty():
        return pl.DataFrame(schema={"asset": pl.String, "runs": pl.UInt32, "p50": pl.Float64,
                                    "p95": pl.Float64, "share": pl.Float64})
    work = work.with_columns(
        (pl.col("wall_seconds") / pl.col("wall_seconds").sum().over("run_id")).alias("share"))
    return (work.group_by("asset")
            .agg(pl.len().alias("runs"), pl.col("wall_seconds").median().alias("p50"),
                 pl.col("wall_seconds").quantile(0.95, "linear").alias("p95"),
                 pl.col("share").mean().alias("share"))
            .sort("p50", descending=True))


def recommend(stages: pl.DataFrame, runs: pl.DataFrame, examples: pl.DataFrame,
              decisions: pl.DataFrame, memory_mb: float | None) -> list[Recommendation]:
    """Advice from rules on the event rows; each names the figure that triggered it."""
    out: list[Recommendation] = []
    shares = _shares(stages)
    for asset, share, p50 in shares.select("asset", "share", "p50").iter_rows():
        if share is not None and share > BOTTLENECK_SHARE and asset != "transcript":
            out.append(Recommendation(
                "bottleneck", f"{asset} takes {share:.0%} of a title's time on average; look "
                f"at what it waits for (its CPU % in stage_metrics)",
                f"p50 {p50:.1f} s, mean share {share:.0%}"))
    transcript = shares.filter(pl.col("asset") == "transcript")
    if transcript.height and (transcript["share"][0] or 0) >= 0.5:
        share = transcript["share"][0]
        clean = _clean_titles(examples)
        fixed = (decisions.filter(pl.col("source").is_in(["off", "rules"])).height
                 if decisions.height else 0)
        cheaper = _cheaper_on_clean(examples)
        if cheaper:
            advice = (f"transcript is {share:.0%} of the time and {len(clean)} titles had "
                      f"clean audio; on clean audio {cheaper[0]} was as accurate as "
                      f"{cheaper[1]} and {cheaper[2]:.0%} faster in your labelled examples: "
                      f"let the optimizer choose (CPW_OPTIMIZER=on) or pin it per title")
            figure = (f"transcript share {share:.0%}; {fixed} decisions by rules or off; "
                      f"labels: WER {cheaper[3]:.1%} vs {cheaper[4]:.1%}")
        else:
            advice = (f"transcript is {share:.0%} of the time: on clean dialogue a smaller beam "
                      f"(CPW_BEAM_SIZE=2) or the optimizer (CPW_OPTIMIZER=on, once it has "
                      f"labels) is usually as accurate and faster")
            figure = f"transcript share {share:.0%}, p50 {transcript['p50'][0]:.1f} s"
        out.append(Recommendation("transcript_dominates", advice, figure))
    waited = stages["wait_seconds"].fill_null(0.0).sum() if stages.height else 0.0
    total = stages["wall_seconds"].sum() if stages.height else 0.0
    if total and waited / total > 0.1:
        out.append(Recommendation(
            "slot_waits", "stages spent a large part of their time waiting for a Whisper slot: "
            "on a GPU with memory to spare raise CPW_ASR_POOL_SIZE; on a CPU run fewer titles "
            "at once (CPW_MAX_CONCURRENT_RUNS)", f"{waited:.0f} s of {total:.0f} s waiting"))
    if memory_mb and stages.height:
        peak = stages["peak_rss_mb"].max() or 0.0
        if peak > 0.75 * memory_mb:
            out.append(Recommendation(
                "memory", "a stage came close to the machine's memory: run fewer titles at "
                "once (CPW_MAX_CONCURRENT_RUNS) or a smaller model",
                f"peak {peak:.0f} MB of {memory_mb:.0f} MB"))
    ok = runs.filter(pl.col("status") == "success") if runs.height else runs
    failed = runs.height - ok.height if runs.height else 0
    if runs.height and failed / runs.height > 0.1:
        out.append(Recommendation(
            "failures", "many runs failed: see run_failures and input_errors for why",
            f"{failed} of {runs.height} runs failed"))
    return out


def _clean_titles(examples: pl.DataFrame) -> set[str]:
    if examples.is_empty() or "snr_db" not in examples.columns:
        return set()
    clean = examples.filter((pl.col("snr_db") >= 20) & (pl.col("music_ratio").fill_null(0) < 0.1))
    return set(clean["title"].to_list())


def _cheaper_on_clean(examples: pl.DataFrame) -> tuple[str, str, float, float, float] | None:
    """(cheaper config, default config, time saved, its WER, default WER) from the labelled
    examples on clean audio, when a smaller beam of the same model was within a WER point."""
    if examples.is_empty() or "wer" not in examples.columns:
        return None
    clean = examples.filter((pl.col("snr_db") >= 20) & (pl.col("music_ratio").fill_null(0) < 0.1)
                            & pl.col("wer").is_not_null() & pl.col("realtime_factor")
                            .is_not_null())
    if clean.is_empty():
        return None
    by = (clean.group_by("model", "beam_size")
          .agg(pl.col("wer").mean(), pl.col("realtime_factor").mean()))
    best: tuple[str, str, float, float, float] | None = None
    for model, beam, wer, speed in by.iter_rows():
        for model2, beam2, wer2, speed2 in by.iter_rows():
            if model2 == model and beam2 > beam and wer <= wer2 + 0.01 and speed < speed2:
                saved = 1 - speed / speed2
                if best is None or saved > best[2]:
                    best = (f"{model} beam {beam}", f"{model2} beam {beam2}", saved, wer, wer2)
    return best


def build(store: EventStore, folder: Path, memory_mb: float | None = None) -> tuple[Path, Report]:
    """Write ``performance.html`` and its PNG charts into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    stages = stage_rows(store)
    runs = store.read("runs")
    examples = store.read("training_examples")
    decisions = store.read("optimizer_decisions")
    shares = _shares(stages)
    ok_runs = (runs.filter((pl.col("status") == "success") & (pl.col("wall_seconds") > 0))
               .sort("ts") if runs.height else runs)
    audio_h = (ok_runs["audio_seconds"].sum() or 0.0) / 3600 if ok_runs.height else 0.0
    wall_h = (ok_runs["wall_seconds"].sum() or 0.0) / 3600 if ok_runs.height else 0.0
    report = Report("CP-WhisperX performance", [
        ("titles", str(stages["title"].n_unique() if stages.height else 0)),
        ("successful runs", str(ok_runs.height)),
        ("audio processed", f"{audio_h:.2f} h"),
        ("throughput", f"{audio_h / wall_h:.1f} audio-h per wall-h" if wall_h else "-"),
        ("slowest stage (p50)", f"{shares['asset'][0]} {shares['p50'][0]:.1f} s"
         if shares.height else "-"),
    ])
    report.charts.append(chart(folder, "timeline", "Each recent title's latest run: its stages "
                               "on the clock, from the run's first stage",
                               lambda fig: _timeline(fig, stages), height=4.2))
    report.charts.append(chart(folder, "throughput", "Throughput of each successful run (audio "
                               "seconds per wall second; cached re-runs included, marked)",
                               lambda fig: _throughput(fig, ok_runs, stages)))
    report.charts.append(chart(folder, "slowest_stages", "The slowest stages: median and 95th "
                               "percentile of wall seconds (cache hits left out)",
                               lambda fig: _slowest(fig, shares)))
    report.recommendations = recommend(stages, runs, examples, decisions, memory_mb)
    report.tables.append(("Stages", ["stage", "runs", "p50 s", "p95 s", "mean share"], [
        (a, n, f"{p50:.2f}", f"{p95:.2f}", f"{share:.0%}")
        for a, n, p50, p95, share in shares.iter_rows()]))
    return write_page(report, folder / "performance.html"), report


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#6b7280")
    ax.set_xticks([])
    ax.set_yticks([])


def _timeline(fig, stages: pl.DataFrame) -> None:
    ax = fig.add_subplot()
    if stages.is_empty():
        _empty(ax, "no stage has run yet")
        return
    latest = (stages.group_by("title").agg(pl.col("run_id").sort_by("ts").last(),
                                           pl.col("ts").max())
              .sort("ts", descending=True).head(TIMELINE_TITLES).sort("ts"))
    for y, (_title, run_id, _) in enumerate(latest.iter_rows()):
        run = stages.filter(pl.col("run_id") == run_id).sort("start")
        origin = run["start"].min()
        for asset, start, wall in run.select("asset", "start", "wall_seconds").iter_rows():
            left = (start - origin).total_seconds()
            ax.barh(y, max(wall, 0.01), left=left, color=STAGE_COLOURS.get(asset, "#9ca3af"),
                    edgecolor="white", linewidth=0.5, label=asset)
    ax.set_yticks(range(latest.height), [t[:28] for t in latest["title"].to_list()])
    ax.set_xlabel("seconds from the run's first stage")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), loc="lower center", bbox_to_anchor=(0.5, 1.0),
              fontsize=8, ncols=len(unique), frameon=False)


def _throughput(fig, ok_runs: pl.DataFrame, stages: pl.DataFrame) -> None:
    ax = fig.add_subplot()
    if ok_runs.is_empty():
        _empty(ax, "no successful run yet")
        return
    cached = set(stages.filter(pl.col("asset") == "transcript")
                 .filter(pl.col("cache_hit").fill_null(False))["run_id"].to_list())
    speed = (ok_runs["audio_seconds"].fill_null(0.0) / ok_runs["wall_seconds"]).to_list()
    when = ok_runs["ts"].to_list()
    fresh = [(t, s) for t, s, r in zip(when, speed, ok_runs["run_id"], strict=True)
             if r not in cached]
    again = [(t, s) for t, s, r in zip(when, speed, ok_runs["run_id"], strict=True)
             if r in cached]
    if fresh:
        ax.plot(*zip(*fresh, strict=True), "o-", color="#2563eb", label="runs")
    if again:
        ax.plot(*zip(*again, strict=True), "s", color="#9ca3af", label="cached re-runs")
    ax.set_ylabel("audio s per wall s")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()


def _slowest(fig, shares: pl.DataFrame) -> None:
    ax = fig.add_subplot()
    if shares.is_empty():
        _empty(ax, "no stage has run yet")
        return
    names = shares["asset"].to_list()
    y = range(len(names))
    ax.barh([v + 0.2 for v in y], shares["p95"].to_list(), height=0.4, color="#fdba74",
            label="p95")
    ax.barh([v - 0.2 for v in y], shares["p50"].to_list(), height=0.4,
            color=[STAGE_COLOURS.get(n, "#9ca3af") for n in names], label="p50")
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlabel("wall seconds")
    ax.legend(fontsize=8)
