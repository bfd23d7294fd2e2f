"""The script interface: `cpw register` then `dagster job execute`, and `cpw run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pysubs2

from tests.conftest import JFK, SAMPLE, copy_to

BIN = Path(sys.executable).parent


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CPW_") and k != "DAGSTER_HOME"}
    # Whisper's translate task, as in the rest of the suite (tests/conftest.py): `auto` would
    # send French to the local model; tests/integration/test_local_llm.py covers that route.
    return {**env, "CPW_HOME": str(home), "CPW_WHISPER_MODEL": "tiny.en",
            "CPW_TRANSLATION_BACKEND": "whisper", **extra}


def _run(args: list[str], env: dict[str, str],
         cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, cwd=cwd)


def test_register_then_dagster_job_execute(tmp_path, media_dir):
    home = tmp_path / "home"
    media = copy_to(JFK, media_dir, "Ask Not, 1961.wav")
    registered = _run([str(BIN / "cpw"), "register", str(media)], _env(home))
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout == "ask_not_1961\n"
    assert (home / "dagster" / "dagster.yaml").is_file()
    again = _run([str(BIN / "cpw"), "register", str(media)], _env(home))
    assert again.stdout == registered.stdout

    executed = _run(
        [str(BIN / "dagster"), "job", "execute", "-m", "cpw_assets.definitions",
         "-j", "subtitle_job", "--tags", json.dumps({"dagster/partition": "ask_not_1961"})],
        _env(home, DAGSTER_HOME=str(home / "dagster")),
    )
    assert executed.returncode == 0, executed.stdout[-3000:] + executed.stderr[-3000:]
    srt = home / "titles" / "ask_not_1961" / "ask_not_1961.en.srt"
    assert len(pysubs2.load(str(srt))) >= 2

    outputs = _run([str(BIN / "cpw"), "outputs", "ask_not_1961"], _env(home))
    assert outputs.stdout.split() == [str(srt), str(srt.with_suffix(".vtt"))]


def test_register_is_cheap_and_dagster_learns_the_title_when_it_loads(tmp_path, media_dir):
    """`cpw register` imports no Dagster (the first half of every script call); the title is
    a partition as soon as Dagster loads the definitions against the instance."""
    home = tmp_path / "home"
    media = copy_to(JFK, media_dir)
    # `cpw env` (the README's first step) opens the instance once; in a new home the first
    # registration would create Dagster's storage itself.
    assert _run([str(BIN / "cpw"), "env"], _env(home)).returncode == 0
    code = ("import sys; from cpw_assets.cli import main; rc = main(['register', sys.argv[1]]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster')); "
            "sys.exit(rc)")
    done = _run([sys.executable, "-c", code, str(media)], _env(home))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["jfk", "[]"]
    env = _env(home, DAGSTER_HOME=str(home / "dagster"))
    listed = _run([sys.executable, "-c",
                   "import cpw_assets.definitions; from dagster import DagsterInstance; "
                   "print(DagsterInstance.get().get_dynamic_partitions('titles'))"], env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert listed.stdout.strip().splitlines()[-1] == "['jfk']"


def test_cpw_run_prints_paths_and_fails_cleanly(tmp_path, media_dir):
    home = tmp_path / "home"
    good = copy_to(JFK, media_dir)
    done = _run([str(BIN / "cpw"), "run", str(good)], _env(home))
    assert done.returncode == 0, done.stderr[-3000:]
    paths = [Path(p) for p in done.stdout.split()]
    assert [p.name for p in paths] == ["jfk.en.srt", "jfk.en.vtt"] and all(p.is_file()
                                                                          for p in paths)
    bad = media_dir / "notes.mkv"
    bad.write_text("this is not a film\n")
    failed = _run([str(BIN / "cpw"), "run", str(bad)], _env(home))
    assert failed.returncode == 1 and failed.stdout == ""
    assert "notes.mkv" in failed.stderr and "audio failed" in failed.stderr

    missing = _run([str(BIN / "cpw"), "register", str(media_dir / "gone.mkv")], _env(home))
    assert missing.returncode == 2 and "gone.mkv: no such file" in missing.stderr


def test_dagster_job_execute_with_a_run_config_file(tmp_path, media_dir):
    """`--config run.yaml` tunes one run; what the file leaves out keeps its default."""
    home = tmp_path / "home"
    env = _env(home, CPW_WHISPER_MODEL="base")
    media = copy_to(SAMPLE, media_dir)
    key = _run([str(BIN / "cpw"), "register", str(media)], env).stdout.strip()
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text("ops:\n"
                        "  transcript:\n    config:\n      beam_size: 2\n"
                        "  subtitles:\n    config:\n      bilingual: true\n")
    executed = _run(
        [str(BIN / "dagster"), "job", "execute", "-m", "cpw_assets.definitions",
         "-j", "subtitle_job", "--tags", json.dumps({"dagster/partition": key}),
         "--config", str(run_yaml)],
        {**env, "DAGSTER_HOME": str(home / "dagster")},
    )
    assert executed.returncode == 0, executed.stdout[-3000:] + executed.stderr[-3000:]
    title = home / "titles" / key
    config = json.loads((title / "transcript.json").read_text())["config"]
    assert config["beam_size"] == 2 and config["model"] == "base"  # the file, then the env
    assert len(pysubs2.load(str(title / f"{key}.fr-en.srt"))) >= 2  # bilingual from the file


def test_dagster_job_execute_without_dagster_home_says_what_to_set(tmp_path, media_dir):
    home = tmp_path / "home"
    media = copy_to(JFK, media_dir)
    key = _run([str(BIN / "cpw"), "register", str(media)], _env(home)).stdout.strip()
    executed = _run(
        [str(BIN / "dagster"), "job", "execute", "-m", "cpw_assets.definitions",
         "-j", "subtitle_job", "--tags", json.dumps({"dagster/partition": key})],
        _env(home), cwd=tmp_path,
    )
    assert executed.returncode != 0
    last = executed.stderr.strip().splitlines()[-1]
    assert last.startswith("cpw: DAGSTER_HOME is not set") and "cpw env" in last
    assert f"DAGSTER_HOME={home / 'dagster'}" in last
    assert "Traceback" not in executed.stderr


def test_cpw_run_flags_status_list_and_quiet_logs(tmp_path, media_dir):
    """`cpw run` with flags and a run config: the flags set the run's settings, the run config
    its ops; stderr has the stages' lines, not Dagster's DEBUG bookkeeping (-v brings it);
    `cpw status` and `cpw list` say where each title stands."""
    home = tmp_path / "home"
    env = _env(home)
    env.pop("CPW_WHISPER_MODEL")
    media = copy_to(JFK, media_dir, "Ask Not.wav")
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text("ops:\n  transcript:\n    config:\n      beam_size: 2\n")
    done = _run([str(BIN / "cpw"), "run", str(media), "--model", "tiny.en", "--language", "en",
                 "--bilingual", "--config", str(run_yaml)], env)
    assert done.returncode == 0, done.stderr[-3000:]
    transcript = json.loads((home / "titles" / "ask_not" / "transcript.json").read_text())
    assert transcript["config"]["model"] == "tiny.en" and transcript["config"]["beam_size"] == 2
    assert "DEBUG" not in done.stderr and "STEP_START" not in done.stderr
    assert "cpw: ask_not: transcript: 100%" in done.stderr
    assert "ask_not: subtitles success" in done.stderr
    # English speech: no bilingual file (it would say everything twice).
    assert sorted(Path(p).name for p in done.stdout.split()) == [
        "ask_not.en.srt", "ask_not.en.vtt"]

    verbose = _run([str(BIN / "cpw"), "run", str(media), "--model", "tiny.en", "-v"], env)
    assert verbose.returncode == 0 and "STEP_START" in verbose.stderr

    status = _run([str(BIN / "cpw"), "status", "ask_not"], env)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].startswith("ask_not  (") and "Ask Not.wav" in lines[0]
    states = {ln.split()[0]: ln.split()[1] for ln in lines[1:] if ln.startswith("  ")
              and not ln.strip().startswith(("cost", "/"))}
    # The -v run changed the beam (no --config): audio reused, transcript made again.
    assert states["audio"] == "cached" and states["transcript"] == "done"
    assert "  cost so far: $0.0000" in lines
    listed = _run([str(BIN / "cpw"), "list"], env)
    assert listed.stdout.startswith("ask_not  ") and "success" in listed.stdout

    bad = _run([str(BIN / "cpw"), "run", str(media)], {**env, "CPW_BEAM_SIZE": "0"})
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and "CPW_BEAM_SIZE" in bad.stderr
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("ops:\n  transcript:\n    config:\n      beam_size: lots\n")
    refused = _run([str(BIN / "cpw"), "run", str(media), "--config", str(bad_yaml)], env)
    assert refused.returncode == 2 and refused.stderr.startswith("cpw: error: --config")
    assert refused.stderr.strip().count("\n") == 0


def test_progress_draws_one_bar_per_stage_on_a_terminal() -> None:
    import io
    import logging

    from cpw_resources.orchestration.console import ConsoleHandler

    def record(message: str, level: int = logging.INFO) -> logging.LogRecord:
        rec = logging.LogRecord("cpw", level, "", 0, message, None, None)
        rec.dagster_meta = {"orig_message": message, "dagster_event": None,
                            "job_tags": {"dagster/partition": "film"}}
        return rec

    out = io.StringIO()
    handler = ConsoleHandler(out, tty=True)
    for pct in (10, 50, 100):
        handler.emit(record(f"transcript: {pct}% ({pct / 10:.1f} of 10.0 s of audio)"))
    handler.emit(record("subtitles success in 0.01 s"))
    text = out.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 2  # one bar, ended at 100 %
    assert "film: transcript [" in text and "#" * 24 + "] 100%" in text
    piped = io.StringIO()
    ConsoleHandler(piped, tty=False).emit(record("transcript: 50% (5.0 of 10.0 s of audio)"))
    assert piped.getvalue() == "cpw: film: transcript: 50% (5.0 of 10.0 s of audio)\n"


_LAUNCH = """mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId status } } ... on PythonError { message } } }"""
_RUNS = "{ runsOrError { ... on Runs { results { runId status } } } }"
_FAILED = """{ assetOrError(assetKey: {path: ["subtitles"]}) { ... on Asset { definition {
  assetPartitionStatuses { ... on DefaultPartitionStatuses { failedPartitions } } } } } }"""


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    """The UI's own API. A launch that fails answers HTTP 500 with its error as JSON."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", json.dumps({"query": query,
                                                         "variables": variables or {}}).encode(),
        {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return json.loads(reply.read())["data"]
    except urllib.error.HTTPError as error:
        return json.loads(error.read())["data"]


def test_dg_launch_and_dg_dev(tmp_path, media_dir):
    """Dagster's newer CLI: `dg launch` runs a registered title like `dagster job execute`;
    `dg dev` serves the UI for workspace.yaml on 127.0.0.1, whose launches (the same GraphQL
    call as the launchpad's button) refuse a language no backend can make before any run
    exists, and queue one that can."""
    import signal
    import socket
    import time
    import urllib.request

    home = tmp_path / "home"
    env = _env(home, DAGSTER_HOME=str(home / "dagster"))
    media = copy_to(JFK, media_dir, "Ask Not, 1961.wav")
    key = _run([str(BIN / "cpw"), "register", str(media)], env).stdout.strip()
    launched = _run([str(BIN / "dg"), "launch", "--job", "subtitle_job", "--partition", key,
                     "-m", "cpw_assets.definitions"], env)
    assert launched.returncode == 0, launched.stdout[-2000:] + launched.stderr[-2000:]
    assert (home / "titles" / key / f"{key}.en.srt").is_file()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(BIN / "dg"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        env={**env, "CPW_TARGET_LANGUAGES": "en,de"}, cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline, info = time.time() + 180, None
        while time.time() < deadline and info is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info",
                                            timeout=5) as reply:
                    info = json.loads(reply.read())
            except OSError:
                time.sleep(2)
        assert info is not None and "dagster_webserver_version" in info

        params = {"selector": {"repositoryLocationName": "cpw_assets.definitions",
                               "repositoryName": "__repository__", "pipelineName": "subtitle_job"},
                  "executionMetadata": {"tags": [{"key": "dagster/partition", "value": key}]},
                  "runConfigData": {}}
        before = _graphql(port, _RUNS)["runsOrError"]["results"]
        refused = _graphql(port, _LAUNCH, {"p": params})["launchPipelineExecution"]
        assert refused["__typename"] == "PythonError", refused
        assert f"{key}: cannot subtitle in 'de'" in refused["message"]
        assert "CPW_TRANSLATION_BACKEND=llm" in refused["message"]
        assert _graphql(port, _RUNS)["runsOrError"]["results"] == before   # no run was made
        statuses = _graphql(port, _FAILED)["assetOrError"]["definition"]["assetPartitionStatuses"]
        assert key not in statuses["failedPartitions"]
        # The run's own config wins over the settings: English alone is queued.
        params["runConfigData"] = {"ops": {"translation": {"config": {"target_languages": ["en"]}}}}
        queued = _graphql(port, _LAUNCH, {"p": params})["launchPipelineExecution"]
        assert queued["__typename"] == "LaunchRunSuccess", queued
        assert queued["run"]["status"] in ("QUEUED", "STARTING", "STARTED")
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
