import logging
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from cpw_resources.store.events import STALE_TEMP_AGE_S, TABLES, EventStore, StoreError


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    return EventStore(tmp_path / "events", tmp_path / "cpw.duckdb")


def test_views_exist_before_any_event(store: EventStore) -> None:
    assert store.ensure_views()
    with duckdb.connect(str(store.duckdb_path), read_only=True) as con:
        for table in TABLES:
            assert con.execute(f"select count(*) from {table}").fetchone() == (0,)
            columns = {row[0] for row in con.execute(f"describe {table}").fetchall()}
            assert {"run_id", "title", "asset", "ts", "schema_version"} <= columns


def test_readonly_session_sees_rows_appended_by_other_processes(store: EventStore) -> None:
    store.ensure_views()
    with duckdb.connect(str(store.duckdb_path), read_only=True) as analyst:
        code = (
            "from pathlib import Path; from cpw_resources.store.events import EventStore; "
            f"s = EventStore(Path({str(store.events_dir)!r}), Path({str(store.duckdb_path)!r})); "
            "s.ensure_views(); "
            "[s.append('stage_metrics', [{'wall_seconds': i, 'status': 'success'}], "
            "run_id=f'r{i}', title='t', asset='audio') for i in range(5)]"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
        rows = analyst.execute("select count(*), sum(wall_seconds) from stage_metrics").fetchone()
        assert rows == (5, 10.0)


def test_append_writes_one_atomic_file_and_rejects_unknown_columns(store: EventStore) -> None:
    path = store.append("runs", [{"status": "success", "cues": 3}], run_id="r", title="t",
                        asset="subtitles")
    assert path is not None and path.suffix == ".parquet" and "date=" in path.parent.name
    assert not list(store.events_dir.rglob("*.tmp"))
    frame = store.read("runs")
    assert frame.height == 1 and frame["cues"][0] == 3 and frame["error_class"][0] is None
    with pytest.raises(KeyError, match="no column"):
        store.append("runs", [{"colour": "red"}], run_id="r", title="t", asset="x")
    with pytest.raises(KeyError, match="unknown event table"):
        store.append("nope", [{}], run_id="r", title="t", asset="x")
    assert store.read("runs").height == 1


def test_ensure_views_is_harmless_while_an_analyst_holds_the_database(store: EventStore) -> None:
    store.ensure_views()
    for stamp in store.duckdb_path.parent.glob(".cpw.duckdb.views-*"):
        stamp.unlink()  # force a refresh attempt
    with duckdb.connect(str(store.duckdb_path), read_only=True):
        code = (
            "from pathlib import Path; from cpw_resources.store.events import EventStore; "
            f"s = EventStore(Path({str(store.events_dir)!r}), Path({str(store.duckdb_path)!r})); "
            "print(s.ensure_views())"
        )
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                             text=True).stdout.strip()
    assert out == "False"


# --- corrupt files: quarantined, named, recorded; reads go on ------------------------------

def _corrupt(kind: str, beside: Path) -> Path:
    """A bad event file of ``kind`` next to the good file ``beside``."""
    bad = beside.with_name(f"zz-{kind}.parquet")
    good = beside.read_bytes()
    if kind == "zero_bytes":
        bad.write_bytes(b"")
    elif kind == "not_parquet":
        bad.write_text("id,cost_usd\n1,0.5\n" * 20)
    elif kind == "truncated":
        bad.write_bytes(good[: len(good) // 2])
    elif kind == "footer_flipped":
        bad.write_bytes(good[:-12] + bytes(b ^ 0xFF for b in good[-12:-4]) + good[-4:])
    elif kind == "page_flipped":
        bad.write_bytes(good[:8] + bytes(b ^ 0xFF for b in good[8:60]) + good[60:])
    elif kind == "wrong_types":
        pl.DataFrame({"title": ["t"], "cost_usd": ["lots"]}).write_parquet(bad)
    elif kind == "unknown_column":
        pl.DataFrame({"title": ["t"], "colour": ["red"]}).write_parquet(bad)
    return bad


CORRUPTIONS = ["zero_bytes", "not_parquet", "truncated", "footer_flipped", "page_flipped",
               "wrong_types", "unknown_column"]


def _one_call(store: EventStore) -> Path:
    return store.append("api_calls", [{"service": "openai", "cost_usd": 0.25}], run_id="r",
                        title="t", asset="enhanced_translation")


def _quarantined(store: EventStore, bad: Path) -> Path:
    return store.quarantine_dir / bad.relative_to(store.events_dir.parent)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_a_bad_event_file_is_quarantined_and_reads_go_on(
        store: EventStore, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    bad = _corrupt(kind, _one_call(store))
    original = bad.read_bytes()
    with caplog.at_level(logging.WARNING, logger="cpw_resources.store.events"):
        assert store.read("api_calls")["cost_usd"].to_list() == [0.25]
        assert store.spent("t") == (0.25, 0.25)
        assert store.ensure_views(force=True)
    moved = _quarantined(store, bad)
    assert not bad.exists() and moved.read_bytes() == original  # moved, never changed
    warnings = [r.getMessage() for r in caplog.records if str(bad) in r.getMessage()]
    assert len(warnings) == 1 and str(moved) in warnings[0] and "\n" not in warnings[0]
    errors = store.read("input_errors")
    assert errors.select("path", "error_class", "asset").rows() == [
        (str(bad), "CorruptEventFile", "store")]
    assert str(moved) in errors["message"][0]
    with duckdb.connect(str(store.duckdb_path), read_only=True) as con:
        assert con.execute("select sum(cost_usd) from api_calls").fetchone() == (0.25,)


@pytest.mark.parametrize("kind", ["wrong_types", "not_parquet", "truncated"])
def test_the_first_reader_to_fail_quarantines(store: EventStore, kind: str) -> None:
    """Each reader on its own gets past a file it chokes on: the budget check, a table read."""
    bad = _corrupt(kind, _one_call(store))
    assert store.spent("t") == (0.25, 0.25)
    assert not bad.exists()
    bad = _corrupt(kind, store.append("runs", [{"status": "success"}], run_id="r", title="t",
                                      asset="subtitles"))
    assert store.read("runs")["status"].to_list() == ["success"] and not bad.exists()


def test_fuzzed_event_files_never_stop_a_read(store: EventStore) -> None:
    good = store.append("api_calls", [{"service": "tmdb", "cost_usd": float(i)} for i in range(5)],
                        run_id="r", title="t", asset="glossary")
    data, rng = good.read_bytes(), random.Random(7)
    for i in range(25):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        good.with_name(f"fuzz-{i:02}.parquet").write_bytes(bytes(mutated))
    frame = store.read("api_calls")
    left = list(good.parent.glob("fuzz-*.parquet"))
    moved = list((store.quarantine_dir / "events" / "api_calls").rglob("fuzz-*.parquet"))
    assert len(left) + len(moved) == 25 and moved
    assert frame.height >= 5 and store.read("input_errors").height == len(moved)
    assert [f.path for f in store.check()] == [store.duckdb_path]  # no views yet, no bad file


def test_a_broken_link_named_like_an_event_file_is_moved_aside(store: EventStore) -> None:
    link = _one_call(store).with_name("gone.parquet")
    link.symlink_to(store.events_dir / "nowhere.parquet")
    assert store.spent("t") == (0.25, 0.25)
    moved = _quarantined(store, link)
    assert moved.is_symlink() and not link.is_symlink()
    assert "broken link" in store.read("input_errors")["message"][0]


@pytest.mark.parametrize("kind", ["zero_bytes", "not_parquet", "rows", "wrong_types"])
def test_a_broken_schema_file_is_set_aside_and_rewritten(store: EventStore, kind: str) -> None:
    store.ensure_tables()
    path = store.events_dir / "runs" / "_schema.parquet"
    if kind == "rows":  # rows in a schema file would be counted: keep them, aside
        pl.DataFrame({"status": ["success"]}).write_parquet(path)
    elif kind == "wrong_types":
        pl.DataFrame(schema={**store.schema("runs"), "cues": pl.String()}).write_parquet(path)
    else:
        path.write_bytes(b"" if kind == "zero_bytes" else b"PAR1 but not really")
    original = path.read_bytes()
    assert store.append("runs", [{"status": "failed"}], run_id="r", title="t", asset="media")
    assert store.read("runs")["status"].to_list() == ["failed"]
    assert dict(pl.read_parquet_schema(path)) == store.schema("runs")
    if kind == "wrong_types":  # an empty file with old columns is simply renewed
        assert not store.quarantine_dir.exists()
    else:
        assert _quarantined(store, path).read_bytes() == original
        assert store.read("input_errors")["path"].to_list() == [str(path)]


def test_a_schema_file_broken_again_is_kept_beside_the_first(store: EventStore) -> None:
    path = store.events_dir / "quality" / "_schema.parquet"
    for attempt in (b"first", b"second"):
        store.ensure_tables()
        path.write_bytes(attempt)
        store.ensure_tables()
    kept = sorted(p.read_bytes() for p in (store.quarantine_dir / "events" / "quality").iterdir())
    assert kept == [b"first", b"second"]


def test_stale_temp_files_are_never_read_and_only_old_ones_are_moved(store: EventStore) -> None:
    good = store.append("runs", [{"status": "success"}], run_id="r", title="t", asset="x")
    old = good.with_name(f".{good.name}.dead.tmp")
    young = good.with_name(f".{good.name}.live.tmp")
    for tmp in (old, young):
        tmp.write_bytes(good.read_bytes()[:40])
    os.utime(old, (time.time() - 2 * STALE_TEMP_AGE_S,) * 2)
    assert store.read("runs").height == 1
    assert [f.path for f in store.check()] == [old, store.duckdb_path]
    report = store.repair()
    assert not old.exists() and young.exists() and report.left == []
    assert _quarantined(store, old).exists()
    assert store.read("input_errors")["error_class"].to_list() == ["StaleTempFile"]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_check_changes_nothing_and_repair_fixes_everything_it_lists(store: EventStore) -> None:
    store.ensure_views()
    bad = _corrupt("truncated", _one_call(store))
    zero = _corrupt("zero_bytes", bad)
    (store.events_dir / "degradations" / "_schema.parquet").unlink()
    (store.events_dir / "quality" / "_schema.parquet").write_text("junk")
    with duckdb.connect(str(store.duckdb_path)) as con:
        con.execute("drop view runs")
    before = _tree(store.events_dir.parent)
    findings = store.check()
    assert _tree(store.events_dir.parent) == before
    assert {(f.path.name, f.remedy) for f in findings} == {
        (bad.name, "quarantine"), (zero.name, "quarantine"),
        ("_schema.parquet", "rewrite"), ("_schema.parquet", "quarantine, rewrite"),
        ("cpw.duckdb", "recreate views")}
    report = store.repair()
    assert report.left == [] and len(report.done) == len(findings)
    assert store.check() == []
    assert store.repair().done == []
    with duckdb.connect(str(store.duckdb_path), read_only=True) as con:
        assert con.execute("select count(*) from runs").fetchone() == (0,)


def test_a_broken_database_file_is_moved_aside_and_recreated(store: EventStore) -> None:
    store.ensure_views()
    store.duckdb_path.write_bytes(b"\0" * 4096)
    assert [f.remedy for f in store.check()] == ["quarantine, recreate views"]
    assert store.ensure_views(force=True)
    assert (store.quarantine_dir / "cpw.duckdb").read_bytes() == b"\0" * 4096
    with duckdb.connect(str(store.duckdb_path), read_only=True) as con:
        assert con.execute("select count(*) from input_errors").fetchone() == (1,)


def test_views_of_a_moved_home_are_found_and_recreated(tmp_path: Path) -> None:
    first = EventStore(tmp_path / "a" / "events", tmp_path / "a" / "cpw.duckdb")
    first.append("runs", [{"status": "success"}], run_id="r", title="t", asset="x")
    first.ensure_views()
    (tmp_path / "a").rename(tmp_path / "it's here")
    moved = EventStore(tmp_path / "it's here" / "events", tmp_path / "it's here" / "cpw.duckdb")
    assert {f.problem for f in moved.check()} == {f"view {t} reads files elsewhere"
                                                  for t in TABLES}
    assert moved.repair().left == [] and moved.check() == []
    with duckdb.connect(str(moved.duckdb_path), read_only=True) as con:
        assert con.execute("select count(*) from runs").fetchone() == (1,)


def test_a_file_that_cannot_be_moved_aside_is_one_clear_error(store: EventStore) -> None:
    bad = _corrupt("not_parquet", _one_call(store))
    store.quarantine_dir.write_text("a file where the quarantine folder should be")
    with pytest.raises(StoreError) as caught:
        store.read("api_calls")
    message = str(caught.value)
    assert str(bad) in message and "by hand" in message and "\n" not in message
    assert bad.exists()


def test_a_file_another_process_moved_first_is_not_an_error(store: EventStore) -> None:
    bad = _corrupt("not_parquet", _one_call(store))
    bad.unlink()  # what the other process's rename looks like from here
    assert store._quarantine(bad, "not a readable Parquet file") is None
    assert store.read("input_errors").is_empty()


def test_processes_racing_to_quarantine_one_file_all_go_on(store: EventStore) -> None:
    bad = _corrupt("not_parquet", _one_call(store))
    schema = store.events_dir / "api_calls" / "_schema.parquet"
    schema.write_bytes(b"PAR1 torn")
    start = time.time() + 3  # all processes past their imports, then at once
    code = (
        "import time; from pathlib import Path; from cpw_resources.store.events import "
        f"EventStore; s = EventStore(Path({str(store.events_dir)!r}), "
        f"Path({str(store.duckdb_path)!r})); time.sleep(max(0, {start} - time.time())); "
        "print(s.spent('t')[0])"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outs]
    assert [out.strip() for out, _ in outs] == ["0.25"] * 4
    kept = sorted(p.name for p in (store.quarantine_dir / "events").rglob("*.parquet*"))
    assert kept == sorted([bad.name, schema.name])  # each moved once, by one of them
    assert sorted(store.read("input_errors")["path"]) == sorted([str(bad), str(schema)])


def test_repair_that_cannot_write_says_where_in_one_line(store: EventStore) -> None:
    store.ensure_tables()
    table = store.events_dir / "quality"
    for child in table.iterdir():
        child.unlink()
    table.rmdir()
    table.write_text("a file where the quality folder should be")
    assert [f.problem for f in store.check() if f.path.parent == table] == ["missing"]
    report = store.repair()
    assert len(report.left) == 1 and str(table) in report.left[0]
    assert "\n" not in report.left[0] and "writable" in report.left[0]
