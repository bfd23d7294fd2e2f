"""``optimizer_model``: the XGBoost model that picks each title's Whisper config, retrained
from the labelled ``training_examples`` (docs/optimizer.md).

Not partitioned: one model for the machine. It runs from the UI, from the weekly schedule
(``weekly_optimizer_retrain``, Sunday 23:00) and when the retrain sensor sees enough new
labels; a retrain that scores worse on the held-out recordings than the current model is kept
as a version but does not replace it, and the metadata says why.
"""

# No `from __future__ import annotations`: Dagster reads the step's parameter types.
from dagster import (
    AssetExecutionContext,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    ScheduleDefinition,
    asset,
)

from cpw_resources.optimizer.model import examples_from_rows, retrain
from cpw_resources.orchestration.jobs import optimizer_job
from cpw_resources.orchestration.resources import EventStoreResource, OptimizerResource

OPTIMIZER_GROUP = "optimizer"


@asset(group_name=OPTIMIZER_GROUP, kinds={"xgboost"})
def optimizer_model(context: AssetExecutionContext, store: EventStoreResource,
                    optimizer: OptimizerResource) -> MaterializeResult:
    """Predicts a config's WER and time from a title's audio; the transcript picks the fastest
    config within the tolerance of the best."""
    rows = store.events.read("training_examples").to_dicts()
    examples = examples_from_rows(rows, timed_only=True)
    scored = sum(e.error == e.error for e in examples)  # NaN: timed only, no WER
    context.log.info(f"optimizer: {scored} examples with a WER and {len(examples) - scored} "
                     f"timed only, of {len(rows)} rows")
    done = retrain(optimizer.models, examples, min_examples=optimizer.min_examples)
    store.append("optimizer_models", [done.as_row()], run_id=context.run_id, title="",
                 asset="optimizer_model")
    context.log.info(f"optimizer: {done.reason}")
    current = optimizer.models.current()
    metadata: dict = {
        "examples": scored,
        "timed_only_examples": len(examples) - scored,
        "trained_version": done.version or "none",
        "became_current": done.became_current,
        "reason": done.reason,
        "current_version": current.version if current is not None else "none (rules)",
    }
    if done.model is not None:
        info = done.model.info
        metadata |= {
            "training_rows": info["rows"],
            "recordings": info["recordings"],
            "holdout": MetadataValue.json(info["holdout"]),
            "cross_validated": MetadataValue.json(info["cross_validated"] or {}),
            "feature_importance": MetadataValue.json(info["importance"]),
            "train_seconds": info["train_seconds"],
            "path": MetadataValue.path(str(optimizer.models.root / done.version)),
        }
    return MaterializeResult(metadata=metadata)


optimizer_schedule = ScheduleDefinition(
    name="weekly_optimizer_retrain", job=optimizer_job, cron_schedule="0 23 * * 0",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Retrain the optimizer every Sunday at 23:00 from the labels gathered.",
)
