"""Hostile surroundings get one line naming the file or setting and what to do, and a record.

Full disks are real: a 256 KiB tmpfs mounted where the files go (needs root with
CAP_SYS_ADMIN, else skipped), and, everywhere, ``RLIMIT_FSIZE`` in a subprocess, which makes
the kernel refuse a write with EFBIG (not ENOSPC: the same path through the code, a different
errno). Read-only homes are a read-only bind mount for root (root ignores permissions) and
``chmod -R a-w`` for anyone else; either way the ``cpw`` commands run as real subprocesses.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest

from cpw_resources.atomic import write_bytes, write_with
from cpw_resources.errors import StorageError
from cpw_resources.store.events import EventStore
from cpw_resources.store.titles import TitleRegistry
from tests.conftest import JFK, copy_to

BIN = Path(sys.executable).parent
ROOT = os.geteuid() == 0


def _mount(*args: str) -> bool:
    done = subprocess.run(["mount", *args], capture_output=True, timeout=30)
    return done.returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], capture_output=True, timeout=30)


@contextmanager
def small_disk(folder: Path, size: str = "256k") -> Iterator[Path]:
    """``folder`` on a real tmpfs of ``size``: writes past it fail with ENOSPC."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (ROOT and shutil.which("mount") and _mount("-t", "tmpfs", "-o", f"size={size}",
                                                      "tmpfs", str(folder))):
        pytest.skip("mounting a tmpfs needs root with CAP_SYS_ADMIN; the RLIMIT_FSIZE test "
                    "covers the same path with EFBIG")
    try:
        yield folder
    finally:
        _umount(folder)


@contextmanager
def read_only(folder: Path) -> Iterator[str]:
    """``folder`` read-only for the ``cpw`` subprocesses; yields how it was done."""
    if ROOT:
        if not (_mount("--bind", str(folder), str(folder))):
            pytest.skip("a read-only bind mount needs CAP_SYS_ADMIN (root ignores chmod)")
        if not _mount("-o", "remount,bind,ro", str(folder)):
            _umount(folder)
            pytest.skip("remounting read-only needs CAP_SYS_ADMIN (root ignores chmod)")
        try:
            yield "read-only bind mount"
        finally:
            _umount(folder)
        return
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
    for path in modes:
        path.chmod(modes[path] & ~0o222)
    try:
        yield "chmod -R a-w"
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def _cpw(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CPW_")
            and k != "DAGSTER_HOME"}
    return subprocess.run([str(BIN / "cpw"), *args], capture_output=True, text=True,
                          timeout=300, env={**base, "CPW_HOME": str(home),
                                            "CPW_TRANSLATION_BACKEND": "whisper", **env})


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# --- full disk --------------------------------------------------------------------------------


def test_full_disk_gives_one_line_for_every_writer_and_leaves_nothing(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        old = write_bytes(disk / "kept.json", b'{"old": true}')
        with pytest.raises(StorageError, match="cannot write it: no space left on the device; "
                                               "free space on the disk that holds") as info:
            write_bytes(old, b"x" * 300_000)
        assert info.value.path == old and old.read_bytes() == b'{"old": true}'

        store = EventStore(disk / "events", disk / "cpw.duckdb")
        rows = [{"path": os.urandom(100).hex(), "message": str(i)} for i in range(9999)]
        with pytest.raises(StorageError, match=r"input_errors/.*\.parquet: cannot write it: no "
                                               r"space left"):  # Polars: '(os error 28)'
            store.append("input_errors", rows, run_id="r", title="t", asset="a")

        with pytest.raises(StorageError, match="no space left"):
            write_with(disk / "t.srt", lambda tmp: tmp.write_text("1\n" * 200_000))
        assert _temps(disk) == [] and not (disk / "t.srt").exists()


def test_a_full_title_folder_fails_the_stage_in_one_line_and_is_recorded(
        run_title, media_dir, home, store) -> None:
    media = copy_to(JFK, media_dir)  # audio.wav: 352 KB, more than the disk holds
    with small_disk(home / "titles", "256k"):
        run = run_title(media, only=["media", "audio"])
        assert not run.success
        [failure] = [e for e in run.result.all_events if e.is_step_failure]
        message = failure.event_specific_data.error.message
        assert "audio.wav: cannot write it: no space left on the device" in message
        assert _temps(run.dir) == [] and not (run.dir / "audio.wav").exists()
    errors = store.read("input_errors")
    assert errors["error_class"].to_list() == ["StorageError"]
    assert errors["path"][0] == str(run.dir / "audio.wav")
    assert store.read("runs")["status"].to_list() == ["failed"]


_FSIZE_SCRIPT = """
import os, resource, sys
from pathlib import Path
from cpw_resources.atomic import write_bytes
from cpw_resources.errors import StorageError
from cpw_resources.store.events import EventStore
from cpw_resources.store.titles import TitleRegistry
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
folder = Path(sys.argv[1])
store = EventStore(folder / "events", folder / "cpw.duckdb")
store.append("input_errors", [{"path": "small", "message": "fits"}], run_id="", title="",
             asset="t")
for write in (lambda: write_bytes(folder / "audio.wav", b"x" * 100_000),
              lambda: store.append("input_errors", [{"path": os.urandom(50).hex()}
                                   for i in range(20000)], run_id="", title="", asset="t")):
    try:
        write()
    except StorageError as error:
        print(error)
"""


def test_file_size_limit_gives_one_line_naming_the_file(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _FSIZE_SCRIPT, str(tmp_path)],
                          capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    wav, parquet = done.stdout.strip().splitlines()
    assert wav.startswith(f"{tmp_path / 'audio.wav'}: cannot write it: file too large")
    assert "ulimit -f" in wav
    assert "/input_errors/" in parquet and ".parquet: cannot write it: file too large" in parquet
    assert _temps(tmp_path) == [] and not (tmp_path / "audio.wav").exists()
    rows = EventStore(tmp_path / "events", tmp_path / "cpw.duckdb").read("input_errors")
    assert rows["message"].to_list() == ["fits"]  # what fitted was kept, nothing half-written
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] != 65536  # only the child was limited


# --- read-only homes ----------------------------------------------------------------------------


def test_read_only_cpw_home_is_one_line_for_register_run_and_env(tmp_path: Path,
                                                                media_dir: Path) -> None:
    home = tmp_path / "home"
    TitleRegistry(home / "titles").register(copy_to(JFK, media_dir))  # a home in use
    other = copy_to(JFK, media_dir, "other.wav")
    with read_only(home) as how:
        for args in (["register", str(other)], ["run", str(other)], ["env"]):
            done = _cpw(*args, home=home)
            assert done.returncode == 2, (how, args, done.stderr[-2000:])
            line = _one_line(done.stderr)
            assert line == (f"cpw: error: {home}: CPW_HOME names this folder but it cannot be "
                            f"written ({'read-only file system' if ROOT else 'permission denied'}"
                            f"); make it writable, or set CPW_HOME to a folder you can write"), how


def test_read_only_dagster_home_is_one_line_and_recorded(tmp_path: Path,
                                                         media_dir: Path) -> None:
    home, dagster_home = tmp_path / "home", tmp_path / "dagster"
    dagster_home.mkdir()
    media = copy_to(JFK, media_dir)
    with read_only(dagster_home):
        done = _cpw("register", str(media), home=home, DAGSTER_HOME=str(dagster_home))
        assert done.returncode == 2
        line = _one_line(done.stderr)
        assert line.startswith(f"cpw: error: {dagster_home}: DAGSTER_HOME names this folder")
    # CPW_HOME can be written, so the error is recorded there like other input errors.
    errors = EventStore(home / "events", home / "cpw.duckdb").read("input_errors").to_dicts()
    assert [(e["path"], e["error_class"], e["asset"]) for e in errors] == [
        (str(dagster_home), "StorageError", "cpw register")]


# --- names and sidecars -------------------------------------------------------------------------


def test_cpw_register_refuses_a_name_too_long_and_records_it(tmp_path: Path,
                                                            media_dir: Path) -> None:
    home = tmp_path / "home"
    media = copy_to(JFK, media_dir, "ज" * 82 + ".wav")  # 82 letters, 250 bytes
    done = _cpw("register", str(media), home=home)
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert line.startswith(f"cpw: error: {media}: file name too long: NAME.glossary.tsv")
    assert "rename the file to at most 246 bytes" in line
    errors = EventStore(home / "events", home / "cpw.duckdb").read("input_errors")
    assert errors["path"].to_list() == [str(media)]
    assert not (home / "titles").exists() or not list((home / "titles").glob("*/title.json"))


@pytest.mark.parametrize(
    ("sidecar", "problem"),
    [
        ({"language": "klingon"}, "field 'language': unknown language 'klingon'"),
        ({"year": {"a": 1}}, "field 'year': Input should be a valid integer"),
        ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ],
)
def test_a_bad_sidecar_json_fails_the_title_in_one_line_naming_file_and_field(
        run_title, media_dir, store, sidecar, problem) -> None:
    media = copy_to(JFK, media_dir, "Sholay.wav")
    path = media_dir / "Sholay.json"
    path.write_text(sidecar if isinstance(sidecar, str) else json.dumps(sidecar))
    run = run_title(media, only=["transcript"])  # reads the sidecar's language first
    assert not run.success
    [failure] = [e for e in run.result.all_events if e.is_step_failure]
    first = failure.event_specific_data.error.message.strip().splitlines()[0]
    assert first.startswith(f"dagster._core.definitions.events.Failure: {path}: sidecar")
    assert problem in first
    errors = store.read("input_errors").to_dicts()
    assert [(e["path"], e["error_class"], e["asset"]) for e in errors] == [
        (str(path), "MediaError", "transcript")]


def test_a_50_mb_glossary_is_refused_at_glossary_and_recorded(run_title, media_dir,
                                                               store) -> None:
    media = copy_to(JFK, media_dir, "Ask Not.wav")
    glossary = media_dir / "Ask Not.glossary.tsv"
    with open(glossary, "wb") as out:
        out.write(b"term\ttranslation\n")
        out.truncate(50 << 20)  # sparse: 50 MB that cost no disk
    run = run_title(media)
    assert not run.success
    [failure] = [e for e in run.result.all_events if e.is_step_failure]
    assert failure.step_key == "glossary"
    message = failure.event_specific_data.error.message
    assert f"{glossary}: sidecar is 52,428,800 bytes, over the limit of 1,048,576" in message
    errors = store.read("input_errors")
    assert errors["path"].to_list() == [str(glossary)]
    stages = store.read("stage_metrics").filter(pl.col("asset") == "glossary")
    assert stages["status"].to_list() == ["failed"]
