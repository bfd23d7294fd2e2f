"""Which audio track a title is transcribed from: the documented rule, the user's pick (setting
or sidecar), what the metadata says, and a pick the file does not have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpw_resources.speech.media import load_wav
from tests import media_fixtures as mf
from tests.conftest import TitleRun

AUDIO = ["media", "audio"]
# Tracks told apart by their tone: French 300 Hz mono first, English 1 kHz stereo second, no
# default flag (the issue's file), and a third, Hindi 5.1 at 2 kHz, in the three-track film.
FR, EN, HI = (mf.Track(mf.tone(300), "mono", "fre"), mf.Track(mf.tone(1000), "stereo", "eng"),
              mf.Track(mf.tone(2000), "5.1", "hin"))
HZ = {0: 300, 1: 1000, 2: 2000}


def audio_metadata(run: TitleRun) -> dict:
    [event] = [e for e in run.result.get_asset_materialization_events()
               if e.asset_key.to_user_string() == "audio"]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def decoded_track(run: TitleRun) -> int:
    """Which track's tone ``audio.wav`` holds."""
    hz = mf.dominant_hz(load_wav(run.dir / "audio.wav"))
    return min(HZ, key=lambda number: abs(HZ[number] - hz))


def sidecar(media: Path, **fields: object) -> None:
    media.with_suffix(".json").write_text(json.dumps(fields), encoding="utf-8")


def test_two_tracks_english_speech_second_is_transcribed_and_said(run_title, media_dir,
                                                                   instance):
    # French speech mono first, English speech stereo second, no flags: most channels wins,
    # and the metadata, the log and fingerprint.json say which track and why.
    film = mf.multi_track(media_dir, "Two Tracks.mkv", [
        mf.Track(mf.speech("asterisk_dev/fr/agent-alreadyon.opus"), "mono", "fre"),
        mf.Track(mf.speech("jfk.wav"), "stereo", "eng")])

    run = run_title(film)

    assert run.success
    track = audio_metadata(run)["audio_track"]
    assert track == {"index": 1, "stream_index": 1, "language": "eng", "codec": "opus",
                     "channels": 2, "default": False, "reason": "most channels (2)",
                     "tracks": 2}
    assert json.loads((run.dir / "fingerprint.json").read_text())["audio_track"] == track
    logs = [e.user_message for e in instance.all_logs(run.result.run_id)]
    assert any("audio track 1: eng, opus, 2 ch of 2, because: most channels (2)" in m
               for m in logs), logs
    transcript = json.loads((run.dir / "transcript.json").read_text())
    assert "country" in " ".join(s["text"] for s in transcript["segments"]).lower()


@pytest.mark.parametrize(("settings", "fields", "number", "reason"), [
    ({}, {"language": "French"}, 0, "language tag fre matches the wanted language fr"),
    ({"language": "hi"}, {}, 2, "language tag hin matches the wanted language hi"),
    ({"audio_track": "0"}, {}, 0, "CPW_AUDIO_TRACK = 0"),
    ({"audio_track": "eng"}, {}, 1, "CPW_AUDIO_TRACK = eng"),
    ({"audio_track": "eng"}, {"audio_track": 2}, 2, "Film.json audio_track = 2"),
    ({"audio_track": "0"}, {"audio_track": "hi"}, 2, "Film.json audio_track = hi"),
    ({"language": "fr"}, {"audio_track": "en-US"}, 1, "Film.json audio_track = en-US"),
])
def test_the_pick_and_the_wanted_language_choose_the_track(run_title, media_dir, settings,
                                                           fields, number, reason):
    film = mf.multi_track(media_dir, "Film.mkv", [FR, EN, HI])
    if fields:
        sidecar(film, **fields)

    run = run_title(film, only=AUDIO, **settings)

    assert run.success
    assert decoded_track(run) == number
    track = audio_metadata(run)["audio_track"]
    assert (track["index"], track["reason"]) == (number, reason)


@pytest.mark.parametrize(("settings", "fields", "said"), [
    ({"audio_track": "de"}, {}, "CPW_AUDIO_TRACK = 'de'"),
    ({"audio_track": "3"}, {}, "CPW_AUDIO_TRACK = '3'"),
    ({}, {"audio_track": 7}, "Film.json audio_track = '7'"),
    ({"audio_track": "0"}, {"audio_track": "spa"}, "Film.json audio_track = 'spa'"),
])
def test_a_pick_the_file_lacks_fails_alone_in_one_line(run_title, media_dir, store, settings,
                                                       fields, said):
    film = mf.multi_track(media_dir, "Film.mkv", [FR, EN])
    if fields:
        sidecar(film, **fields)

    run = run_title(film, only=AUDIO, **settings)

    assert not run.success
    [failure] = [e for e in run.result.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.message
    assert said in message and "Film.mkv" in message, message
    assert "0: fre, opus, 1 ch; 1: eng, opus, 2 ch" in message
    errors = store.read("input_errors")
    assert errors["error_class"].to_list() == ["MediaError"]
    assert "\n" not in errors["message"][0] and errors["path"][0] == str(film)
    assert not (run.dir / "audio.wav").exists()


@pytest.mark.parametrize("value", [True, [1], {"track": 1}, "", "x" * 100])
def test_a_malformed_sidecar_pick_names_the_sidecar(run_title, media_dir, store, value):
    film = mf.multi_track(media_dir, "Film.mkv", [FR, EN])
    sidecar(film, audio_track=value)

    run = run_title(film, only=AUDIO)

    assert not run.success
    errors = store.read("input_errors")
    assert errors["path"].to_list() == [str(film.with_suffix(".json"))]
    assert "audio_track" in errors["message"][0] and "\n" not in errors["message"][0]


def test_the_choice_is_part_of_the_audio_cache_key(run_title, media_dir):
    film = mf.multi_track(media_dir, "Film.mkv", [FR, EN])

    def run(**settings: object) -> tuple[int, int, str]:
        done = run_title(film, only=AUDIO, **settings)
        track = audio_metadata(done)["audio_track"]
        return audio_metadata(done)["cache_hit"], decoded_track(done), track["reason"]

    assert run() == (0, 1, "most channels (2)")
    assert run() == (1, 1, "most channels (2)")
    assert run(audio_track="fre") == (0, 0, "CPW_AUDIO_TRACK = fre")
    assert run(audio_track="fre") == (1, 0, "CPW_AUDIO_TRACK = fre")
    sidecar(film, audio_track="fre")
    # Same track, chosen for another reason: decoded again so the metadata stays true.
    assert run(audio_track="fre") == (0, 0, "Film.json audio_track = fre")
