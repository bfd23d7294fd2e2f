"""Ask for an optimizer retrain when enough new labels arrived since the current model.

Every 10 minutes the labelled ``training_examples`` (rows with a WER and a time: corpus
benchmark runs, titles with a reference subtitle beside them, explorations) are counted; when
at least ``CPW_OPTIMIZER_RETRAIN_AFTER`` more exist than the current model was trained from,
one ``optimizer_job`` run is requested (its run key is the count, so it is asked for once).
Shown, and switched on or off, in the UI's Automation tab, as the weekly schedule is.
"""

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from cpw_resources.optimizer.model import examples_from_rows
from cpw_resources.orchestration.jobs import optimizer_job
from cpw_resources.orchestration.resources import EventStoreResource, OptimizerResource


@sensor(name="optimizer_retrain_on_new_labels", job=optimizer_job, minimum_interval_seconds=600,
        default_status=DefaultSensorStatus.RUNNING)
def optimizer_retrain_sensor(context: SensorEvaluationContext, store: EventStoreResource,
                             optimizer: OptimizerResource) -> RunRequest | SkipReason:
    labelled = len(examples_from_rows(store.events.read("training_examples").to_dicts()))
    current = optimizer.models.current()
    seen = int(current.info.get("examples_seen", 0)) if current is not None else 0
    new = labelled - seen
    if labelled < optimizer.min_examples:
        return SkipReason(f"{labelled} labelled examples; a model needs "
                          f"{optimizer.min_examples} (rules decide until then)")
    if current is not None and new < optimizer.retrain_after:
        return SkipReason(f"{new} new labelled examples since {current.version}; retrain "
                          f"at {optimizer.retrain_after}")
    return RunRequest(run_key=f"optimizer-labels-{labelled}",
                      tags={"cpw/reason": f"{new} new labelled examples"})
