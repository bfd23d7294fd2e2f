"""Several runs at once with an analyst's read-only DuckDB session open; crashes and recovery:
SIGKILL mid-transcript, runs waiting for a Whisper slot, dead runs found by the next run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import wave
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import psutil
from dagster import DagsterEvent, DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus

# No public constructor exists for an executor's pid event or a step's success data: these
# two fake a crashed run's records exactly as Dagster writes them.
from dagster._core.events import EngineEventData
from dagster._core.execution.plan.objects import StepSuccessData

from cpw_resources.orchestration.instance import ensure_dagster_home
from cpw_resources.settings import Settings
from cpw_resources.speech.slots import machine_slot
from cpw_resources.store.events import EventStore
from tests.conftest import JFK

BIN = Path(sys.executable).parent


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CPW_") and k != "DAGSTER_HOME"}
    return {**env, "CPW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
            "CPW_WHISPER_MODEL": "tiny.en", "CPW_TRANSLATION_BACKEND": "whisper"}


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


def _whisper_intervals(con) -> list[tuple[float, float]]:
    """When each run's Whisper was decoding: a training example is written inside the Whisper
    slot right after decoding, with the decoding's wall seconds. (A stage interval would not
    do: a stage takes its slot after its cache check, and a translation that passes English
    through takes none.)"""
    return sorted(con.execute(
        "select epoch(ts) - wall_seconds, epoch(ts) from training_examples").fetchall())


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
    # The one Whisper slot kept Whisper work of different runs from overlapping.
    whisper = _whisper_intervals(analyst)
    assert len(whisper) == 4
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


def _execute_logged(key: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``dagster job execute`` as a shell would start it: SIGINT at its default, own group."""
    with open(log, "w") as out:
        return subprocess.Popen(
            [str(BIN / "dagster"), "job", "execute", "-m", "cpw_assets.definitions",
             "-j", "subtitle_job", "--tags", json.dumps({"dagster/partition": key})],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


def _wait_for_text(run: subprocess.Popen, log: Path, text: str, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while text not in log.read_text():
        assert run.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)


def _register(media: Path, env: dict[str, str]) -> str:
    return subprocess.run([str(BIN / "cpw"), "register", str(media)], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_sigkill_then_a_plain_dagster_execute_recovers_alone(tmp_path, media_dir):
    """No `cpw` command between the crash and the next run: the run itself recovers."""
    home = tmp_path / "home"
    env = _env(home)
    key = _register(_variant(media_dir, "Long Speech.wav", 6, 0.0), env)
    title_dir = home / "titles" / key
    killed = _execute_logged(key, env, tmp_path / "killed.log")
    _wait_for_text(killed, tmp_path / "killed.log", "transcribing ")
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    # What a killed write leaves, and a write in progress by a live process (this one).
    stale = [title_dir / f".audio.wav.{killed.pid}.k1ll3d00.tmp",
             title_dir / ".cache" / f".transcript.json.{killed.pid}.k1ll3d00.tmp",
             title_dir / f".{key}.en.vtt.{killed.pid}.k1ll3d00.tmp"]
    live = title_dir / f".{key}.en.srt.{os.getpid()}.l1ve0000.tmp"
    for path in [*stale, live]:
        path.write_bytes(b"partial")

    log = tmp_path / "next.log"
    started = time.monotonic()
    rerun = _execute_logged(key, env, log)
    assert rerun.wait(timeout=240) == 0, log.read_text()[-3000:]
    assert time.monotonic() - started < 240
    output = log.read_text()
    assert f"process {killed.pid} was killed or died during transcript" in output
    assert [p for p in stale if p.exists()] == [] and live.exists()
    assert (title_dir / f"{key}.en.srt").stat().st_size > 0

    store = EventStore(home / "events", home / "cpw.duckdb")
    runs = store.read("runs")
    dead = runs.filter(runs["error_class"] == "ProcessDied")
    assert dead.height == 1
    row = dead.row(0, named=True)
    assert (row["status"], row["title"], row["asset"]) == ("failed", key, "transcript")
    assert row["error_message"] == f"process {killed.pid} was killed or died during transcript"
    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        failed = instance.get_run_by_id(row["run_id"])
        assert failed.status == DagsterRunStatus.FAILURE
        statuses = sorted(r.status.value for r in instance.get_runs())
    assert statuses == [DagsterRunStatus.FAILURE.value, DagsterRunStatus.SUCCESS.value]


def test_a_run_waiting_for_a_live_holder_is_cheap_stoppable_and_bounded(tmp_path, media_dir):
    """The slot is held by this test process; runs wait for it without spinning, stop at
    once on SIGTERM and on SIGINT, and give up after CPW_SLOT_WAIT_TIMEOUT_S with one line."""
    home = tmp_path / "home"
    env = _env(home)
    key = _register(_variant(media_dir, "Held.wav", 1, 0.0), env)
    store = EventStore(home / "events", home / "cpw.duckdb")
    waiting = "transcript: waiting for one of 1 Whisper slot(s) on this machine, held by " \
              f"test holder (pid {os.getpid()}"
    with machine_slot(home / "slots", "asr", 1, label="test holder"):
        for stop in (signal.SIGTERM, signal.SIGINT):
            log = tmp_path / f"{stop.name}.log"
            run = _execute_logged(key, env, log)
            _wait_for_text(run, log, waiting)
            process = psutil.Process(run.pid)
            before = process.cpu_times()
            time.sleep(2)
            after = process.cpu_times()
            assert (after.user + after.system) - (before.user + before.system) < 0.2
            os.kill(run.pid, stop)
            run.wait(timeout=15)  # promptly: a hang fails here
            assert run.returncode != 0, log.read_text()[-3000:]

        log = tmp_path / "bounded.log"
        run = _execute_logged(key, {**env, "CPW_SLOT_WAIT_TIMEOUT_S": "2"}, log)
        assert run.wait(timeout=120) != 0
    line = re.search(r"no asr slot came free in .*", log.read_text()).group(0)
    assert f"held by test holder (pid {os.getpid()}, for " in line
    assert line.endswith("CPW_SLOT_WAIT_TIMEOUT_S sets how long a step waits.")

    runs = store.read("runs").sort("ts")
    assert runs["status"].to_list() == ["canceled", "canceled", "failed"]
    assert set(runs["asset"]) == {"transcript"}
    for message in runs["error_message"][:2]:
        assert message.startswith("transcript was interrupted (SIGINT or SIGTERM) while "
                                  "waiting for a Whisper slot held by test holder (pid ")
    assert runs["error_class"][2] == "SlotTimeoutError"
    assert runs["error_message"][2] == line
    assert store.read("input_errors").height == 0  # waiting too long is not bad input
    waits = store.read("stage_metrics").filter(pl.col("asset") == "transcript")
    assert waits["wait_seconds"].min() >= 2
    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        assert {r.status for r in instance.get_runs()} == {DagsterRunStatus.FAILURE}


def _fake_run(instance: DagsterInstance, pid: int, step: str | None,
              started: float | None = None) -> str:
    """A run record as the in-process executor leaves it: started, with its pid logged."""
    run = instance.add_run(DagsterRun(job_name="subtitle_job", run_id=str(uuid.uuid4()),
                                      status=DagsterRunStatus.STARTED,
                                      tags={"dagster/partition": f"title-{pid}"}))
    instance.report_dagster_event(DagsterEvent(
        event_type_value=DagsterEventType.ENGINE_EVENT.value, job_name=run.job_name,
        message=f"Executing steps in process (pid: {pid})",
        event_specific_data=EngineEventData.in_process(pid)), run.run_id, timestamp=started)
    for key in ["media", step] if step else []:
        instance.report_dagster_event(DagsterEvent(
            event_type_value=DagsterEventType.STEP_START.value, job_name=run.job_name,
            step_key=key, message=f"Started execution of step {key}."), run.run_id)
    instance.report_dagster_event(DagsterEvent(
        event_type_value=DagsterEventType.STEP_SUCCESS.value, job_name=run.job_name,
        step_key="media", message="done",
        event_specific_data=StepSuccessData(duration_ms=1.0)), run.run_id)
    return run.run_id


RECOVER = (
    "import sys\n"
    "from dagster import DagsterInstance\n"
    "from cpw_resources.orchestration.instance import recover_dead_runs\n"
    "from cpw_resources.store.events import EventStore\n"
    "with DagsterInstance.from_config(sys.argv[1]) as instance:\n"
    "    found = recover_dead_runs(instance, EventStore(sys.argv[2], sys.argv[3]))\n"
    "print(len(found))\n"
)


def test_dead_runs_are_recorded_once_and_live_ones_left_alone(tmp_path):
    home = tmp_path / "home"
    dagster_home = ensure_dagster_home(Settings(home=home))
    dead_child = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_child.wait()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            dead = _fake_run(instance, dead_child.pid, "transcript")
            dead_between_steps = _fake_run(instance, dead_child.pid, None)
            live = _fake_run(instance, sleeper.pid, "transcript")
            # The run started an hour ago; the live process with its pid is a newer one.
            reused_run = _fake_run(instance, sleeper.pid, "translation", time.time() - 3600)
        # Two recoverers at once (two next runs starting together) record each run once.
        recoverers = [subprocess.Popen(
            [sys.executable, "-c", RECOVER, str(dagster_home), str(home / "events"),
             str(home / "cpw.duckdb")], stdout=subprocess.PIPE, text=True) for _ in range(2)]
        found = sorted(int(p.communicate()[0]) for p in recoverers)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert found == [0, 3]
    runs = EventStore(home / "events", home / "cpw.duckdb").read("runs")
    by_run = {r["run_id"]: r for r in runs.iter_rows(named=True)}
    assert set(by_run) == {dead, dead_between_steps, reused_run}
    assert by_run[dead]["error_message"] == (
        f"process {dead_child.pid} was killed or died during transcript")
    assert by_run[dead]["asset"] == "transcript"
    assert by_run[dead_between_steps]["asset"] == "run"
    assert by_run[dead_between_steps]["error_message"] == (
        f"process {dead_child.pid} was killed or died")
    assert by_run[reused_run]["asset"] == "translation"
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.get_run_by_id(live).status == DagsterRunStatus.STARTED
        failed = instance.get_run_by_id(dead)
        assert failed.status == DagsterRunStatus.FAILURE
        failure = instance.all_logs(dead, of_type=DagsterEventType.RUN_FAILURE)[0]
        assert f"process {dead_child.pid} was killed or died" in failure.message
