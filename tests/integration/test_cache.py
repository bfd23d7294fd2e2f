"""Re-running a title reuses its artifacts; a changed input recomputes exactly what it affects."""

from __future__ import annotations

import json

import polars as pl

from tests.conftest import JFK, copy_to

CACHED = ["audio", "transcript", "glossary", "translation", "enhanced_translation", "subtitles"]


def _hits(store, run) -> dict[str, bool]:
    rows = store.read("stage_metrics").filter(pl.col("run_id") == run.result.run_id)
    return dict(zip(rows["asset"], rows["cache_hit"], strict=True))


def test_cache_hits_and_selective_recompute(run_title, media_dir, store):
    media = copy_to(JFK, media_dir, "Ask Not.wav")
    first = run_title(media)
    assert first.success
    assert not any(_hits(store, first)[a] for a in CACHED)
    srt_stat = first.srt().stat()

    second = run_title(media)
    assert second.success and second.key == first.key
    assert all(_hits(store, second)[a] for a in CACHED)
    assert first.srt().stat().st_mtime_ns == srt_stat.st_mtime_ns  # not rewritten
    assert store.read("training_examples").height == 1  # a cache hit is not new training data
    transcript_meta = [e.materialization.metadata for e in
                       second.result.get_asset_materialization_events()
                       if e.asset_key.path == ["transcript"]][0]
    assert transcript_meta["cache_hit"].value == 1 and transcript_meta["words"].value >= 20

    # A glossary sidecar changes the glossary, whose names Whisper hears as hotwords: the
    # transcript and everything after it re-run; the audio is reused.
    media.with_name("Ask Not.glossary.tsv").write_text("Americans\t\tpeople\n")
    third = run_title(media)
    hits = _hits(store, third)
    assert [a for a in CACHED if not hits[a]] == ["transcript", "glossary", "translation",
                                                  "enhanced_translation", "subtitles"]
    given = json.loads((third.dir / "transcript.json").read_text())["names"]
    assert given["given_as"] == "hotwords" and given["given"] == ["Americans"]
    assert given["occurrences"] == {"Americans": 1}

    # Bilingual output only touches the subtitles stage.
    fourth = run_title(media, bilingual=True)
    hits = _hits(store, fourth)
    assert [a for a in CACHED if not hits[a]] == ["subtitles"]

    # A different beam changes the transcript and everything that reads it.
    fifth = run_title(media, bilingual=True, beam_size=2)
    hits = _hits(store, fifth)
    assert hits["audio"] and not hits["transcript"] and not hits["translation"]
    assert store.read("training_examples").height == 3  # first run, new names, new beam


def test_a_damaged_artifact_is_recomputed(run_title, media_dir, store):
    media = copy_to(JFK, media_dir)
    first = run_title(media)
    (first.dir / "transcript.json").write_text("{}")
    second = run_title(media)
    assert second.success
    hits = _hits(store, second)
    assert hits["audio"] and not hits["transcript"]
    assert len((first.dir / "transcript.json").read_text()) > 100
