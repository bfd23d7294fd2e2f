"""The one Definitions object: assets, checks, jobs, sensors and resources."""

from dagster import Definitions

from cpw_assets.language.enhanced_translation import enhanced_translation
from cpw_assets.language.glossary import glossary
from cpw_assets.language.translation import translation
from cpw_assets.metrics import metrics_job, metrics_models, metrics_schedule
from cpw_assets.speech.media import audio, media
from cpw_assets.speech.transcript import transcript
from cpw_assets.subtitles import subtitles
from cpw_resources.orchestration.jobs import subtitle_job
from cpw_resources.orchestration.resources import CpwResource
from cpw_sensors import sensors

defs = Definitions(
    assets=[media, audio, transcript, glossary, translation, enhanced_translation, subtitles,
            metrics_models],
    jobs=[subtitle_job, metrics_job],
    schedules=[metrics_schedule],
    sensors=sensors,
    resources={"cpw": CpwResource()},
)
