import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from cpw_resources.store.events import TABLES, EventStore


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
