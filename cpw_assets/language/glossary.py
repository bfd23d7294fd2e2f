"""``glossary``: the names and terms known before the transcript — the sidecars, TMDB, and
the context learner's suggestions from earlier titles of the same series, director or genre.

It runs before ``transcript`` so the names reach Whisper (docs/context.md). The confirmed
terms (sidecar, TMDB) and the user's rejections and corrections of suggestions are recorded in
``context_terms``; a finished title's rows become part of the ``context_memory``. Suggestions
are flagged ``suggested`` with their score and provenance, never recorded as confirmed, and
never override what the sidecar says.

TMDB is optional: without ``TMDB_API_KEY`` / ``TMDB_READ_ACCESS_TOKEN`` the sidecar JSON is
the source and the metadata says so. When TMDB fails (down, rate-limited past the retries,
bad key, breaker open), the title still gets its glossary without TMDB names: the degradation
is a ``degradations`` event, asset metadata, and a warning from the ``tmdb_names`` check; the
result is not cached, so the next run asks TMDB again.
"""

import time
from dataclasses import dataclass

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from cpw_assets.context import context_memory
from cpw_assets.speech.media import media
from cpw_assets.stage import Stage, stage
from cpw_resources.atomic import write_json
from cpw_resources.language.glossary import (
    Term,
    build_glossary,
    cast_terms,
    read_glossary_tsv,
    read_title_metadata,
    sidecar_rejections,
)
from cpw_resources.language.memory import (
    TitleContext,
    built_state,
    context_rows,
    read_memory,
    suggest,
)
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import (
    ContextLearnerResource,
    EventStoreResource,
    ReliabilityResource,
    TitleRegistryResource,
    TmdbResource,
)
from cpw_resources.services.reliability import ServiceError
from cpw_resources.services.tmdb import Film, TmdbClient, title_and_year
from cpw_resources.store.cache import sha256_file
from cpw_resources.store.sidecars import Sidecars


@asset(
    partitions_def=titles,
    group_name="language",
    deps=[media, context_memory],
    check_specs=[AssetCheckSpec(
        "tmdb_names", asset="glossary",
        description="TMDB's cast names joined the glossary, or TMDB is not configured "
                    "(WARN when TMDB failed and the glossary went on without them)")],
    kinds={"tmdb"},
)
def glossary(context: AssetExecutionContext, store: EventStoreResource,
             titles: TitleRegistryResource, reliability: ReliabilityResource,
             tmdb: TmdbResource, context_learner: ContextLearnerResource) -> MaterializeResult:
    """Character names and terms for this title, from its sidecars, TMDB and what earlier
    titles of its series, director or genre confirmed (as suggestions)."""
    with stage(context, store, titles) as st:
        names = Sidecars(st.title.media)
        # Listed, not stat-ed: a name too long for the file system is simply absent.
        sidecars = [p for p in names.existing() if p in (names.metadata, names.glossary)]
        st.timer.inputs.extend(sidecars)
        output = st.output(st.files.path("glossary.json"))
        client = tmdb.client(reliability.for_call(run_id=context.run_id, title=st.key,
                                                  asset=st.name, secrets=tmdb.secrets))
        # The memory's state, not its suggestions, keys the cache: suggestions depend on
        # TMDB's director and genres, asked only when the glossary is made again.
        result = st.reuse(sidecars={p.name: sha256_file(p) for p in sidecars},
                          tmdb=client is not None,
                          memory=built_state(context_learner.memory_path)
                          if context_learner.enabled else "off")
        if result is None:
            extra, found, status = _tmdb_terms(st, client)
            learned = _suggestions(st, context_learner, found)
            built = build_glossary(st.title.media, extra,
                                   [Term(**t) for t in learned.terms])
            built["metadata"] = learned.metadata
            write_json(output, built)
            suggested = [t for t in built["terms"] if t["suggested"]]
            st.record("context_terms", context_rows(
                learned.context, [t for t in built["terms"] if not t["suggested"]],
                [(r, "sidecar_reject", "rejected in the sidecar") for r in built["rejected"]]
                + [(wrong, "correction", f"the sidecar spells it {right!r}")
                   for wrong, right in learned.corrections]))
            result = {
                "terms": len(built["terms"]),
                "confirmed_terms": len(built["terms"]) - len(suggested),
                "suggested_terms": len(suggested),
                "suggestions": _suggestion_table(suggested) if suggested else "none",
                "context": learned.context.describe(),
                "learner": learned.status,
                "suggest_seconds": round(learned.seconds, 4),
                "tmdb_names": len(extra),
                "sources": ", ".join(built["sources"]) or "none",
                "tmdb": status,
            }
            if not status.startswith("failed"):
                st.save(result)
    degraded = result["tmdb"].startswith("failed")
    metadata = st.metadata(result)
    if result["suggestions"] != "none":
        metadata["suggestions"] = MetadataValue.md(result["suggestions"])
    return MaterializeResult(
        metadata=metadata,
        check_results=[AssetCheckResult(
            check_name="tmdb_names", passed=not degraded, severity=AssetCheckSeverity.WARN,
            description="TMDB names were added, or TMDB is not configured",
            metadata={"tmdb": result["tmdb"]},
        )],
    )


@dataclass(frozen=True)
class _Learned:
    context: TitleContext
    metadata: dict  # the sidecar's metadata, with TMDB's director and genres where it has none
    terms: list[dict]  # suggestions as glossary entries, best first
    corrections: list[tuple[str, str]]  # (suggested spelling, the sidecar's)
    status: str
    seconds: float


def _suggestions(st: Stage, learner: ContextLearnerResource, film: Film | None) -> _Learned:
    """The context learner's suggestions for this title from the memory of finished titles;
    where the title belongs comes from its sidecar, else from TMDB (director, genres)."""
    metadata, names = read_title_metadata(st.title.media)
    if film is not None:
        if film.directors and not metadata.get("director"):
            metadata["director"] = film.directors[0]
        if film.genres and not metadata.get("genre"):
            metadata["genre"] = film.genres
    where = TitleContext.from_metadata(metadata)
    if not learner.enabled:
        return _Learned(where, metadata, [], [], "off (CPW_CONTEXT_LEARNER=off)", 0.0)
    started = time.perf_counter()
    memory = read_memory(learner.memory_path)
    user = [t.term for t in names + read_glossary_tsv(st.title.media)]
    found, corrections = suggest(memory, where, user, title=st.key,
                                 rejected=sidecar_rejections(st.title.media))
    seconds = time.perf_counter() - started
    if memory.is_empty():
        status = "no memory yet (it grows as titles finish)"
    elif not (where.series or where.director or where.genres):
        status = "no series, director or genre in the sidecar or TMDB: nothing to match"
    else:
        status = f"{len(found)} suggestions from a memory of {memory.height} rows"
    if found:
        st.context.log.info(f"context learner: {len(found)} suggestions for {where.describe()}:"
                            f" {', '.join(s.term for s in found[:8])}"
                            f"{' ...' if len(found) > 8 else ''}")
    return _Learned(where, metadata, [s.as_term() for s in found], corrections, status,
                    seconds)


def _suggestion_table(terms: list[dict]) -> str:
    rows = "\n".join(f"| {t['term']} | {t['kind']} | {t['score']} | {t['note']} |"
                     for t in terms[:50])
    return "| term | kind | score | provenance |\n|---|---|---|---|\n" + rows


def _tmdb_terms(st: Stage, client: TmdbClient | None) -> tuple[list[Term], Film | None, str]:
    """TMDB character/actor names, the film as TMDB knows it, and a one-line status."""
    if client is None:
        return [], None, ("not configured (no TMDB_API_KEY or TMDB_READ_ACCESS_TOKEN): "
                          "sidecar JSON only")
    metadata, _ = read_title_metadata(st.title.media)
    title, year = title_and_year(metadata, st.title.media)
    tmdb_id = int(metadata["tmdb_id"]) if metadata.get("tmdb_id") else None
    try:
        film = client.reliability.second_round(
            "tmdb", lambda: client.film(title, year, tmdb_id))
    except ServiceError as error:
        st.record("degradations", [{"service": "tmdb", "kind": error.kind,
                                    "message": str(error), "fallback": "glossary without "
                                    "TMDB names"}])
        st.context.log.warning(f"TMDB unavailable, glossary without TMDB names: {error}")
        return [], None, f"failed ({error.kind}): glossary without TMDB names"
    if film is None:
        return [], None, f"no TMDB match for {title!r} ({year or 'any year'})"
    terms = cast_terms(film.cast)
    st.context.log.info(f"TMDB {film.tmdb_id}: {len(terms)} names for {title!r}")
    return terms, film, f"ok: TMDB id {film.tmdb_id}, {len(film.cast)} cast"
