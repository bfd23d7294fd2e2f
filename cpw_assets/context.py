"""``context_memory``: what finished titles taught, for the next ones (docs/context.md).

Not partitioned: one memory for the machine, rebuilt from the ``context_terms`` and ``runs``
event tables into ``$CPW_HOME/context/memory.parquet`` (one row per finished title and term
it confirmed or rejected; queryable with DuckDB's ``read_parquet``). The sensor
``context_memory_on_finished_titles`` asks for a rebuild when titles finished since the last
one; it can also be materialized from the UI. Each title's ``glossary`` reads it.
"""

# No `from __future__ import annotations`: Dagster reads the step's parameter types.
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from cpw_resources.language.memory import build_memory, memory_state, summary, write_memory
from cpw_resources.orchestration.resources import ContextLearnerResource, EventStoreResource

CONTEXT_GROUP = "context"


@asset(group_name=CONTEXT_GROUP, kinds={"parquet"})
def context_memory(context: AssetExecutionContext, store: EventStoreResource,
                   context_learner: ContextLearnerResource) -> MaterializeResult:
    """The names and terms finished titles confirmed or rejected, with their series,
    director and genre: where each new title's suggestions come from."""
    terms = store.events.read("context_terms")
    runs = store.events.read("runs")
    memory = build_memory(terms, runs)
    path = context_learner.memory_path
    path.parent.mkdir(parents=True, exist_ok=True)
    write_memory(path, memory, memory_state(terms, runs))
    held = summary(memory)
    finished = held["titles"]
    context.log.info(f"context memory: {held['terms']} terms from {finished} finished titles "
                     f"({held['rejected']} rejections) in {path}")
    top = (memory.filter(memory["status"] == "confirmed").group_by("term", "kind")
           .len().sort(["len", "term"], descending=[True, False]).head(20)) \
        if memory.height else None
    return MaterializeResult(metadata={
        "rows": held["rows"],
        "titles": finished,  # finished titles that confirmed or rejected a name
        "terms": held["terms"],
        "rejections": held["rejected"],
        "series": MetadataValue.json(held["series"]),
        "sources": MetadataValue.json(held["sources"]),
        "context_term_rows_seen": terms.height,
        "most_confirmed": MetadataValue.md(
            "| term | kind | titles |\n|---|---|---|\n" + "\n".join(
                f"| {t} | {k} | {n} |" for t, k, n in top.iter_rows())) if top is not None
        else "none",
        "path": MetadataValue.path(str(path)),
    })
