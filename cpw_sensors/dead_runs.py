"""Free what killed runs hold: a run whose process died stays 'started' and keeps its pool slot.

Every minute, runs in progress on this machine whose executor process is gone are marked failed
and their pool slots freed (see :func:`cpw_resources.orchestration.instance.recover_dead_runs`).
"""

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from cpw_resources.orchestration.instance import recover_dead_runs


@sensor(name="recover_dead_runs", minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING)
def recover_dead_runs_sensor(context: SensorEvaluationContext) -> SkipReason:
    recovered = recover_dead_runs(context.instance)
    for run_id in recovered:
        context.log.warning(f"run {run_id} had died; marked failed and freed its pool slots")
    return SkipReason(f"recovered {len(recovered)} dead run(s)")
