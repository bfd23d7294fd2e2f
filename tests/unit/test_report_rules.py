"""The reports' rules: each fires on the figures it names, and only then."""

from __future__ import annotations

import datetime as dt

import polars as pl

from cpw_resources.reports import costs, performance

NOW = dt.datetime.now(dt.UTC)


def _api(rows: list[tuple[str, str, float, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"ts": NOW, "title": t, "asset": "enhanced_translation", "outcome": o,
          "cost_usd": c, "segments": n, "service": "openai", "model": "gpt-4o-mini"}
         for t, o, c, n in rows], schema_overrides={"ts": pl.Datetime("us", "UTC")})


def _stages(compute: float) -> pl.DataFrame:
    return pl.DataFrame([{"ts": NOW, "title": "a", "compute_cost_usd": compute}],
                        schema_overrides={"ts": pl.Datetime("us", "UTC")})


def test_enhancement_spend_without_cache_hits_is_named_with_its_figures():
    api = _api([("a", "ok", 6.0, 300), ("b", "ok", 3.0, 150), ("a", "cache_hit", 0.0, 10)])
    per_title, per_day = costs._per_title(api, _stages(0.01)), costs._per_day(api, _stages(0.01))
    found = costs.recommend(api, per_title, per_day, 10.0, 0.5, pl.DataFrame())
    rules = {r.rule: r for r in found}
    assert set(rules) == {"enhancement_cache", "daily_budget"}
    assert "cache hit rate 2%" in rules["enhancement_cache"].figure
    assert rules["daily_budget"].figure == "$9.00 of $10.00 today"


def test_a_cached_cheap_day_needs_nothing_and_compute_is_named_when_it_leads():
    api = _api([("a", "ok", 0.01, 10), ("a", "cache_hit", 0.0, 90)])
    per_title, per_day = costs._per_title(api, _stages(0.02)), costs._per_day(api, _stages(0.02))
    found = costs.recommend(api, per_title, per_day, 10.0, 0.5, pl.DataFrame())
    assert [r.rule for r in found] == ["compute"]
    assert per_title["total"].to_list() == [0.03]


def test_transcript_share_and_slot_waits():
    run = [("media", 0.1, 0.0), ("audio", 0.5, 0.0), ("transcript", 8.0, 3.0),
           ("subtitles", 0.2, 0.0)]
    stages = pl.DataFrame([{"run_id": "r", "title": "a", "asset": a, "wall_seconds": w,
                            "wait_seconds": wait, "cache_hit": False, "peak_rss_mb": 500.0}
                           for a, w, wait in run])
    runs = pl.DataFrame([{"status": "success"}])
    found = {r.rule: r for r in performance.recommend(stages, runs, pl.DataFrame(),
                                                      pl.DataFrame(), memory_mb=600.0)}
    assert set(found) == {"transcript_dominates", "slot_waits", "memory"}
    assert "transcript share 91%" in found["transcript_dominates"].figure
    assert found["slot_waits"].figure == "3 s of 9 s waiting"
    calm = performance.recommend(stages.with_columns(pl.lit(0.0).alias("wait_seconds")), runs,
                                 pl.DataFrame(), pl.DataFrame(), memory_mb=64000.0)
    assert [r.rule for r in calm] == ["transcript_dominates"]
