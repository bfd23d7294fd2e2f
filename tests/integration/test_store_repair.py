"""A corrupt event store stops nothing: `cpw store check` / `cpw store repair` as a user runs
them, and a whole title (French sample, Whisper base, enhancement through the real OpenAI SDK
against a 127.0.0.1 server) run over an api_calls file, a schema file, a runs file and a
cpw.duckdb that are all broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from cpw_resources.store.events import STALE_TEMP_AGE_S, EventStore
from tests.conftest import SAMPLE, copy_to
from tests.fake_llm import serve
from tests.fake_service import fake_service

CPW = Path(sys.executable).parent / "cpw"


def _cpw(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPW_")}
    env |= {"CPW_HOME": str(home), "CPW_CONFIG": str(home / "absent.yaml")}
    return subprocess.run([str(CPW), "store", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def _damaged_store(home: Path) -> tuple[EventStore, dict[str, Path]]:
    """A store with one good row per table it touches and one problem of each kind."""
    store = EventStore(home / "events", home / "cpw.duckdb")
    store.ensure_views()
    call = store.append("api_calls", [{"service": "openai", "cost_usd": 0.5}], run_id="r",
                        title="t", asset="enhanced_translation")
    run = store.append("runs", [{"status": "success"}], run_id="r", title="t", asset="subtitles")
    bad = {"truncated": call.with_name("truncated.parquet"),
           "wrong_types": run.with_name("wrong-types.parquet"),
           "schema": store.events_dir / "degradations" / "_schema.parquet",
           "stale_tmp": run.with_name(f".{run.name}.1234.tmp")}
    bad["truncated"].write_bytes(call.read_bytes()[:100])
    pl.DataFrame({"status": [1], "cues": ["many"]}).write_parquet(bad["wrong_types"])
    bad["schema"].write_bytes(b"")
    bad["stale_tmp"].write_bytes(run.read_bytes()[:50])
    os.utime(bad["stale_tmp"], (time.time() - 2 * STALE_TEMP_AGE_S,) * 2)
    return store, bad


def test_check_lists_each_problem_and_repair_fixes_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    healthy = _cpw(home, "check")
    assert healthy.returncode == 0 and healthy.stdout == ""  # no store yet is no problem
    store, bad = _damaged_store(home)
    before = {p: p.read_bytes() for p in bad.values()}

    check = _cpw(home, "check")
    assert check.returncode == 1, check.stderr
    lines = check.stdout.splitlines()
    assert len(lines) == len(bad)
    for path in bad.values():
        assert sum(line.startswith(f"{path}: ") for line in lines) == 1, (path, lines)
    assert "cpw store repair" in check.stderr and "Traceback" not in check.stderr
    assert {p: p.read_bytes() for p in bad.values()} == before  # check changes nothing

    repair = _cpw(home, "repair")
    assert repair.returncode == 0, repair.stderr
    assert len(repair.stdout.splitlines()) == len(bad) and repair.stderr == ""
    for path in (bad["truncated"], bad["wrong_types"], bad["stale_tmp"]):
        kept = home / "quarantine" / path.relative_to(home)
        assert not path.exists() and kept.read_bytes() == before[path]
        assert f"moved to {kept}" in repair.stdout
    assert dict(pl.read_parquet_schema(bad["schema"])) == store.schema("degradations")

    again = _cpw(home, "check")
    assert again.returncode == 0 and again.stdout == "", again.stdout
    errors = store.read("input_errors")
    assert set(errors["asset"]) == {"store"} and errors.height == len(bad)
    with duckdb.connect(str(store.duckdb_path), read_only=True) as con:
        assert con.execute("select sum(cost_usd) from api_calls").fetchone() == (0.5,)
        assert con.execute("select status from runs").fetchall() == [("success",)]


def test_repair_beside_an_open_analyst_session_says_so_and_does_not_hang(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store, bad = _damaged_store(home)
    with duckdb.connect(str(store.duckdb_path)) as con:
        con.execute("drop view quality")
    with duckdb.connect(str(store.duckdb_path), read_only=True) as analyst:
        started = time.monotonic()
        repair = _cpw(home, "repair")
        assert time.monotonic() - started < 60
        assert repair.returncode == 1
        said = repair.stderr.strip().splitlines()
        assert len(said) == 1 and str(store.duckdb_path) in said[0]
        assert f"PID {os.getpid()}" in said[0] and "cpw store repair" in said[0]
        assert not bad["truncated"].exists()  # the files are repaired all the same
        # The open session reads the repaired files without reopening.
        assert analyst.execute("select sum(cost_usd) from api_calls").fetchone() == (0.5,)
    done = _cpw(home, "repair")
    assert done.returncode == 0 and "recreated the views" in done.stdout
    assert _cpw(home, "check").returncode == 0


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch):
    with fake_service() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdefghij")
        monkeypatch.setenv("CPW_ENHANCE_PROVIDER", "openai:gpt-4o-mini")
        monkeypatch.setenv("CPW_ENHANCE_ALL", "true")
        yield server


def test_a_title_runs_through_a_corrupt_store(run_title, media_dir, home, store, llm) -> None:
    """Before: every enhanced title failed on the api_calls file, every run at `media` on the
    schema file. Now the run quarantines each and finishes, enhanced and recorded."""
    serve(llm)
    store.ensure_views()
    old = store.append("api_calls", [{"service": "openai", "cost_usd": 0.01}], run_id="old",
                       title="other", asset="enhanced_translation")
    broken = {"call": old.with_name("broken-call.parquet"),
              "schema": store.events_dir / "runs" / "_schema.parquet",
              "run": old.parent.parent.parent / "runs" / old.parent.name / "broken-run.parquet"}
    broken["call"].write_text("not parquet at all")
    broken["schema"].write_bytes(b"PAR1")
    broken["run"].parent.mkdir(parents=True)
    broken["run"].write_bytes(b"")
    store.duckdb_path.write_text("not a database")

    run = run_title(copy_to(SAMPLE, media_dir), whisper_model="base")
    assert run.success
    enhanced = json.loads((run.dir / "enhanced.en.json").read_text())
    assert enhanced["enhancement"] == "enhanced" and llm.requests
    for path in broken.values():
        assert (home / "quarantine" / path.relative_to(home)).exists()
    assert not broken["call"].exists() and not broken["run"].exists()
    assert dict(pl.read_parquet_schema(broken["schema"])) == store.schema("runs")
    assert (home / "quarantine" / "cpw.duckdb").read_text() == "not a database"
    errors = store.read("input_errors")
    assert sorted(errors.filter(pl.col("asset") == "store")["path"]) == sorted(
        str(p) for p in [*broken.values(), store.duckdb_path])
    with duckdb.connect(str(store.duckdb_path), read_only=True) as con:
        assert con.execute("select status from runs").fetchall() == [("success",)]
        calls = con.execute("select count(*) from api_calls where title = ?",
                            [run.key]).fetchone()
    assert calls[0] == len(llm.requests)
