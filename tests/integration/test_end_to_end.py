"""A real title through the real asset graph: Dagster instance, faster-whisper, DuckDB."""

from __future__ import annotations

import json
from collections import Counter

import duckdb
import jiwer
import pysubs2

from tests.conftest import JFK, JFK_TEXT, SAMPLE, copy_to

WER_LIMIT = 0.15  # tiny.en gets ~0.0 here; a broken pipeline (lost segments, garbage) is far above


def _words(text: str) -> str:
    return " ".join(jiwer.RemovePunctuation()(text.lower()).split())


def test_jfk_end_to_end(run_title, media_dir, store, home):
    media = copy_to(JFK, media_dir, "JFK Inaugural (1961).wav")
    # A reference subtitle in the spoken language gives the training example its WER.
    media.with_name("JFK Inaugural (1961).en.srt").write_text(
        f"1\n00:00:00,000 --> 00:00:11,000\n{JFK_TEXT}\n")
    run = run_title(media)
    assert run.success
    assert run.key == "jfk_inaugural_1961"

    srt = pysubs2.load(str(run.srt()))
    vtt = pysubs2.load(str(run.vtt()))
    assert len(srt) >= 2 and len(vtt) == len(srt)
    hypothesis = " ".join(event.plaintext.replace("\n", " ") for event in srt)
    wer = jiwer.wer(_words(JFK_TEXT), _words(hypothesis))
    assert wer <= WER_LIMIT, (wer, hypothesis)
    assert run.vtt().read_text().startswith("WEBVTT")

    # No LLM configured: the enhanced translation is the translation, and says why.
    enhanced = json.loads((run.dir / "enhanced.en.json").read_text())
    translation = json.loads((run.dir / "translation.en.json").read_text())
    assert enhanced["segments"] == translation["segments"]
    assert enhanced["enhancement"].startswith("not enhanced: no provider")
    assert {d["status"] for d in enhanced["decisions"]} == {"kept"}

    stages = store.read("stage_metrics")
    assert sorted(stages["asset"].to_list()) == sorted(
        ["media", "audio", "transcript", "glossary", "translation", "enhanced_translation",
         "subtitles"])
    assert (stages["status"] == "success").all()
    assert stages.filter(stages["asset"] == "transcript")["wall_seconds"][0] > 0
    examples = store.read("training_examples")
    assert examples.height == 1 and examples["words"][0] >= 20
    assert examples["model"][0] == "tiny.en" and examples["language"][0] == "en"
    assert examples["wer"][0] is not None and examples["wer"][0] <= WER_LIMIT
    assert abs(examples["wer"][0] - wer) < 0.05  # the same words as the subtitles

    # The analyst's view: a read-only DuckDB session over the same events.
    with duckdb.connect(str(home / "cpw.duckdb"), read_only=True) as con:
        status, cues = con.execute("select status, cues from runs").fetchone()
        assert status == "success" and cues == len(srt)
        n_stages = con.execute(
            "select count(*) from stage_metrics where title = ?", [run.key]).fetchone()[0]
        assert n_stages == 7

    # Numeric metadata Dagster can plot, on every asset.
    for event in run.result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        assert metadata["seconds"].value >= 0, event.asset_key


def test_passthrough_reason_recorded(run_title, media_dir, home):
    run = run_title(copy_to(JFK, media_dir))
    translation = json.loads((run.dir / "translation.en.json").read_text())
    transcript = json.loads((run.dir / "transcript.json").read_text())
    assert translation["passthrough_reason"].startswith("source already in target language")
    assert [s["id"] for s in translation["segments"]] == [s["id"] for s in transcript["segments"]]
    assert [s["start"] for s in translation["segments"]] == [
        s["start"] for s in transcript["segments"]]


def test_french_sample_is_translated_to_english(run_title, media_dir):
    run = run_title(copy_to(SAMPLE, media_dir), whisper_model="base", bilingual=True)
    assert run.success
    transcript = json.loads((run.dir / "transcript.json").read_text())
    translation = json.loads((run.dir / "translation.en.json").read_text())
    assert transcript["language"] == "fr"
    assert translation["backend"] == "whisper-translate:base"
    assert len(translation["segments"]) == len(transcript["segments"]) > 0
    english = " ".join(e.plaintext for e in pysubs2.load(str(run.srt())))
    reference = SAMPLE.with_suffix(".en.txt").read_text()
    # Recall of the human script's content words: base gets ~0.4; the French transcript
    # passed through untranslated scores ~0.1, an empty or garbled output ~0.
    recall = _content_recall(reference, english)
    assert recall >= 0.3, (recall, english)
    bilingual = pysubs2.load(str(run.dir / "voicemail_fr.fr-en.srt"))
    assert len(bilingual) >= len(pysubs2.load(str(run.srt())))
    assert any("agent" in e.plaintext.lower().split("\n")[0] for e in bilingual)
    # Every French word is shown, none cut short with "…" (long lines split over cues).
    said = Counter(" ".join(s["text"] for s in transcript["segments"]).split())
    shown = Counter(" ".join(e.plaintext.split("\n")[0] for e in bilingual).split())
    assert shown == said and not any("…" in e.plaintext for e in bilingual)


def _content_recall(reference: str, hypothesis: str) -> float:
    def content(text: str) -> set[str]:
        return {w for w in _words(text).split() if len(w) >= 5}

    wanted = content(reference)
    return len(wanted & content(hypothesis)) / len(wanted)


def test_batched_pipeline_and_beam_settings(run_title, media_dir):
    run = run_title(copy_to(JFK, media_dir), batch_size=4, beam_size=2)
    assert run.success
    transcript = json.loads((run.dir / "transcript.json").read_text())
    assert transcript["config"]["batch_size"] == 4 and transcript["config"]["beam_size"] == 2
    text = " ".join(s["text"] for s in transcript["segments"])
    assert jiwer.wer(_words(JFK_TEXT), _words(text)) <= WER_LIMIT, text
    assert all(s["words"] for s in transcript["segments"])


def test_a_broken_reference_subtitle_is_reported_and_harms_nothing(run_title, media_dir,
                                                                   store):
    media = copy_to(JFK, media_dir, "Ask Not.wav")
    media.with_name("Ask Not.en.srt").write_bytes(b"\x00\x01\x02 not a subtitle file")
    run = run_title(media)
    assert run.success and run.srt().stat().st_size > 0
    errors = store.read("input_errors")
    assert errors["path"].to_list() == [str(media.with_name("Ask Not.en.srt"))]
    assert "Ask Not.en.srt" in errors["message"][0]
    assert store.read("training_examples")["wer"].to_list() == [None]
    metrics = set(store.read("quality")["metric"])
    assert "rule_compliance" in metrics and "bleu" not in metrics
