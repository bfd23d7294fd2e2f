"""``glossary``: names and terms from sidecars and TMDB, counted in the transcript.

TMDB is optional: without ``TMDB_API_KEY`` / ``TMDB_READ_ACCESS_TOKEN`` the sidecar JSON is
the source and the metadata says so. When TMDB fails (down, rate-limited past the retries,
bad key, breaker open), the title still gets its glossary without TMDB names: the degradation
is a ``degradations`` event, asset metadata, and a warning from the ``tmdb_names`` check; the
result is not cached, so the next run asks TMDB again.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    asset,
)

from cpw_assets.speech.transcript import transcript
from cpw_assets.stage import Stage, stage
from cpw_resources.atomic import write_json
from cpw_resources.language.glossary import Term, build_glossary, cast_terms, read_title_metadata
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import (
    EventStoreResource,
    ReliabilityResource,
    TitleRegistryResource,
    TmdbResource,
)
from cpw_resources.services.reliability import ServiceError
from cpw_resources.services.tmdb import TmdbClient, title_and_year
from cpw_resources.store.cache import sha256_file
from cpw_resources.store.sidecars import Sidecars


@asset(
    partitions_def=titles,
    group_name="language",
    deps=[transcript],
    check_specs=[AssetCheckSpec("tmdb_names", asset="glossary")],
    kinds={"tmdb"},
)
def glossary(context: AssetExecutionContext, store: EventStoreResource,
             titles: TitleRegistryResource, reliability: ReliabilityResource,
             tmdb: TmdbResource) -> MaterializeResult:
    """Character names and terms for this title and how often the transcript says them."""
    with stage(context, store, titles) as st:
        names = Sidecars(st.title.media)
        # Listed, not stat-ed: a name too long for the file system is simply absent.
        sidecars = [p for p in names.existing() if p in (names.metadata, names.glossary)]
        st.timer.inputs.extend(sidecars)
        output = st.output(st.files.path("glossary.json"))
        client = tmdb.client(reliability.for_call(run_id=context.run_id, title=st.key,
                                                  asset=st.name, secrets=tmdb.secrets))
        result = st.reuse(sidecars={p.name: sha256_file(p) for p in sidecars},
                          tmdb=client is not None)
        if result is None:
            extra, status = _tmdb_terms(st, client)
            built = build_glossary(st.title.media, st.files.transcript_segments(), extra)
            write_json(output, built)
            result = {
                "terms": len(built["terms"]),
                "terms_found": len(built["found_terms"]),
                "candidate_names": len(built["candidate_names"]),
                "tmdb_names": len(extra),
                "sources": ", ".join(built["sources"]) or "transcript only",
                "tmdb": status,
            }
            if not status.startswith("failed"):
                st.save(result)
    degraded = result["tmdb"].startswith("failed")
    return MaterializeResult(
        metadata=st.metadata(result),
        check_results=[AssetCheckResult(
            check_name="tmdb_names", passed=not degraded, severity=AssetCheckSeverity.WARN,
            description="TMDB names were added, or TMDB is not configured",
            metadata={"tmdb": result["tmdb"]},
        )],
    )


def _tmdb_terms(st: Stage, client: TmdbClient | None) -> tuple[list[Term], str]:
    """TMDB character/actor names and a one-line status for the metadata."""
    if client is None:
        return [], "not configured (no TMDB_API_KEY or TMDB_READ_ACCESS_TOKEN): sidecar JSON only"
    metadata, _ = read_title_metadata(st.title.media)
    title, year = title_and_year(metadata, st.title.media)
    tmdb_id = int(metadata["tmdb_id"]) if metadata.get("tmdb_id") else None
    try:
        found_id, cast = client.reliability.second_round(
            "tmdb", lambda: client.film_cast(title, year, tmdb_id))
    except ServiceError as error:
        st.record("degradations", [{"service": "tmdb", "kind": error.kind,
                                    "message": str(error), "fallback": "glossary without "
                                    "TMDB names"}])
        st.context.log.warning(f"TMDB unavailable, glossary without TMDB names: {error}")
        return [], f"failed ({error.kind}): glossary without TMDB names"
    if found_id is None:
        return [], f"no TMDB match for {title!r} ({year or 'any year'})"
    terms = cast_terms(cast)
    st.context.log.info(f"TMDB {found_id}: {len(terms)} names for {title!r}")
    return terms, f"ok: TMDB id {found_id}, {len(cast)} cast"
