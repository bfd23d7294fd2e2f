"""``subtitle_job``: every per-title asset, in process; ``optimizer_job``: the optimizer's
retrain (asked for by its schedule and its sensor, which both import it from here);
``context_job``: the context learner's memory, asked for by its sensor.

The in-process executor keeps one Python process and one loaded Whisper model for the whole
title; a process per step would re-import Dagster and reload the model at every step, which
costs more than the steps themselves on short titles.
"""

from dagster import AssetSelection, define_asset_job, in_process_executor

from cpw_resources.orchestration.partitions import titles

subtitle_job = define_asset_job(
    "subtitle_job",
    selection=AssetSelection.groups("speech", "language", "subtitles"),
    partitions_def=titles,
    executor_def=in_process_executor,
    description="Media file → audio → glossary → transcript → translation → "
    "enhanced_translation → subtitles.",
)

optimizer_job = define_asset_job(
    "optimizer_job", selection=AssetSelection.assets("optimizer_model"),
    executor_def=in_process_executor,
    description="Retrain the Whisper config optimizer from the labelled training examples.",
)

context_job = define_asset_job(
    "context_job", selection=AssetSelection.assets("context_memory"),
    executor_def=in_process_executor,
    description="Rebuild the context learner's memory from the titles that finished.",
)
