"""Ask for a ``context_memory`` rebuild when titles finished since the last one.

Every 2 minutes the finished runs (``runs`` rows with status ``success``) and the
``context_terms`` rows are counted; when they differ from what the memory was built from
(``memory.json`` beside it), one ``context_job`` run is requested, its run key the counts, so
each state is asked for once. Shown, and switched on or off, in the UI's Automation tab.
"""

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from cpw_resources.language.memory import built_state, memory_state
from cpw_resources.orchestration.jobs import context_job
from cpw_resources.orchestration.resources import ContextLearnerResource, EventStoreResource


@sensor(name="context_memory_on_finished_titles", job=context_job,
        minimum_interval_seconds=120, default_status=DefaultSensorStatus.RUNNING)
def context_memory_sensor(context: SensorEvaluationContext, store: EventStoreResource,
                          context_learner: ContextLearnerResource) -> RunRequest | SkipReason:
    terms = store.events.read("context_terms")
    runs = store.events.read("runs")
    if terms.is_empty():
        return SkipReason("no title has recorded names yet")
    state = memory_state(terms, runs)
    if built_state(context_learner.memory_path) == state:
        return SkipReason(f"memory up to date (finished runs-context rows: {state})")
    return RunRequest(run_key=f"context-{state}",
                      tags={"cpw/reason": f"finished runs-context rows now {state}"})
