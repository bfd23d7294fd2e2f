"""The event store: append-only Parquet files per table, DuckDB views to query them.

Writers never lock anything: each ``append`` writes one small Parquet file under
``events/<table>/date=YYYY-MM-DD/<uuid>.parquet`` through a temporary name the glob does not
match, then renames it. ``cpw.duckdb`` only holds views over those globs, so an analyst's
read-only session never blocks a run, and sees files appended after it opened. Each table has
a typed, empty ``_schema.parquet`` so its view works before the first real row exists.

Error policy: one bad file must not stop every reader. A file that cannot be read as rows of
its table (truncated, empty, not Parquet, wrong column types) is quarantined: moved, never
deleted, to ``quarantine/`` beside ``events/`` under the same relative path, named in one
warning line and recorded in ``input_errors`` (``asset = 'store'``); the read then goes on.
A broken ``_schema.parquet`` is moved aside and rewritten, a broken ``cpw.duckdb`` (views only)
moved aside and recreated. :meth:`EventStore.check` lists every problem without changing
anything; :meth:`EventStore.repair` fixes them (``cpw store check`` / ``cpw store repair``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl

from cpw_resources.atomic import write_with
from cpw_resources.errors import CpwError

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 1

COMMON: dict[str, pl.DataType] = {
    "schema_version": pl.Int32(),
    "ts": pl.Datetime("us", "UTC"),
    "run_id": pl.String(),
    "title": pl.String(),
    "asset": pl.String(),
}

TABLES: dict[str, dict[str, pl.DataType]] = {
    "runs": {
        "status": pl.String(),
        "media_path": pl.String(),
        "audio_seconds": pl.Float64(),
        "wall_seconds": pl.Float64(),
        "source_language": pl.String(),
        "target_language": pl.String(),
        "cues": pl.Int64(),
        "error_class": pl.String(),
        "error_message": pl.String(),
    },
    "stage_metrics": {
        "status": pl.String(),
        "wall_seconds": pl.Float64(),
        "cpu_seconds": pl.Float64(),
        "peak_rss_mb": pl.Float64(),
        "input_bytes": pl.Int64(),
        "output_bytes": pl.Int64(),
        "audio_seconds": pl.Float64(),
        "error_class": pl.String(),
        "cache_hit": pl.Boolean(),
        "wait_seconds": pl.Float64(),
        "cpu_percent_mean": pl.Float64(),
        "cpu_percent_max": pl.Float64(),
        "read_bytes": pl.Int64(),
        "write_bytes": pl.Int64(),
        "gpu_util_mean": pl.Float64(),
        "gpu_memory_peak_mb": pl.Float64(),
        "gpu_seconds": pl.Float64(),
        "compute_cost_usd": pl.Float64(),
    },
    "budget_alerts": {
        "period": pl.String(),
        "period_start": pl.String(),
        "threshold": pl.Float64(),
        "spent_usd": pl.Float64(),
        "budget_usd": pl.Float64(),
        "compute_usd": pl.Float64(),
        "message": pl.String(),
    },
    "training_examples": {
        "duration_s": pl.Float64(),
        "loudness_dbfs": pl.Float64(),
        "peak_dbfs": pl.Float64(),
        "speech_ratio": pl.Float64(),
        "music_ratio": pl.Float64(),
        "silence_ratio": pl.Float64(),
        "snr_db": pl.Float64(),
        "highband_ratio": pl.Float64(),
        "spectral_flatness": pl.Float64(),
        "speech_rate": pl.Float64(),
        "language": pl.String(),
        "language_probability": pl.Float64(),
        "model": pl.String(),
        "device": pl.String(),
        "compute_type": pl.String(),
        "beam_size": pl.Int64(),
        "batch_size": pl.Int64(),
        "vad_filter": pl.Boolean(),
        "vad_threshold": pl.Float64(),
        "temperature_fallback": pl.Boolean(),
        "wall_seconds": pl.Float64(),
        "realtime_factor": pl.Float64(),
        "segments": pl.Int64(),
        "words": pl.Int64(),
        "avg_logprob": pl.Float64(),
        "avg_no_speech_prob": pl.Float64(),
        "avg_compression_ratio": pl.Float64(),
        "wer": pl.Float64(),
        # Labels measured against a human reference (benchmarks/bench_quality.py on the
        # evaluation corpus): source 'corpus', the film's condition, and the scores into
        # English; rows a title run writes have source 'pipeline' (or null, before it existed).
        "source": pl.String(),
        "condition": pl.String(),
        "target_language": pl.String(),
        "bleu": pl.Float64(),
        "chrf": pl.Float64(),
        # What the optimizer learns per: a corpus film (all its conditions), else the title.
        "recording": pl.String(),
    },
    # One row per transcript: what the optimizer chose, why, predicted against measured.
    "optimizer_decisions": {
        "config": pl.String(),
        "model": pl.String(),
        "beam_size": pl.Int64(),
        "vad_threshold": pl.Float64(),
        "temperature_fallback": pl.Boolean(),
        "source": pl.String(),
        "reason": pl.String(),
        "predicted_wer": pl.Float64(),
        "predicted_seconds_per_audio_s": pl.Float64(),
        "measured_wer": pl.Float64(),
        "measured_seconds_per_audio_s": pl.Float64(),
        "audio_seconds": pl.Float64(),
        "features_seconds": pl.Float64(),
        "explored_config": pl.String(),  # the neighbour a slice was also decoded with
        "explore_seconds": pl.Float64(),
    },
    # One row per optimizer training: the version, its scores, whether it became current.
    "optimizer_models": {
        "version": pl.String(),
        "rows": pl.Int64(),
        "recordings": pl.Int64(),
        "holdout_wer_mae": pl.Float64(),
        "current_holdout_wer_mae": pl.Float64(),
        "cv_wer_mae": pl.Float64(),
        "train_seconds": pl.Float64(),
        "became_current": pl.Boolean(),
        "reason": pl.String(),
    },
    "api_calls": {
        "service": pl.String(),
        "operation": pl.String(),
        "http_status": pl.Int64(),
        "attempts": pl.Int64(),
        "latency_ms": pl.Float64(),
        "breaker_state": pl.String(),
        "error_class": pl.String(),
        "outcome": pl.String(),
        # LLM calls: the model, token usage and dollar cost (pricing file); cache hits are
        # rows with outcome 'cache_hit', cost 0 and the number of segments served.
        "model": pl.String(),
        "input_tokens": pl.Int64(),
        "output_tokens": pl.Int64(),
        "cost_usd": pl.Float64(),
        "segments": pl.Int64(),
    },
    # Scores of a title's output: variant 'baseline' (translation) or 'enhanced'; metric
    # bleu, chrf (against NAME.en.srt when present), name_accuracy, glossary_adherence,
    # rule_compliance.
    "quality": {
        "variant": pl.String(),
        "metric": pl.String(),
        "value": pl.Float64(),
        "reference": pl.String(),
    },
    # One row per film and system of an evaluation run (benchmarks/bench_quality.py): system
    # 'project' (dagster job execute) or 'plain' (faster-whisper, segments straight to SRT),
    # the commit and full config, and the scores (one normaliser: bench_quality.normalise).
    "evaluations": {
        "evaluation_id": pl.String(),
        "commit": pl.String(),
        "film": pl.String(),
        "condition": pl.String(),
        "language": pl.String(),
        "system": pl.String(),
        "model": pl.String(),
        "beam_size": pl.Int64(),
        "config": pl.String(),
        "audio_seconds": pl.Float64(),
        "wall_seconds": pl.Float64(),
        "realtime_factor": pl.Float64(),
        "wer": pl.Float64(),
        "bleu": pl.Float64(),
        "chrf": pl.Float64(),
        "compliance": pl.Float64(),
        "cues": pl.Int64(),
        "invented_cues": pl.Int64(),
        "invented_in_nonspeech": pl.Int64(),
    },
    # The context learner: per title, the names and terms its glossary confirmed (sidecar,
    # TMDB) or rejected (sidecar `reject`, a suggestion the user spelled differently), with
    # where the title belongs (series, director, genre); suggestions are never recorded here.
    "context_terms": {
        "term": pl.String(),
        "translation": pl.String(),
        "kind": pl.String(),
        "source": pl.String(),
        "status": pl.String(),
        "note": pl.String(),
        "series": pl.String(),
        "season": pl.Int64(),
        "episode": pl.Int64(),
        "director": pl.String(),
        "genre": pl.String(),
    },
    # Near misses of glossary names written as the glossary spells them, in the transcript.
    "name_repairs": {
        "start": pl.Float64(),
        "heard": pl.String(),
        "name": pl.String(),
        "score": pl.Float64(),
    },
    "degradations": {
        "service": pl.String(),
        "kind": pl.String(),
        "message": pl.String(),
        "fallback": pl.String(),
    },
    # The local model server (`local:NAME`): each start (port, pid, seconds to load and answer)
    # and each failure to start (the log's last lines in message).
    "llm_servers": {
        "model": pl.String(),
        "action": pl.String(),
        "port": pl.Int64(),
        "pid": pl.Int64(),
        "seconds": pl.Float64(),
        "message": pl.String(),
    },
    "run_failures": {
        "step": pl.String(),
        "error_class": pl.String(),
        "message": pl.String(),
    },
    "input_errors": {
        "path": pl.String(),
        "error_class": pl.String(),
        "message": pl.String(),
    },
    # One row per inbox file the sensor acted on: registered, changed, unchanged (re-dropped
    # with the same content and sidecars), duplicate (a copy of a registered title), rejected
    # (moved to rejected/), reject_failed.
    # `title` is the key (empty for rejections); run_key is set when a run was requested.
    "inbox_events": {
        "path": pl.String(),
        "action": pl.String(),
        "error_class": pl.String(),
        "message": pl.String(),
        "content_id": pl.String(),
        "sidecar_id": pl.String(),
        "size_bytes": pl.Int64(),
        "run_key": pl.String(),
    },
}


# A temporary file older than this belongs to a writer that died (a write takes milliseconds).
STALE_TEMP_AGE_S = 3600.0
# What reading a glob of Parquet files raises when one of them is bad (polars can panic).
READ_ERRORS = (pl.exceptions.PolarsError, pl.exceptions.PanicException, duckdb.Error, OSError)


class StoreError(CpwError):
    """The event store cannot be read or repaired; the message names the file and what to do."""


@dataclass(frozen=True)
class Finding:
    """One problem of the store: the file, what is wrong with it, what repair does about it."""

    path: Path
    problem: str
    remedy: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem} (repair: {self.remedy})"


@dataclass
class Repair:
    """What :meth:`EventStore.repair` did (``done``) and could not do (``left``), one line each."""

    done: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


class EventStore:
    """Append events as Parquet under ``events_dir``; expose them as views in ``duckdb_path``."""

    def __init__(self, events_dir: Path, duckdb_path: Path) -> None:
        self.events_dir = Path(events_dir)
        self.duckdb_path = Path(duckdb_path)

    @property
    def quarantine_dir(self) -> Path:
        return self.events_dir.parent / "quarantine"

    def schema(self, table: str) -> dict[str, pl.DataType]:
        if table not in TABLES:
            raise KeyError(f"unknown event table {table!r}; known: {', '.join(TABLES)}")
        return {**COMMON, **TABLES[table]}

    def append(
        self,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        run_id: str,
        title: str,
        asset: str,
    ) -> Path | None:
        """Write ``rows`` as one Parquet file; unknown columns are an error, missing ones null."""
        if not rows:
            return None
        self._ensure_table(table)
        return self._write(table, rows, run_id=run_id, title=title, asset=asset)

    def _write(self, table: str, rows: Sequence[Mapping[str, Any]], *, run_id: str, title: str,
               asset: str) -> Path:
        schema = self.schema(table)
        now = dt.datetime.now(dt.UTC)
        common = {"schema_version": SCHEMA_VERSION, "ts": now, "run_id": run_id,
                  "title": title, "asset": asset}
        records = []
        for row in rows:
            unknown = set(row) - set(schema)
            if unknown:
                raise KeyError(f"event table {table!r} has no column(s) {sorted(unknown)}")
            records.append({**common, **row})
        frame = pl.DataFrame(records, schema=schema)
        dest = (self.events_dir / table / f"date={now:%Y-%m-%d}"
                / f"{now:%H%M%S%f}-{uuid.uuid4().hex}.parquet")
        write_with(dest, lambda tmp: frame.write_parquet(tmp))
        return dest

    def ensure_tables(self) -> None:
        """Create each table's typed empty file, or renew it when columns were added or it is
        broken (idempotent, safe to race), so every column is queryable before its first value."""
        for table in TABLES:
            self._ensure_table(table)

    def _schema_path(self, table: str) -> Path:
        return self.events_dir / table / "_schema.parquet"

    def _ensure_table(self, table: str) -> str | None:
        """Write ``table``'s schema file when it is missing, outdated or broken (a broken one
        is quarantined first); one line saying what was done, or None when it was fine."""
        path, schema = self._schema_path(table), self.schema(table)
        seen = _identity(path)
        problem, keep = _schema_problem(path, schema)
        if problem is None:
            return None
        moved = self._quarantine(path, problem, seen=seen) if keep else None
        empty = pl.DataFrame(schema=schema)
        write_with(path, lambda tmp: empty.write_parquet(tmp))
        return f"{path}: {problem}; rewrote it" + (f" (the old one is in {moved})" if moved else "")

    def glob(self, table: str) -> str:
        # Real rows live one level down (date=...); _schema.parquet sits at the table root.
        return str(self.events_dir / table / "**" / "*.parquet")

    def _view_sql(self, table: str) -> str:
        literal = self.glob(table).replace("'", "''")
        return (f"create or replace view {table} as select * from read_parquet("
                f"'{literal}', union_by_name = true)")

    def ensure_views(self, *, force: bool = False) -> bool:
        """Create or refresh the views; False when another process holds cpw.duckdb, or a
        table's files cannot be read even after quarantining the bad ones (warned).

        Views are globs, so once they exist they need no refresh for new files; they are
        made again when cpw.duckdb changed since (dbt, or damage). A reader holding the
        database open makes the write lock unavailable: that is fine, skip.
        """
        return self._create_views(force=force) is None

    def _create_views(self, *, force: bool) -> str | None:
        """None when the views are in place, else the one line saying why they are not."""
        self.ensure_tables()
        digest = hashlib.sha256("\n".join(self._view_sql(t) for t in TABLES).encode())
        stamp = self.duckdb_path.with_name(
            f".{self.duckdb_path.name}.views-{digest.hexdigest()[:16]}")
        if not force and _newer(stamp, self.duckdb_path):
            return None
        con, busy = self._connect()
        if con is None:
            return busy
        try:
            for table in TABLES:
                self._recovering(table, lambda t=table: con.execute(self._view_sql(t)))
        except StoreError as error:  # runs go on without the views; check names the file
            log.warning("event store: %s", error)
            return str(error)
        finally:
            con.close()
        stamp.touch()
        return None

    def _connect(self) -> tuple[duckdb.DuckDBPyConnection | None, str | None]:
        """A writable connection to cpw.duckdb, or (None, why) when another process holds it.
        A file DuckDB cannot open for another reason holds only views: it is moved aside."""
        try:
            return duckdb.connect(str(self.duckdb_path)), None
        except duckdb.Error as error:
            if _held_by(error) is not None:
                return None, self._busy_line(error)
            wal = self.duckdb_path.with_name(self.duckdb_path.name + ".wal")
            try:
                self._quarantine(self.duckdb_path, f"not a usable DuckDB database "
                                 f"({_first_line(error)})", error_class="CorruptDatabase")
                if wal.exists():
                    self._quarantine(wal, "write-ahead log of a database moved aside",
                                     error_class="CorruptDatabase")
            except StoreError as stuck:
                return None, str(stuck)
        try:
            return duckdb.connect(str(self.duckdb_path)), None
        except duckdb.Error as error:
            return None, f"{self.duckdb_path}: cannot be opened ({_first_line(error)})"

    def _busy_line(self, error: duckdb.Error) -> str:
        return (f"{self.duckdb_path}: open in another process (PID {_held_by(error)}), so "
                "its views were not recreated; close that session and run "
                "`cpw store repair` again (the event files themselves are repaired)")

    def spent(self, title: str) -> tuple[float, float]:
        """Dollars recorded in ``api_calls`` for ``title`` (all time) and for today (UTC)."""
        self.ensure_tables()
        today = dt.datetime.now(dt.UTC).date()

        def query() -> pl.DataFrame:
            return (pl.scan_parquet(self.glob("api_calls"), missing_columns="insert")
                    .select("title", "ts", pl.col("cost_usd").fill_null(0.0))
                    .select(pl.col("cost_usd").filter(pl.col("title") == title).sum().alias("t"),
                            pl.col("cost_usd").filter(pl.col("ts").dt.date() == today).sum()
                            .alias("d"))
                    .collect())

        frame = self._recovering("api_calls", query)
        return float(frame["t"][0] or 0.0), float(frame["d"][0] or 0.0)

    def read(self, table: str) -> pl.DataFrame:
        """All rows of a table, read straight from Parquet (no DuckDB lock needed)."""
        self.ensure_tables()
        return self._recovering(
            table, lambda: pl.read_parquet(self.glob(table), missing_columns="insert"))

    def _recovering(self, table: str, query: Callable[[], T]) -> T:
        """Run ``query`` over ``table``'s files; when it fails, quarantine the files that are
        bad and run it once more."""
        try:
            return query()
        except READ_ERRORS:
            self._ensure_table(table)
            for path, problem in self._bad_files(table):
                self._quarantine(path, problem)
        try:
            return query()
        except READ_ERRORS as error:
            raise StoreError(
                f"{self.events_dir / table}: the {table} events cannot be read "
                f"({_first_line(error)}); run `cpw store check`") from error

    def _bad_files(self, table: str) -> Iterator[tuple[Path, str]]:
        """(file, what is wrong) for each event file of ``table`` that is not rows of it."""
        schema, schema_path = self.schema(table), self._schema_path(table)
        for path in sorted((self.events_dir / table).rglob("*.parquet")):
            if path == schema_path:
                continue
            if not path.is_file():
                yield path, "not a file (a folder or a broken link) named like an event file"
            elif (problem := _data_problem(path, schema)) is not None:
                yield path, problem

    def _stale_temp_files(self) -> Iterator[tuple[Path, str]]:
        now = time.time()
        for path in sorted(self.events_dir.rglob(".*.tmp")):
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:  # its writer just finished or gave up
                continue
            if age > STALE_TEMP_AGE_S:
                yield path, f"temporary file of a writer that died ({age / 3600:.1f} h old)"

    def _quarantine(self, path: Path, problem: str, *, error_class: str = "CorruptEventFile",
                    seen: tuple[int, int] | None = None) -> Path | None:
        """Move ``path`` under :attr:`quarantine_dir` (same relative path; never over another
        file), warn and record it; None when another process moved it first, or replaced it
        since it was ``seen`` (a schema file another process just rewrote)."""
        if seen is not None and _identity(path) != seen:
            return None
        try:
            relative = path.relative_to(self.events_dir.parent)
        except ValueError:
            relative = Path(path.name)
        dest = self.quarantine_dir / relative
        if os.path.lexists(dest):
            dest = dest.with_name(f"{dest.name}.{time.time_ns()}-{uuid.uuid4().hex[:8]}")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, dest)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"{path}: {problem}; could not move it to {dest} "
                             f"({error.strerror or error}): move it out of {path.parent} by "
                             "hand") from error
        line = f"{path}: {problem}; moved to {dest}"
        log.warning("event store: %s", line)
        self._write("input_errors", [{"path": str(path), "error_class": error_class,
                                      "message": line}], run_id="", title="", asset="store")
        return dest

    def check(self) -> list[Finding]:
        """Every problem of the store, changing nothing: broken or missing schema files,
        event files that are not rows of their table, stale temporary files, and views
        that are missing, read elsewhere or sit in a broken database."""
        if not self.events_dir.exists():
            return []
        findings = []
        for table in TABLES:
            path = self._schema_path(table)
            problem, keep = _schema_problem(path, self.schema(table))
            if problem is not None:
                findings.append(Finding(path, problem,
                                        "quarantine, rewrite" if keep else "rewrite"))
            findings += [Finding(p, why, "quarantine") for p, why in self._bad_files(table)]
        findings += [Finding(p, why, "quarantine") for p, why in self._stale_temp_files()]
        return findings + self._view_findings()

    def _view_findings(self) -> list[Finding]:
        db = self.duckdb_path
        if not db.exists():
            return [Finding(db, "missing", "recreate views")]
        try:
            con = duckdb.connect(str(db), read_only=True)
        except duckdb.Error as error:
            if _held_by(error) is not None:
                return [Finding(db, f"open for writing in another process (PID "
                                f"{_held_by(error)}); views not checked", "none, try again")]
            return [Finding(db, f"not a usable DuckDB database ({_first_line(error)})",
                            "quarantine, recreate views")]
        with con:
            views = dict(con.execute("select view_name, sql from duckdb_views() "
                                     "where not internal").fetchall())
        findings = []
        for table in TABLES:
            literal = self.glob(table).replace("'", "''")
            if table not in views:
                findings.append(Finding(db, f"view {table} is missing", "recreate views"))
            elif literal not in views[table]:
                findings.append(Finding(db, f"view {table} reads files elsewhere",
                                        "recreate views"))
        return findings

    def repair(self) -> Repair:
        """Fix what :meth:`check` finds: quarantine bad and stale files, rewrite schema files,
        recreate the views; say what was done and what is left, one line each."""
        report = Repair()
        if not self.events_dir.exists():
            return report
        views_wrong = bool(self._view_findings())
        try:
            for table in TABLES:
                if (line := self._ensure_table(table)) is not None:
                    report.done.append(line)
                for path, problem in self._bad_files(table):
                    self._moved(report, path, problem, "CorruptEventFile")
            for path, problem in self._stale_temp_files():
                self._moved(report, path, problem, "StaleTempFile")
            if views_wrong:
                busy = self._create_views(force=True)
                if busy:
                    report.left.append(busy)
                else:
                    report.done.append(f"{self.duckdb_path}: recreated the views of "
                                       f"{len(TABLES)} tables")
        except StoreError as error:
            report.left.append(str(error))
        except OSError as error:  # e.g. a read-only CPW_HOME: say where, stop there
            report.left.append(f"{error.filename or self.events_dir}: {error.strerror or error}; "
                               "make it writable and run `cpw store repair` again")
        return report

    def _moved(self, report: Repair, path: Path, problem: str, error_class: str) -> None:
        dest = self._quarantine(path, problem, error_class=error_class)
        if dest is not None:
            report.done.append(f"{path}: {problem}; moved to {dest}")


def _identity(path: Path) -> tuple[int, int] | None:
    """(inode, mtime): an atomic rewrite of the file changes it."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _newer(stamp: Path, than: Path) -> bool:
    try:
        return stamp.stat().st_mtime_ns >= than.stat().st_mtime_ns
    except FileNotFoundError:
        return False


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__


def _held_by(error: duckdb.Error) -> str | None:
    """The PID holding cpw.duckdb's lock, '?' when not named, None when not a lock error."""
    if not re.search(r"could not set lock|conflicting lock", str(error), re.IGNORECASE):
        return None
    pid = re.search(r"\(PID (\d+)\)", str(error))
    return pid.group(1) if pid else "?"


def _read_file(path: Path) -> tuple[pl.DataFrame | None, str | None]:
    """(the file's rows, None), or (None, why it cannot be read)."""
    try:
        if path.stat().st_size == 0:
            return None, "empty file (0 bytes)"
        return pl.read_parquet(path), None
    except (Exception, pl.exceptions.PanicException) as error:  # any failure means unreadable
        return None, f"not a readable Parquet file ({_first_line(error)})"


def _data_problem(path: Path, schema: Mapping[str, pl.DataType]) -> str | None:
    """Why ``path`` is not rows of a table with ``schema``, or None when it is."""
    frame, problem = _read_file(path)
    if frame is None:
        return problem
    for name, dtype in frame.schema.items():
        if name not in schema:
            return f"column {name!r} is not in the table"
        if dtype != schema[name]:
            return f"column {name!r} is {dtype}, the table wants {schema[name]}"
    return None


def _schema_problem(path: Path, schema: Mapping[str, pl.DataType]) -> tuple[str | None, bool]:
    """(what is wrong with a table's schema file or None, whether it must be kept aside)."""
    if not path.exists():
        return "missing", False
    frame, problem = _read_file(path)
    if frame is None:
        return problem, True
    if frame.height:
        return f"holds {frame.height} row(s); a schema file must be empty", True
    if dict(frame.schema) != dict(schema):
        return "columns differ from the table's", False
    return None, False


def connect_readonly(duckdb_path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(duckdb_path), read_only=True)
