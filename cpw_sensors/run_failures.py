"""Record every failed run as a ``run_failures`` event: run id, title, step, error class, message.

Runs the daemon (``make ui``) evaluates; ``select * from run_failures`` answers "what broke".
"""


from dagster import DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

from cpw_resources.orchestration.resources import EventStoreResource


@run_failure_sensor(
    name="record_run_failures",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    # Runs started by `dagster job execute` or `cpw run` carry a different code-location
    # origin than the UI's workspace; without this they would go unrecorded.
    monitor_all_code_locations=True,
)
def record_run_failures(context: RunFailureSensorContext, store: EventStoreResource) -> None:
    run = context.dagster_run
    title = run.tags.get("dagster/partition", "")
    rows = []
    for event in context.get_step_failure_events():
        error = event.event_specific_data.error if event.event_specific_data else None
        # Our assets raise dagster.Failure from a CpwError: the cause names the real problem.
        if error is not None and error.cls_name == "Failure" and error.cause is not None:
            error = error.cause
        rows.append({
            "step": event.step_key,
            "error_class": error.cls_name if error else None,
            "message": (_message(error) if error else event.message or "")[:2000],
        })
    if not rows:
        error = context.failure_event.event_specific_data
        message = context.failure_event.message or ""
        rows.append({"step": None, "error_class": getattr(error, "error_type", None) and
                     str(error.error_type), "message": message[:2000]})
    store.append("run_failures", rows, run_id=run.run_id, title=title, asset="run")
    context.log.info(f"recorded failure of run {run.run_id} ({title}): {rows[0]['message'][:200]}")


def _message(error) -> str:
    """The error's own text, without the 'module.Class: ' prefix Dagster adds."""
    text = error.message.strip()
    prefix, _, rest = text.partition(": ")
    return rest if prefix.endswith(error.cls_name) and rest else text
