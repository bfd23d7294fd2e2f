"""The dbt project builds its models over real event files and they answer correctly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from cpw_resources.store import EventStore

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_metrics"


def test_dbt_build_over_events(tmp_path: Path) -> None:
    home = tmp_path / "cpw"
    store = EventStore(home / "events", home / "cpw.duckdb")
    store.ensure_views()
    for run_id, wall in (("r1", 10.0), ("r2", 8.0)):
        store.append("stage_metrics", [{"status": "success", "wall_seconds": wall,
                                        "audio_seconds": 40.0}],
                     run_id=run_id, title="film_a", asset="transcript")
        store.append("runs", [{"status": "success", "audio_seconds": 40.0,
                               "wall_seconds": wall * 2, "cues": 12}],
                     run_id=run_id, title="film_a", asset="subtitles")
    store.append("runs", [{"status": "failed", "error_message": "not media"}],
                 run_id="r3", title="film_b", asset="audio")

    project = tmp_path / "dbt_metrics"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    env = {**os.environ, "CPW_HOME": str(home), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    dbt = Path(sys.executable).parent / "dbt"
    done = subprocess.run(
        [str(dbt), "build", "--project-dir", str(project), "--profiles-dir", str(project)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:]

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
