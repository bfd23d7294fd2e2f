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
    return {**env, "CPW_HOME": str(home), "CPW_WHISPER_MODEL": "tiny.en", **extra}


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
