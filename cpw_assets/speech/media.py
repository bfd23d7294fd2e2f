"""``media`` (the registered file) and ``audio`` (16 kHz mono WAV plus its fingerprint)."""

from pathlib import Path

import av
from dagster import AssetExecutionContext, MaterializeResult, asset

from cpw_assets.stage import stage
from cpw_resources.atomic import write_json
from cpw_resources.errors import MediaError
from cpw_resources.language.glossary import sidecar_audio_track, sidecar_language
from cpw_resources.orchestration.config import AudioConfig
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import EventStoreResource, TitleRegistryResource
from cpw_resources.speech.media import (
    SAMPLE_RATE,
    TrackChoice,
    choose_audio_track,
    decode_to_wav,
    fingerprint_wav,
)
from cpw_resources.store.sidecars import Sidecars
from cpw_resources.store.titles import content_id


@asset(partitions_def=titles, group_name="speech", kinds={"python"})
def media(context: AssetExecutionContext, store: EventStoreResource,
          titles: TitleRegistryResource) -> MaterializeResult:
    """The film file as registered: checks it still exists and records its size and content id."""
    with stage(context, store, titles) as st:
        path = st.title.media
        if not path.is_file():
            raise MediaError(path, "the registered file is gone; register it again where it is now")
        st.timer.inputs.append(path)
        current = content_id(path)
        if current != st.title.content_id:
            context.log.info(f"{path.name} changed since registration; registering the new content")
            titles.registry.register(path)
    return MaterializeResult(
        metadata=st.metadata({"path": path, "bytes": path.stat().st_size, "content_id": current})
    )


@asset(partitions_def=titles, group_name="speech", deps=[media], kinds={"pyav"})
def audio(context: AssetExecutionContext, config: AudioConfig, store: EventStoreResource,
          titles: TitleRegistryResource) -> MaterializeResult:
    """The chosen audio track decoded to 16 kHz mono WAV, and its audio fingerprint."""
    with stage(context, store, titles) as st:
        st.timer.inputs.append(st.title.media)
        wav = st.output(st.files.path("audio.wav"))
        prints_path = st.output(st.files.path("fingerprint.json"))
        choice = _choose_track(st.title.media, config)
        track = choice.summary()
        context.log.info(f"{st.title.media.name}: audio track {choice.track.describe()} of "
                         f"{len(choice.tracks)}, because: {choice.reason}")
        result = st.reuse(sample_rate=SAMPLE_RATE, decoder=av.__version__, track=track)
        if result is None:
            decoded = decode_to_wav(st.title.media, wav, track=choice.track.number)
            prints = fingerprint_wav(wav)
            write_json(prints_path, {
                **prints,
                "source_codec": decoded.source_codec,
                "source_container": decoded.source_container,
                "source_sample_rate": decoded.source_sample_rate,
                "source_channels": decoded.source_channels,
                "audio_track": track,
            })
            context.log.info(
                f"{st.title.media.name}: {decoded.duration_s:.1f} s of {decoded.source_codec} "
                f"audio, speech ratio {prints['speech_ratio']:.2f}"
            )
            result = st.save({
                "path": wav,
                **{k: round(float(v), 4) for k, v in prints.items()},
                "source_codec": decoded.source_codec,
                "audio_track": track,
            })
        st.audio_seconds = result["duration_s"]
    return MaterializeResult(metadata=st.metadata(result))


def _choose_track(media_path: Path, config: AudioConfig) -> TrackChoice:
    """The track to decode: the sidecar's ``audio_track`` over the run config's (the
    setting's), else the rule of :func:`select_track` with the wanted language."""
    sidecar_pick = sidecar_audio_track(media_path)
    if sidecar_pick is not None:
        pick, source = sidecar_pick, f"{Sidecars(media_path).metadata.name} audio_track"
    else:
        pick, source = config.audio_track, "CPW_AUDIO_TRACK"
    language = config.language or sidecar_language(media_path)
    return choose_audio_track(media_path, pick=pick, pick_source=source, language=language)
