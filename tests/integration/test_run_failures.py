"""The run-failure sensor turns a failed run into a `run_failures` row naming the real error."""

from dagster import build_run_status_sensor_context

from cpw_assets.definitions import defs
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import resources_for
from cpw_resources.settings import Settings
from cpw_resources.store.titles import TitleRegistry
from cpw_sensors.run_failures import record_run_failures


def test_failed_run_is_recorded(instance, home, media_dir, store):
    bad = media_dir / "Not A Film.mkv"
    bad.write_text("hello\n")
    key = TitleRegistry(home / "titles").register(bad).key
    instance.add_dynamic_partitions(titles.name, [key])
    job = defs.resolve_job_def("subtitle_job")
    result = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False,
                                    resources=resources_for(Settings(home=home)))
    assert not result.success

    with build_run_status_sensor_context(
        sensor_name="record_run_failures",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources=resources_for(Settings(home=home)),
    ) as status_context:
        record_run_failures(status_context.for_run_failure())

    failures = store.read("run_failures")
    assert failures.height == 1
    row = failures.row(0, named=True)
    assert row["run_id"] == result.run_id and row["title"] == key and row["step"] == "audio"
    assert row["error_class"] == "NotMediaError"
    assert row["message"].startswith(f"{bad}: ") and "not an audio or video file" in row["message"]
