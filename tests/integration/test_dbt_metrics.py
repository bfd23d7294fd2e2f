"""The dbt project builds, through its Dagster asset, over real event files, and answers right."""

from __future__ import annotations

from pathlib import Path

import duckdb
from dagster import materialize

from cpw_assets.metrics import metrics_models
from cpw_resources.orchestration.resources import CpwResource
from cpw_resources.store.events import EventStore


def test_metrics_models_build_over_events(tmp_path: Path, instance) -> None:
    home = tmp_path / "cpw"
    store = EventStore(home / "events", home / "cpw.duckdb")
    for run_id, wall in (("r1", 10.0), ("r2", 8.0)):
        store.append("stage_metrics", [{"status": "success", "wall_seconds": wall,
                                        "audio_seconds": 40.0}],
                     run_id=run_id, title="film_a", asset="transcript")
        store.append("runs", [{"status": "success", "audio_seconds": 40.0,
                               "wall_seconds": wall * 2, "cues": 12}],
                     run_id=run_id, title="film_a", asset="subtitles")
    store.append("runs", [{"status": "failed", "error_message": "not media"}],
                 run_id="r3", title="film_b", asset="audio")
    store.append("api_calls", [
        {"service": "openai", "operation": "chat", "outcome": "ok", "model": "gpt-4o-mini",
         "input_tokens": 1000, "output_tokens": 200, "cost_usd": 0.00027},
        {"service": "openai", "operation": "chat", "outcome": "ok", "model": "gpt-4o-mini",
         "input_tokens": 3000, "output_tokens": 600, "cost_usd": 0.00081},
        {"service": "openai", "operation": "enhance", "outcome": "cache_hit", "cost_usd": 0.0,
         "segments": 7},
    ], run_id="r1", title="film_a", asset="enhanced_translation")

    result = materialize([metrics_models], instance=instance,
                         resources={"cpw": CpwResource(home=str(home))})
    assert result.success

    with duckdb.connect(str(home / "cpw.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select title, runs, successful_runs, last_status, audio_seconds_per_second "
            "from title_run_summary order by title").fetchall()
        assert rows == [("film_a", 2, 2, "success", 40.0 / 16.0),
                        ("film_b", 1, 0, "failed", None)]
        stage = con.execute(
            "select run_id, wall_seconds, audio_seconds_per_second from title_stage_summary"
        ).fetchall()
        assert stage == [("r2", 8.0, 5.0)]
        costs = con.execute("select title, requests, input_tokens, output_tokens, cost_usd, "
                            "lines_from_cache from title_costs").fetchall()
        assert costs == [("film_a", 2, 4000, 800, 0.00108, 7)]
        # The pipeline's own views sit beside dbt's models in the same file.
        assert con.execute("select count(*) from runs").fetchone() == (3,)


def test_metrics_models_retry_while_an_analyst_holds_the_file(tmp_path: Path, instance) -> None:
    import subprocess
    import sys
    import time

    home = tmp_path / "cpw"
    store = EventStore(home / "events", home / "cpw.duckdb")
    store.ensure_views()
    store.append("runs", [{"status": "success", "cues": 1}], run_id="r", title="t",
                 asset="subtitles")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time\n"
        f"con = duckdb.connect({str(home / 'cpw.duckdb')!r}, read_only=True)\n"
        "print('open', flush=True)\n"
        "time.sleep(10)\n"
    )], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "open"
    started = time.monotonic()
    result = materialize([metrics_models], instance=instance,
                         resources={"cpw": CpwResource(home=str(home))})
    holder.wait()
    assert result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert failures, "the first build should have met the lock and been retried"
    assert time.monotonic() - started < 60
