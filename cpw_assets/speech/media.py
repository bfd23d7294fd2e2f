"""``media`` (the registered file) and ``audio`` (16 kHz mono WAV plus its fingerprint)."""

import av
from dagster import AssetExecutionContext, MaterializeResult, asset

from cpw_assets.stage import stage
from cpw_resources.atomic import write_json
from cpw_resources.errors import MediaError
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import EventStoreResource, TitleRegistryResource
from cpw_resources.speech.media import SAMPLE_RATE, decode_to_wav, fingerprint, load_wav
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
def audio(context: AssetExecutionContext, store: EventStoreResource,
          titles: TitleRegistryResource) -> MaterializeResult:
    """Any container/codec PyAV reads, decoded to 16 kHz mono WAV, and its audio fingerprint."""
    with stage(context, store, titles) as st:
        st.timer.inputs.append(st.title.media)
        wav = st.output(st.files.path("audio.wav"))
        prints_path = st.output(st.files.path("fingerprint.json"))
        result = st.reuse(sample_rate=SAMPLE_RATE, decoder=av.__version__)
        if result is None:
            decoded = decode_to_wav(st.title.media, wav)
            prints = fingerprint(load_wav(wav))
            write_json(prints_path, {
                **prints,
                "source_codec": decoded.source_codec,
                "source_container": decoded.source_container,
                "source_sample_rate": decoded.source_sample_rate,
                "source_channels": decoded.source_channels,
            })
            context.log.info(
                f"{st.title.media.name}: {decoded.duration_s:.1f} s of {decoded.source_codec} "
                f"audio, speech ratio {prints['speech_ratio']:.2f}"
            )
            result = st.save({
                "path": wav,
                **{k: round(float(v), 4) for k, v in prints.items()},
                "source_codec": decoded.source_codec,
            })
        st.audio_seconds = result["duration_s"]
    return MaterializeResult(metadata=st.metadata(result))
