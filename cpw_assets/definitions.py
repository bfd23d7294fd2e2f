"""The one Definitions object: assets, checks, jobs, schedules, sensors and resources.

Resources and the run config's defaults come from the settings (environment and ``cpw.yaml``)
read when this module loads; see :mod:`cpw_resources.orchestration`.
"""

from dagster import Definitions, colored_console_logger

from cpw_assets.context import context_memory
from cpw_assets.language.enhanced_translation import enhanced_translation
from cpw_assets.language.glossary import glossary
from cpw_assets.language.translation import translation
from cpw_assets.metrics import dbt_resource, metrics_assets, metrics_job, metrics_schedule
from cpw_assets.optimizer import optimizer_job, optimizer_model, optimizer_schedule
from cpw_assets.reports import cost_report, performance_report, reports_job, reports_schedule
from cpw_assets.speech.media import audio, media
from cpw_assets.speech.transcript import transcript
from cpw_assets.subtitles import subtitles
from cpw_resources.orchestration.console import cpw_console
from cpw_resources.orchestration.instance import refuse_throwaway_instance
from cpw_resources.orchestration.jobs import context_job, subtitle_job
from cpw_resources.orchestration.partitions import sync_at_load
from cpw_resources.orchestration.resources import resources_for
from cpw_sensors import sensors

refuse_throwaway_instance()
sync_at_load()

defs = Definitions(
    assets=[media, audio, transcript, glossary, translation, enhanced_translation, subtitles,
            optimizer_model, context_memory, performance_report, cost_report, *metrics_assets],
    jobs=[subtitle_job, metrics_job, optimizer_job, context_job, reports_job],
    schedules=[metrics_schedule, optimizer_schedule, reports_schedule],
    sensors=sensors,
    resources={**resources_for(), "dbt": dbt_resource()},
    # Dagster's console logger stays the default (no logger in a run's config); `cpw run`
    # configures cpw_console, which prints progress bars instead of Dagster's DEBUG lines.
    loggers={"console": colored_console_logger, "cpw_console": cpw_console},
)
