"""The event store: append-only Parquet files per table, DuckDB views to query them.

Writers never lock anything: each ``append`` writes one small Parquet file under
``events/<table>/date=YYYY-MM-DD/<uuid>.parquet`` through a temporary name the glob does not
match, then renames it. ``cpw.duckdb`` only holds views over those globs, so an analyst's
read-only session never blocks a run, and sees files appended after it opened. Each table has
a typed, empty ``_schema.parquet`` so its view works before the first real row exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from cpw_resources.atomic import write_with

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
    },
    "training_examples": {
        "duration_s": pl.Float64(),
        "loudness_dbfs": pl.Float64(),
        "peak_dbfs": pl.Float64(),
        "speech_ratio": pl.Float64(),
        "music_ratio": pl.Float64(),
        "silence_ratio": pl.Float64(),
        "snr_db": pl.Float64(),
        "language": pl.String(),
        "language_probability": pl.Float64(),
        "model": pl.String(),
        "device": pl.String(),
        "compute_type": pl.String(),
        "beam_size": pl.Int64(),
        "batch_size": pl.Int64(),
        "vad_filter": pl.Boolean(),
        "wall_seconds": pl.Float64(),
        "realtime_factor": pl.Float64(),
        "segments": pl.Int64(),
        "words": pl.Int64(),
        "avg_logprob": pl.Float64(),
        "avg_no_speech_prob": pl.Float64(),
        "avg_compression_ratio": pl.Float64(),
        "wer": pl.Float64(),
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
    "degradations": {
        "service": pl.String(),
        "kind": pl.String(),
        "message": pl.String(),
        "fallback": pl.String(),
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


class EventStore:
    """Append events as Parquet under ``events_dir``; expose them as views in ``duckdb_path``."""

    def __init__(self, events_dir: Path, duckdb_path: Path) -> None:
        self.events_dir = Path(events_dir)
        self.duckdb_path = Path(duckdb_path)

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
        """Create each table's typed empty file, or renew it when columns were added
        (idempotent, safe to race), so every column is queryable before its first value."""
        for table in TABLES:
            path = self.events_dir / table / "_schema.parquet"
            schema = self.schema(table)
            if not path.exists() or set(pl.read_parquet_schema(path)) != set(schema):
                empty = pl.DataFrame(schema=schema)
                write_with(path, lambda tmp, frame=empty: frame.write_parquet(tmp))

    def glob(self, table: str) -> str:
        # Real rows live one level down (date=...); _schema.parquet sits at the table root.
        return str(self.events_dir / table / "**" / "*.parquet")

    def ensure_views(self) -> bool:
        """Create or refresh the views; False when another process holds cpw.duckdb.

        Views are globs, so once they exist they need no refresh for new files. A reader
        holding the database open makes the write lock unavailable: that is fine, skip.
        """
        self.ensure_tables()
        statements = [
            f"create or replace view {table} as select * from read_parquet("
            f"'{self.glob(table)}', union_by_name = true)"
            for table in TABLES
        ]
        digest = hashlib.sha256("\n".join(statements).encode()).hexdigest()[:16]
        stamp = self.duckdb_path.with_name(f".{self.duckdb_path.name}.views-{digest}")
        if stamp.exists() and self.duckdb_path.exists():
            return True
        try:
            con = duckdb.connect(str(self.duckdb_path))
        except duckdb.Error:
            return False
        try:
            for statement in statements:
                con.execute(statement)
        finally:
            con.close()
        stamp.touch()
        return True

    def spent(self, title: str) -> tuple[float, float]:
        """Dollars recorded in ``api_calls`` for ``title`` (all time) and for today (UTC)."""
        self.ensure_tables()
        today = dt.datetime.now(dt.UTC).date()
        frame = (pl.scan_parquet(self.glob("api_calls"), missing_columns="insert")
                 .select("title", "ts", pl.col("cost_usd").fill_null(0.0))
                 .select(pl.col("cost_usd").filter(pl.col("title") == title).sum().alias("t"),
                         pl.col("cost_usd").filter(pl.col("ts").dt.date() == today).sum()
                         .alias("d"))
                 .collect())
        return float(frame["t"][0] or 0.0), float(frame["d"][0] or 0.0)

    def read(self, table: str) -> pl.DataFrame:
        """All rows of a table, read straight from Parquet (no DuckDB lock needed)."""
        self.ensure_tables()
        return pl.read_parquet(self.glob(table), missing_columns="insert")


def connect_readonly(duckdb_path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(duckdb_path), read_only=True)
