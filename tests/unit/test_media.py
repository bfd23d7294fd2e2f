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
    "highband_ratio",
    "spectral_flatness",
    "speech_rate",
}


def test_the_optimizers_features_tell_speech_from_noise(decoded) -> None:
    speech = fingerprint(decoded(JFK))
    noise = fingerprint(np.random.default_rng(0).standard_normal(16000 * 5).astype(
        np.float32) * 0.1)
    assert 2.0 <= speech["speech_rate"] <= 7.0  # syllables per second of speech
    assert speech["highband_ratio"] < 0.05 < noise["highband_ratio"]  # white: ~half above 4k
    assert speech["spectral_flatness"] < 0.1 < noise["spectral_flatness"]
    assert fingerprint(np.zeros(16000, dtype=np.float32))["speech_rate"] == 0.0


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


def test_fingerprint_wav_streams_to_the_same_values(
    decoded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blocks that split frames (1001 samples, 30 ms frames of 480) and ones far bigger than a
    # frame chunk must give what the whole array gives.
    path = tmp_path / "five minutes.wav"
    samples = np.tile(decoded(JFK), 28)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes((samples * 32768).astype("<i2").tobytes())
    whole = fingerprint(load_wav(path))

    for block in (1001, 480 * 7, 1 << 22):
        monkeypatch.setattr(media, "WAV_BLOCK_SAMPLES", block)
        assert media.fingerprint_wav(path) == pytest.approx(whole, abs=1e-3), block
    assert whole["speech_ratio"] > 0.45


# --- reading a WAV span by span --------------------------------------------------------------


def test_wav_reader_spans_match_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    frames = np.arange(-5000, 5000, dtype=np.int16).reshape(-1, 2)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(frames.tobytes())
    reader = media.WavReader(path)
    whole = load_wav(path)

    assert reader.frames == whole.size == 5000
    assert reader.duration_s == pytest.approx(5000 / SAMPLE_RATE)
    np.testing.assert_array_equal(reader.read(1234, 2345), whole[1234:2345])
    np.testing.assert_array_equal(np.concatenate(list(reader.blocks(777))), whole)
    assert reader.read(4990, 9999).size == 10  # clipped to the file, never past it
    assert reader.read(-10, 0).size == 0


@pytest.mark.parametrize("make", [mf.not_media, mf.zero_byte])
def test_wav_reader_of_a_non_wav_names_the_file(make, tmp_path: Path) -> None:
    path = make(tmp_path)
    with pytest.raises(CorruptMediaError, match=path.name):
        media.WavReader(path)


def test_wav_reader_of_a_missing_file_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="gone.wav"):
        media.WavReader(tmp_path / "gone.wav")


# --- which audio track -----------------------------------------------------------------------

FR_MONO = mf.Track(mf.tone(300), "mono", "fre")
EN_STEREO = mf.Track(mf.tone(1000), "stereo", "eng")


def decoded_hz(src: Path, dest: Path, track: int | None = None) -> float:
    return mf.dominant_hz(load_wav(decode_to_wav(src, dest, track=track).path))


@pytest.mark.parametrize("name", ["two.mkv", "two.mp4"])
def test_french_mono_first_english_stereo_second(name: str, tmp_path: Path) -> None:
    # The file. MP4 flags its first track default, Matroska here flags none.
    src = mf.multi_track(tmp_path, name, [FR_MONO, EN_STEREO])
    flagged = media.choose_audio_track(src).track.default

    english = media.choose_audio_track(src, language="en")
    french = media.choose_audio_track(src, language="fr")
    unmatched = media.choose_audio_track(src, language="hi")

    assert english.track.number == 1 and "language tag eng" in english.reason
    assert french.track.number == 0 and "language tag fre" in french.reason
    assert unmatched.track.number == (0 if flagged else 1)
    assert unmatched.reason == ("flagged default" if flagged else "most channels (2)")
    assert (english.track.language, english.track.channels) == ("eng", 2)
    assert english.summary()["tracks"] == 2


def test_decode_without_a_pick_follows_the_rule_not_ffmpegs_first_track(tmp_path: Path) -> None:
    src = mf.multi_track(tmp_path, "two.mkv", [FR_MONO, EN_STEREO])
    with av.open(str(src)) as container:  # FFmpeg's own "best" is the French track here
        assert container.streams.best("audio").index == 0

    assert decoded_hz(src, tmp_path / "a.wav") == pytest.approx(1000, abs=5)
    assert decoded_hz(src, tmp_path / "b.wav", track=0) == pytest.approx(300, abs=5)


THREE = [
    mf.Track(mf.tone(500), "stereo", "eng"),
    mf.Track(mf.tone(1000), "stereo", "hin", default=True),
    mf.Track(mf.tone(2000), "5.1", "hin"),
]


@pytest.mark.parametrize(("language", "number", "reason"), [
    (None, 1, "flagged default"),
    ("hi", 1, "language tag hin matches the wanted language hi; flagged default"),
    ("en", 0, "language tag eng matches the wanted language en"),
    ("de", 1, "flagged default"),
])
def test_three_tracks_language_then_default(language, number, reason, tmp_path: Path) -> None:
    src = mf.multi_track(tmp_path, "three.mkv", THREE)

    choice = media.choose_audio_track(src, language=language)

    assert (choice.track.number, choice.reason) == (number, reason)


@pytest.mark.parametrize(("pick", "number"), [
    ("2", 2), (" 0 ", 0), ("eng", 0), ("en", 0), ("EN-gb", 0), ("hi", 1), ("hin", 1),
])
def test_a_pick_by_number_or_language_tag_wins(pick, number, tmp_path: Path) -> None:
    src = mf.multi_track(tmp_path, "three.mkv", THREE)

    choice = media.choose_audio_track(src, pick=pick, language="hi")

    assert choice.track.number == number
    assert choice.reason.startswith(f"CPW_AUDIO_TRACK = {pick.strip()}")
    hz = {0: 500, 1: 1000, 2: 2000}[number]
    assert decoded_hz(src, tmp_path / "out.wav", choice.track.number) == pytest.approx(hz, abs=5)


@pytest.mark.parametrize("pick", ["3", "de", "-1", "1.5", "a:1", "٣", "99999999999999999999"])
def test_a_pick_the_file_lacks_is_one_line_listing_its_tracks(pick, tmp_path: Path) -> None:
    src = mf.multi_track(tmp_path, "three.mkv", THREE)

    with pytest.raises(MediaError) as raised:
        media.choose_audio_track(src, pick=pick, pick_source="three.json audio_track")

    message = str(raised.value)
    assert "\n" not in message and message.startswith(str(src))
    assert f"three.json audio_track = {pick!r}" in message
    assert "0: eng, opus, 2 ch; 1: hin, opus, 2 ch, default; 2: hin, opus, 6 ch" in message


def test_decoding_a_track_number_the_file_lacks_is_a_media_error(tmp_path: Path) -> None:
    src = mf.multi_track(tmp_path, "two.mkv", [FR_MONO, EN_STEREO])
    with pytest.raises(MediaError, match="has no audio track 2; its audio tracks are 0: fre"):
        decode_to_wav(src, tmp_path / "out.wav", track=2)
    assert not (tmp_path / "out.wav").exists()


def test_untagged_and_undetermined_tracks_fall_back_to_channels(tmp_path: Path) -> None:
    src = mf.multi_track(tmp_path, "untagged.mkv", [
        mf.Track(mf.tone(300), "mono"), mf.Track(mf.tone(1000), "stereo", "und")])

    choice = media.choose_audio_track(src, language="fr")

    assert choice.track.number == 1 and choice.reason == "most channels (2)"
    # Matroska reads "und" back as no tag at all; either way no language is known.
    assert [media.language_code(t.language) for t in choice.tracks] == [None, None]


def test_equal_tracks_take_the_first_and_a_single_track_says_so(tmp_path: Path) -> None:
    twins = mf.multi_track(tmp_path, "twins.mkv", [FR_MONO, mf.Track(mf.tone(700), "mono")])
    single = mf.multi_track(tmp_path, "single.mkv", [EN_STEREO])

    assert media.choose_audio_track(twins).reason == "first of the equal tracks"
    assert media.choose_audio_track(single, pick="").reason == "the only audio track"


def test_undecodable_tracks_are_skipped_unless_picked(tmp_path: Path) -> None:
    tracks = [media.AudioTrack(0, 0, "eng", None, 6, True),
              media.AudioTrack(1, 1, "eng", "aac", 2, False)]
    src = tmp_path / "film.mkv"

    assert media.select_track(tracks, src, language="en").track.number == 1
    with pytest.raises(MediaError, match="cannot decode; its audio tracks are 0: eng, "
                                         "undecodable codec, 6 ch, default"):
        media.select_track(tracks, src, pick="0")


@pytest.mark.parametrize(("tag", "code"), [
    ("fre", "fr"), ("fra", "fr"), ("FR", "fr"), ("fr-CA", "fr"), ("pt_BR", "pt"),
    ("hin", "hi"), ("ger", "de"), ("chi", "zh"), ("und", None), ("", None), (None, None),
    ("tlh", "tlh"),
])
def test_language_code_normalises_the_forms_files_use(tag, code) -> None:
    assert media.language_code(tag) == code


def test_probe_reports_the_track_the_rule_chooses(tmp_path: Path) -> None:
    src = mf.multi_track(tmp_path, "two.mkv", [FR_MONO, EN_STEREO])

    result = media.probe(src)

    assert (result.channels, result.audio_streams) == (2, 2)


def test_a_crafted_language_tag_cannot_break_the_one_line_error(tmp_path: Path) -> None:
    tag = "eng\nINJECTED: all good " + "y" * 5000
    src = mf.multi_track(tmp_path, "crafted.mka", [mf.Track(mf.tone(300), language=tag)])

    with pytest.raises(MediaError) as raised:
        media.choose_audio_track(src, pick="fr")

    message = str(raised.value)
    assert "\n" not in message and len(message) < 500 + len(str(src))
    assert "0: eng?INJECTED?all?good?yyy" in message
    assert media.choose_audio_track(src).track.language == "eng?INJECTED?all?good?" + "y" * 13
