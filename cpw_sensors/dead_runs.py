"""Fail what killed runs left: a run whose process died stays 'started' and keeps its pool slots.

Every minute, runs in progress on this machine whose executor process is gone are marked failed,
get a ``runs`` event with the reason, and have their pool slots freed (see
:func:`cpw_resources.orchestration.instance.recover_dead_runs`). Every run also does this before
its first stage, so the sensor only matters while no run starts.
"""

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from cpw_resources.orchestration.instance import recover_dead_runs
from cpw_resources.orchestration.resources import EventStoreResource


@sensor(name="recover_dead_runs", minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING)
def recover_dead_runs_sensor(context: SensorEvaluationContext,
                             store: EventStoreResource) -> SkipReason:
    recovered = recover_dead_runs(context.instance, store.events)
    for run in recovered:
        context.log.warning(f"run {run.run_id} ({run.title}) had died: {run.reason}; "
                            "marked failed and freed its pool slots")
    return SkipReason(f"recovered {len(recovered)} dead run(s)")
