"""Tests of cpw_resources.speech.media: decoding real and broken media, the audio fingerprint."""

from __future__ import annotations

import logging
import wave
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from cpw_resources.errors import (
    CorruptMediaError,
    EmptyFileError,
    MediaError,
    NoAudioStreamError,
    NotMediaError,
)
from cpw_resources.speech import media
from cpw_resources.speech.media import SAMPLE_RATE, decode_to_wav, fingerprint, load_wav
from tests import media_fixtures as mf

JFK = mf.JFK_WAV
TRAILER = "media/moviepy_trailer_bbb.mp4"
MKV_MUSIC = "media/linphone_four_hands_together.mkv"
FR_OPUS = "asterisk_dev/fr/agent-alreadyon.opus"

# relpath -> (source codec, source sample rate, source channels)
REAL_MEDIA = {
    JFK: ("pcm_s16le", 16000, 1),
    TRAILER: ("mp3", 44100, 2),
    MKV_MUSIC: ("opus", 48000, 2),
    FR_OPUS: ("opus", 48000, 1),
}


def declared_audio_duration_s(path: Path) -> float:
    """What the container says its (first) audio stream lasts, read independently with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        if stream.duration:
            return float(stream.duration * stream.time_base)
        return container.duration / av.time_base


def wav_params(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()


@pytest.fixture(scope="module")
def decoded(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], np.ndarray]:
    """Samples of a shared-data file, decoded once per module."""
    folder = tmp_path_factory.mktemp("decoded")
    cache: dict[str, np.ndarray] = {}

    def get(relpath: str) -> np.ndarray:
        if relpath not in cache:
            dest = folder / (Path(relpath).stem + ".wav")
            cache[relpath] = load_wav(decode_to_wav(mf.shared_data(relpath), dest).path)
        return cache[relpath]

    return get


# --- decoding real media ---------------------------------------------------------------------


@pytest.mark.parametrize("relpath", REAL_MEDIA)
def test_real_media_decodes_to_16k_mono_s16(relpath: str, tmp_path: Path) -> None:
    src = mf.shared_data(relpath)
    dest = tmp_path / "out" / "audio.wav"

    result = decode_to_wav(src, dest)

    assert result.path == dest
    channels, width, rate, n_frames = wav_params(dest)
    assert (channels, width, rate) == (1, 2, SAMPLE_RATE)
    assert result.duration_s == pytest.approx(n_frames / SAMPLE_RATE)
    assert result.duration_s == pytest.approx(declared_audio_duration_s(src), abs=0.1)
    codec, source_rate, source_channels = REAL_MEDIA[relpath]
    assert result.source_codec == codec
    assert (result.source_sample_rate, result.source_channels) == (source_rate, source_channels)
    assert list(dest.parent.iterdir()) == [dest], "no temporary file may be left behind"


def test_unicode_file_names_round_trip(tmp_path: Path) -> None:
    src = mf.unicode_name(tmp_path)
    dest = tmp_path / "out" / f"{src.stem} 16k.wav"

    result = decode_to_wav(src, dest)

    assert result.duration_s == pytest.approx(11.0, abs=0.01)
    assert dest.exists()


def test_digital_silence_is_valid_audio(tmp_path: Path) -> None:
    result = decode_to_wav(mf.silence(tmp_path), tmp_path / "out.wav")

    assert result.duration_s == pytest.approx(10.0)
    assert not load_wav(result.path).any()


def test_a_few_corrupt_packets_are_skipped_with_a_warning_and_sync_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = mf.corrupt_middle(tmp_path)

    with caplog.at_level(logging.WARNING, logger="cpw_resources.speech.media"):
        result = decode_to_wav(src, tmp_path / "out.wav")

    # Skipped packets are replaced by silence, so the length (and subtitle sync) is kept.
    assert result.duration_s == pytest.approx(20.0, abs=0.1)
    assert any(
        "undecodable" in r.getMessage() and src.name in r.getMessage() for r in caplog.records
    )


# --- bad inputs ------------------------------------------------------------------------------

BAD_INPUTS = [
    (mf.zero_byte, EmptyFileError, "empty (0 bytes)"),
    (mf.not_media, NotMediaError, "not an audio or video file"),
    (mf.random_bytes, NotMediaError, "not an audio or video file"),
    (mf.pdf_as_mkv, NotMediaError, "not an audio or video file"),
    (mf.video_only, NoAudioStreamError, "no audio track"),
    (mf.truncated, CorruptMediaError, "probably truncated"),
    (mf.truncated_mp4, CorruptMediaError, "probably truncated"),
]


@pytest.mark.parametrize(
    ("make", "error", "problem"), BAD_INPUTS, ids=[make.__name__ for make, _, _ in BAD_INPUTS]
)
def test_bad_input_raises_its_error_and_writes_nothing(
    make: Callable[[Path], Path], error: type[MediaError], problem: str, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    src = make(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(MediaError) as info:
        decode_to_wav(src, out / "audio.wav")

    assert type(info.value) is error
    assert info.value.path == src
    assert src.name in str(info.value)
    assert problem in str(info.value)
    assert list(out.iterdir()) == [], "neither dest nor a temporary file may be left"


def test_truncation_message_names_both_durations(tmp_path: Path) -> None:
    with pytest.raises(CorruptMediaError) as info:
        decode_to_wav(mf.truncated(tmp_path), tmp_path / "out.wav")

    assert "0:20.0" in info.value.problem
    assert "0:07" in info.value.problem


def test_failed_decode_keeps_the_previous_dest(tmp_path: Path) -> None:
    folder = tmp_path / "title"
    folder.mkdir()
    dest = folder / "audio.wav"
    dest.write_bytes(b"previous")

    with pytest.raises(NoAudioStreamError):
        decode_to_wav(mf.video_only(folder), dest)

    assert dest.read_bytes() == b"previous"
    assert sorted(p.name for p in folder.iterdir()) == ["audio.wav", "video only.mp4"]


def test_empty_file_with_unicode_name_is_named_in_the_error(tmp_path: Path) -> None:
    src = tmp_path / mf.UNICODE_NAME
    src.write_bytes(b"")

    with pytest.raises(EmptyFileError, match="पार्ट 1"):
        decode_to_wav(src, tmp_path / "out.wav")


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_missing_path_or_folder_is_a_media_error(kind: str, tmp_path: Path) -> None:
    src = tmp_path / "film.mkv"
    if kind == "folder":
        src.mkdir()

    with pytest.raises(MediaError, match="film.mkv"):
        decode_to_wav(src, tmp_path / "out.wav")


# --- load_wav --------------------------------------------------------------------------------


def test_load_wav_returns_float32_mono_in_range(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    left = np.full(1000, 16384, dtype=np.int16)
    right = np.full(1000, -32768, dtype=np.int16)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(np.stack([left, right], axis=1).tobytes())

    samples = load_wav(path)

    assert samples.dtype == np.float32
    assert samples.shape == (1000,)
    assert samples[0] == pytest.approx((0.5 - 1.0) / 2)


def test_load_wav_of_a_non_wav_is_corrupt_media(tmp_path: Path) -> None:
    with pytest.raises(CorruptMediaError):
        load_wav(mf.not_media(tmp_path))


# --- fingerprint -----------------------------------------------------------------------------

FINGERPRINT_KEYS = {
    "duration_s",
    "loudness_dbfs",
    "peak_dbfs",
    "speech_ratio",
    "snr_db",
    "music_ratio",
    "silence_ratio",
}


def test_speech_scores_far_more_speech_than_a_music_trailer(decoded) -> None:
    speech = fingerprint(decoded(JFK))
    trailer = fingerprint(decoded(TRAILER))

    assert set(speech) == FINGERPRINT_KEYS
    assert speech["duration_s"] == pytest.approx(11.0)
    assert speech["speech_ratio"] > 0.45
    assert trailer["speech_ratio"] < 0.15
    assert speech["speech_ratio"] - trailer["speech_ratio"] > 0.3
    assert trailer["music_ratio"] > speech["music_ratio"] + 0.3
    assert speech["snr_db"] > 15


def test_music_is_music_not_speech(decoded) -> None:
    music = fingerprint(decoded(MKV_MUSIC))

    assert music["speech_ratio"] < 0.1
    assert music["music_ratio"] > 0.5


def test_french_speech_is_speech(decoded) -> None:
    assert fingerprint(decoded(FR_OPUS))["speech_ratio"] > 0.45


def test_digital_silence_fingerprint(tmp_path: Path) -> None:
    result = fingerprint(load_wav(mf.silence(tmp_path)))

    assert result["loudness_dbfs"] <= -119
    assert result["peak_dbfs"] <= -119
    assert result["speech_ratio"] == 0
    assert result["music_ratio"] == 0
    assert result["silence_ratio"] == 1
    assert result["duration_s"] == pytest.approx(10.0)


def test_white_noise_is_neither_speech_nor_music() -> None:
    noise = np.random.default_rng(0).standard_normal(10 * SAMPLE_RATE).astype(np.float32) * 0.05

    result = fingerprint(noise)

    assert result["speech_ratio"] < 0.05
    assert result["music_ratio"] < 0.05
    assert result["silence_ratio"] == 0


def test_steady_tone_counts_as_music_and_full_scale_reads_0_dbfs() -> None:
    t = np.arange(5 * SAMPLE_RATE) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)

    result = fingerprint(tone)

    assert result["music_ratio"] > 0.9
    assert result["peak_dbfs"] == pytest.approx(0.0, abs=0.01)
    assert result["loudness_dbfs"] == pytest.approx(-3.01, abs=0.05)  # RMS of a sine


def test_fingerprint_of_nothing_does_not_fail() -> None:
    result = fingerprint(np.zeros(0, dtype=np.float32))

    assert result["duration_s"] == 0
    assert result["loudness_dbfs"] == -120


def test_fingerprint_handles_minutes_of_audio(decoded) -> None:
    # Five minutes built from real speech: ratios stay those of the short clip (the joins
    # between copies shift them a little).
    long = np.tile(decoded(JFK), 28)

    result = fingerprint(long)

    assert result["duration_s"] == pytest.approx(308.0)
    clip = fingerprint(decoded(JFK))
    assert result["speech_ratio"] == pytest.approx(clip["speech_ratio"], abs=0.1)


def test_fingerprint_does_not_depend_on_fft_chunking(
    decoded, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = decoded(JFK)
    whole = fingerprint(samples)

    monkeypatch.setattr(media, "_CHUNK_FRAMES", 7)

    assert fingerprint(samples) == whole
