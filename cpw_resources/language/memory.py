"""The context learner's memory: the names and terms finished titles confirmed, and what a new
title can take from it.

Every title's ``glossary`` records, in the ``context_terms`` event table, the terms its user
and TMDB confirmed (sidecar JSON characters, glossary TSV, TMDB cast), the ones the user
rejected (the sidecar's ``reject`` list) or corrected (a sidecar spelling that differs a little
from a suggestion: the suggestion is recorded as rejected, the user's spelling as confirmed),
each with the title's series / season / episode, director and genre; ``enhanced_translation``
records the suggested names an LLM wrote in lines that passed its name checks (source
``enhancement``). A suggestion is otherwise never recorded as confirmed by the title it was
given to.

:func:`build_memory` keeps, per title, its latest glossary's rows, and only for titles that
finished (a ``runs`` row with status ``success``): the ``context_memory`` asset writes that as
``$CPW_HOME/context/memory.parquet``. :func:`suggest` ranks the memory for a new title: terms of
the same series first, then the same director, then a shared genre; within a level by how
often and how recently they were confirmed (each confirmation weighs
``0.5 ** (age_days / HALF_LIFE_DAYS)``, the age counted back from the memory's newest row). A
term whose latest word in that context is a rejection is not suggested; nor is one the user
already wrote (or wrote differently); of two spellings of one name the better-scored one is
kept.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from cpw_resources.atomic import write_with
from cpw_resources.language.matching import near_name

#: Levels of context, best first, and how much one confirmation at that level weighs.
LEVELS = ("series", "director", "genre")
LEVEL_WEIGHT = {"series": 4.0, "director": 2.0, "genre": 1.0}
#: Age, in days, at which a confirmation counts half.
HALF_LIFE_DAYS = 180.0
#: Most suggestions one title gets (they become Whisper hotwords and LLM prompt names).
MAX_SUGGESTIONS = 60
#: Columns of memory.parquet (one row per title and term it confirmed or rejected).
MEMORY_SCHEMA: dict[str, pl.DataType] = {
    "term": pl.String(), "translation": pl.String(), "kind": pl.String(),
    "source": pl.String(), "status": pl.String(), "note": pl.String(), "title": pl.String(),
    "series": pl.String(), "season": pl.Int64(), "episode": pl.Int64(),
    "director": pl.String(), "genre": pl.String(), "ts": pl.Datetime("us", "UTC"),
}
#: Kinds of term that are names (hotwords, fuzzy spelling); others are matched whole.
NAME_KINDS = ("character", "actor", "term")


@dataclass(frozen=True)
class TitleContext:
    """Where a title belongs: its series (and episode), director and genres."""

    series: str | None = None
    season: int | None = None
    episode: int | None = None
    director: str | None = None
    genres: tuple[str, ...] = ()

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> TitleContext:
        genre = metadata.get("genre") or ()
        genres = [genre] if isinstance(genre, str) else list(genre)
        return cls(
            series=_clean(metadata.get("series")), season=_int(metadata.get("season")),
            episode=_int(metadata.get("episode")), director=_clean(metadata.get("director")),
            genres=tuple(dict.fromkeys(g for g in (_clean(x) for x in genres) if g)),
        )

    def describe(self) -> str:
        parts = []
        if self.series:
            episode = (f" S{self.season or 0:02d}E{self.episode:02d}"
                       if self.episode is not None else "")
            parts.append(f"series {self.series!r}{episode}")
        if self.director:
            parts.append(f"director {self.director!r}")
        if self.genres:
            parts.append("genre " + "/".join(self.genres))
        return ", ".join(parts) or "no series, director or genre"


def _clean(value: Any) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and str(value).strip() else None
    except ValueError:
        return None


def _norm(value: str | None) -> str:
    return (value or "").casefold()


def context_rows(context: TitleContext, confirmed: Iterable[Mapping[str, Any]],
                 rejected: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """``context_terms`` rows for one title: ``confirmed`` glossary terms (dicts with term,
    translation, kind, source) and ``rejected`` (term, source, note) triples."""
    common = {"series": context.series, "season": context.season, "episode": context.episode,
              "director": context.director, "genre": "|".join(context.genres) or None}
    rows = [{**common, "term": t["term"], "translation": t.get("translation") or "",
             "kind": t.get("kind") or "term", "source": t.get("source") or "",
             "status": "confirmed", "note": ""} for t in confirmed]
    rows += [{**common, "term": term, "translation": "", "kind": "character", "source": source,
              "status": "rejected", "note": note} for term, source, note in rejected]
    return rows


def build_memory(terms: pl.DataFrame, runs: pl.DataFrame) -> pl.DataFrame:
    """Memory rows from the ``context_terms`` and ``runs`` event tables: each finished title's
    rows from the latest run of each asset that wrote some (``glossary``: the user's and
    TMDB's names; ``enhanced_translation``: suggestions its LLM confirmed), so a re-run with a
    corrected sidecar replaces what the title taught before."""
    columns = list(MEMORY_SCHEMA)
    if terms.is_empty():
        return pl.DataFrame(schema=MEMORY_SCHEMA)
    finished = set(runs.filter(pl.col("status") == "success")["title"].to_list()) \
        if not runs.is_empty() else set()
    batch = terms.sort("ts").group_by("title", "asset").agg(pl.col("run_id").last())
    kept = (terms.join(batch, on=["title", "asset", "run_id"])
            .filter(pl.col("title").is_in(finished)))
    return kept.select([pl.col(c).cast(t) for c, t in MEMORY_SCHEMA.items()]).select(columns)


def memory_state(terms: pl.DataFrame, runs: pl.DataFrame) -> str:
    """What a memory is built from, in one comparable string: finished runs and context rows
    (the sensor asks for a rebuild when it differs from the memory's)."""
    finished = runs.filter(pl.col("status") == "success").height if runs.height else 0
    return f"{finished}-{terms.height}"


def write_memory(path: Path, memory: pl.DataFrame, state: str) -> None:
    """The memory, then its state beside it (``memory.json``): a state names a whole file."""
    write_with(path, lambda tmp: memory.write_parquet(tmp))
    stamp = json.dumps({"state": state, "rows": memory.height,
                        "built_at": dt.datetime.now(dt.UTC).isoformat()})
    write_with(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(stamp))


def built_state(path: Path) -> str | None:
    """The state the memory at ``path`` was built from, or None (never built, unreadable)."""
    try:
        return str(json.loads(path.with_suffix(".json").read_text())["state"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_memory(path: Path) -> pl.DataFrame:
    """The memory written by ``context_memory``; empty when it was never built."""
    if not path.is_file():
        return pl.DataFrame(schema=MEMORY_SCHEMA)
    return pl.read_parquet(path)


def summary(memory: pl.DataFrame) -> dict[str, Any]:
    """What the memory holds, for the asset's metadata."""
    confirmed = memory.filter(pl.col("status") == "confirmed")
    return {
        "rows": memory.height,
        "titles": memory["title"].n_unique() if memory.height else 0,
        "terms": confirmed["term"].str.to_lowercase().n_unique() if confirmed.height else 0,
        "rejected": memory.filter(pl.col("status") == "rejected").height,
        "series": sorted(s for s in memory["series"].unique().to_list() if s)
        if memory.height else [],
        "sources": dict(sorted(confirmed.group_by("source").len().iter_rows()))
        if confirmed.height else {},
    }


@dataclass(frozen=True)
class Suggestion:
    term: str
    translation: str
    kind: str
    level: str  # series, director or genre
    score: float
    titles: int
    last_confirmed: dt.datetime
    sources: tuple[str, ...]

    def as_term(self) -> dict[str, Any]:
        """A glossary entry: flagged as a suggestion, with its provenance and score."""
        return {"term": self.term, "translation": self.translation, "kind": self.kind,
                "source": "memory", "note": self.provenance, "occurrences": 0,
                "suggested": True, "score": round(self.score, 3)}

    @property
    def provenance(self) -> str:
        return (f"suggested from the same {self.level}: confirmed by {self.titles} "
                f"title{'s' * (self.titles != 1)} ({', '.join(self.sources)}), last "
                f"{self.last_confirmed:%Y-%m-%d}")


def suggest(memory: pl.DataFrame, context: TitleContext, user_terms: Sequence[str], *,
            title: str | None = None, rejected: Sequence[str] = (),
            now: dt.datetime | None = None,
            limit: int = MAX_SUGGESTIONS) -> tuple[list[Suggestion], list[tuple[str, str]]]:
    """Ranked suggestions for a title, and the (suggestion, user spelling) corrections found:
    memory terms the user wrote differently in this title's sidecar."""
    if memory.is_empty() or not (context.series or context.director or context.genres):
        return [], []
    # Ages count from the memory's newest row, not the clock: the same memory gives the same
    # suggestions and scores, so a title's glossary (and its transcript) stay cached.
    now = now or memory["ts"].max() or dt.datetime.now(dt.UTC)
    frame = memory if title is None else memory.filter(pl.col("title") != title)
    level = pl.lit(None, dtype=pl.String())
    if context.genres:
        wanted = [g.casefold() for g in context.genres]
        shared = (pl.col("genre").fill_null("").str.to_lowercase().str.split("|")
                  .list.set_intersection(wanted).list.len() > 0)
        level = pl.when(shared).then(pl.lit("genre")).otherwise(level)
    if context.director:
        level = pl.when(pl.col("director").str.to_lowercase() == _norm(context.director)) \
            .then(pl.lit("director")).otherwise(level)
    if context.series:
        level = pl.when(pl.col("series").str.to_lowercase() == _norm(context.series)) \
            .then(pl.lit("series")).otherwise(level)
    age_days = (pl.lit(now) - pl.col("ts")).dt.total_seconds() / 86400.0
    frame = (frame.with_columns(level.alias("level"), pl.col("term").str.to_lowercase()
                                .alias("key"))
             .filter(pl.col("level").is_not_null())
             .with_columns((pl.col("level").replace_strict(LEVEL_WEIGHT, return_dtype=pl.Float64)
                            * (0.5 ** (age_days.clip(lower_bound=0.0) / HALF_LIFE_DAYS)))
                           .alias("weight"),
                           pl.col("level").replace_strict({k: i for i, k in enumerate(LEVELS)},
                                                          return_dtype=pl.Int64).alias("rank")))
    if frame.is_empty():
        return [], []
    # In its best context, a term's latest word decides: a rejection there hides it.
    best = frame.group_by("key").agg(pl.col("rank").min().alias("best"))
    frame = frame.join(best, on="key").filter(pl.col("rank") == pl.col("best"))
    latest = (frame.sort("ts").group_by("key").agg(pl.col("status").last().alias("latest")))
    confirmed = frame.filter(pl.col("status") == "confirmed")
    grouped = (confirmed.sort("ts").group_by("key").agg(
        pl.col("term").last(), pl.col("translation").last(), pl.col("kind").last(),
        pl.col("level").first(), pl.col("rank").first(), pl.col("weight").sum().alias("score"),
        pl.col("title").n_unique().alias("titles"), pl.col("ts").max().alias("last"),
        pl.col("source").unique().sort().alias("sources"))
        .join(latest, on="key").filter(pl.col("latest") == "confirmed")
        .sort(["rank", "score", "last", "key"], descending=[False, True, True, False]))
    user = [u.strip() for u in user_terms if u.strip()]
    user_lower = {u.casefold() for u in user}
    refused = {r.strip().casefold() for r in rejected}
    chosen: list[Suggestion] = []
    corrections: list[tuple[str, str]] = []
    for row in grouped.iter_rows(named=True):
        term = row["term"]
        if row["key"] in user_lower or row["key"] in refused:
            continue
        spelled = next((u for u in user if _same_name(term, u, row["kind"])), None)
        if spelled is not None:
            corrections.append((term, spelled))
            continue
        if any(_same_name(term, s.term, row["kind"]) for s in chosen):
            continue  # another spelling of a name already suggested, better scored
        chosen.append(Suggestion(term, row["translation"] or "", row["kind"], row["level"],
                                 float(row["score"]), int(row["titles"]), row["last"],
                                 tuple(row["sources"])))
        if len(chosen) == limit:
            break
    return chosen, corrections


def _same_name(a: str, b: str, kind: str) -> bool:
    return kind in ("character", "actor") and near_name(a, b)
