"""Several runs at once with an analyst's read-only DuckDB session open; SIGKILL mid-transcript."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import duckdb
import numpy as np
from dagster import DagsterInstance, DagsterRunStatus

from cpw_resources.store.events import EventStore
from tests.conftest import JFK

BIN = Path(sys.executable).parent


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CPW_") and k != "DAGSTER_HOME"}
    return {**env, "CPW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
            "CPW_WHISPER_MODEL": "tiny.en"}


def _variant(folder: Path, name: str, repeat: int, pad_s: float) -> Path:
    """jfk.wav repeated ``repeat`` times plus ``pad_s`` of silence: distinct real speech."""
    with wave.open(str(JFK)) as src:
        params, frames = src.getparams(), src.readframes(src.getnframes())
    speech = np.frombuffer(frames, dtype=np.int16)
    pad = np.zeros(int(pad_s * params.framerate), dtype=np.int16)
    samples = np.concatenate([speech] * repeat + [pad])
    path = folder / name
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(samples.tobytes())
    return path


def _execute(key: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "dagster"), "job", "execute", "-m", "cpw_assets.definitions",
         "-j", "subtitle_job", "--tags", json.dumps({"dagster/partition": key})],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )


def _intervals(con, asset: str) -> list[tuple[float, float]]:
    rows = con.execute(
        # The part that held the Whisper slot: the stage minus its wait for one.
        "select epoch(ts) - wall_seconds + wait_seconds, epoch(ts) from stage_metrics "
        "where asset = ? and not cache_hit", [asset]).fetchall()
    return sorted(rows)


def test_four_runs_at_once_with_an_analyst_reading(tmp_path, media_dir):
    home = tmp_path / "home"
    env = _env(home)
    media = [_variant(media_dir, f"Episode {i}.wav", 1, 0.25 * i) for i in range(4)]
    keys = subprocess.run([str(BIN / "cpw"), "register", *map(str, media)], env=env,
                          check=True, capture_output=True, text=True).stdout.split()
    assert len(set(keys)) == 4
    store = EventStore(home / "events", home / "cpw.duckdb")
    assert store.ensure_views()

    analyst = duckdb.connect(str(home / "cpw.duckdb"), read_only=True)
    runs = [_execute(key, env) for key in keys]
    seen = []
    while any(p.poll() is None for p in runs):
        seen.append(analyst.execute("select count(*) from stage_metrics").fetchone()[0])
        time.sleep(0.5)
    outputs = [p.communicate()[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0, 0, 0], outputs[0][-3000:]

    # Every event row is there, seen through the session that stayed open the whole time.
    assert analyst.execute("select count(*) from stage_metrics").fetchone()[0] == 28
    assert analyst.execute(
        "select count(*) from runs where status = 'success'").fetchone()[0] == 4
    assert analyst.execute("select count(*) from training_examples").fetchone()[0] == 4
    assert seen == sorted(seen)  # counts only grow while runs write
    # The asr pool (1 slot) kept Whisper steps of different runs from overlapping.
    whisper = _intervals(analyst, "transcript") + _intervals(analyst, "translation")
    whisper.sort()
    for (_, end), (start, _) in zip(whisper, whisper[1:], strict=False):
        assert start >= end - 0.05, whisper
    analyst.close()
    for key in keys:
        assert (home / "titles" / key / f"{key}.en.srt").stat().st_size > 0


def test_sigkill_mid_transcript_leaves_nothing_half_written(tmp_path, media_dir):
    home = tmp_path / "home"
    env = _env(home)
    media = _variant(media_dir, "Long Speech.wav", 6, 0.0)
    key = subprocess.run([str(BIN / "cpw"), "register", str(media)], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    title_dir = home / "titles" / key
    run = _execute(key, env)
    deadline = time.monotonic() + 120
    while not (title_dir / ".cache" / "audio.json").exists():
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()[0][-3000:]
        time.sleep(0.05)
    time.sleep(1.5)  # inside transcript: tiny.en needs several seconds for 66 s of speech
    assert not (title_dir / "transcript.json").exists()
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()

    leftovers = [p for p in home.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert not (title_dir / "transcript.json").exists()
    for parquet in (home / "events").rglob("*.parquet"):
        duckdb.sql(f"select count(*) from read_parquet('{parquet}')").fetchall()

    done = subprocess.run([str(BIN / "cpw"), "run", str(media)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "had died; marked failed" in done.stderr
    store = EventStore(home / "events", home / "cpw.duckdb")
    stages = store.read("stage_metrics")
    latest = stages.filter(stages["run_id"] == stages.sort("ts")["run_id"][-1])
    hits = dict(zip(latest["asset"], latest["cache_hit"], strict=True))
    assert hits["audio"] is True and hits["transcript"] is False
    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
    assert statuses == [DagsterRunStatus.FAILURE.value, DagsterRunStatus.SUCCESS.value]
