"""Bad input fails alone, says what is wrong with which file, and leaves nothing half-written."""

from __future__ import annotations

import json

import pysubs2
import pytest

from tests import media_fixtures as fx
from tests.conftest import JFK, copy_to


def _failure_message(result) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1, [e.step_key for e in failures]
    return failures[0].event_specific_data.error.message


@pytest.mark.parametrize(
    ("make", "error_class", "problem"),
    [
        (fx.zero_byte, "EmptyFileError", "empty"),
        (fx.not_media, "NotMediaError", "not"),
        (fx.random_bytes, "NotMediaError", "not"),
        (fx.pdf_as_mkv, "NotMediaError", "not"),
        (fx.video_only, "NoAudioStreamError", "audio"),
        (fx.truncated, "CorruptMediaError", "trunc"),
    ],
)
def test_bad_media_fails_clearly_and_harms_nothing(run_title, media_dir, store, make,
                                                    error_class, problem):
    bad = make(media_dir)
    run = run_title(bad)
    assert not run.success
    message = _failure_message(run.result)
    assert bad.name in message and problem in message.lower(), message

    errors = store.read("input_errors")
    assert errors.height == 1
    assert errors["error_class"][0] == error_class and errors["path"][0] == str(bad)
    assert errors["title"][0] == run.key
    runs = store.read("runs")
    assert runs["status"].to_list() == ["failed"] and runs["error_class"][0] == error_class
    stages = store.read("stage_metrics")
    assert stages.filter(stages["asset"] == "audio")["status"].to_list() == ["failed"]
    # Nothing half-written: no audio, no temporary file, the media itself untouched.
    assert not (run.dir / "audio.wav").exists()
    assert not [p for p in run.dir.iterdir() if p.name.endswith(".tmp")]
    assert bad.exists()


def test_a_bad_title_does_not_stop_a_good_one(run_title, media_dir, store):
    bad = run_title(fx.not_media(media_dir))
    good = run_title(copy_to(JFK, media_dir))
    assert not bad.success and good.success
    assert len(pysubs2.load(str(good.srt()))) >= 2
    runs = store.read("runs").sort("ts")
    assert runs["status"].to_list() == ["failed", "success"]


def test_silence_gives_an_empty_subtitle_file(run_title, media_dir):
    run = run_title(fx.silence(media_dir), whisper_model="base")
    assert run.success
    assert len(pysubs2.load(str(run.srt()), format_="srt")) == 0
    assert run.vtt().read_text().strip() == "WEBVTT"
    translation = json.loads((run.dir / "translation.en.json").read_text())
    assert translation["passthrough_reason"] == "no speech"


@pytest.mark.parametrize("relpath", ["media/moviepy_trailer_bbb.mp4",
                                     "media/linphone_four_hands_together.mkv"])
def test_music_only_gives_no_cues(run_title, media_dir, relpath):
    run = run_title(copy_to(fx.shared_data(relpath), media_dir), whisper_model="base")
    assert run.success
    assert len(pysubs2.load(str(run.srt()), format_="srt")) == 0
    transcript = json.loads((run.dir / "transcript.json").read_text())
    assert transcript["segments"] == []


def test_odd_names_and_a_few_corrupt_packets_still_work(run_title, media_dir):
    odd = copy_to(JFK, media_dir, fx.UNICODE_NAME)
    run = run_title(odd)
    assert run.success and run.key == "dil_chahta_hai_paartt_1_2001"
    assert len(pysubs2.load(str(run.srt()))) >= 2

    damaged = run_title(fx.corrupt_middle(media_dir))
    assert damaged.success
