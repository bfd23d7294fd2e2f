"""The one Definitions object: assets, checks, jobs, sensors and resources."""

from dagster import Definitions

from cpw_assets.enhanced_translation import enhanced_translation
from cpw_assets.glossary import glossary
from cpw_assets.jobs import subtitle_job
from cpw_assets.media import audio, media
from cpw_assets.metrics import metrics_job, metrics_models, metrics_schedule
from cpw_assets.subtitles import subtitles
from cpw_assets.transcript import transcript
from cpw_assets.translation import translation
from cpw_resources.dagster_resource import CpwResource
from cpw_sensors import sensors

defs = Definitions(
    assets=[media, audio, transcript, glossary, translation, enhanced_translation, subtitles,
            metrics_models],
    jobs=[subtitle_job, metrics_job],
    schedules=[metrics_schedule],
    sensors=sensors,
    resources={"cpw": CpwResource()},
)
