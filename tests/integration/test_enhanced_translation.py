"""``enhanced_translation`` through the real graph: the French sample transcribed and translated
by Whisper base, post-edited through the real OpenAI SDK against a 127.0.0.1 server; costs in
DuckDB, cache hits on a re-run, quality against a reference subtitle, and the checks."""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest

from tests.conftest import SAMPLE, copy_to
from tests.fake_llm import edit, serve
from tests.fake_service import fake_service, status

REFERENCE = SAMPLE.with_name("voicemail_fr.en.txt")
KEY = "sk-test-0123456789abcdefghij"


@pytest.fixture
def llm(monkeypatch):
    with fake_service() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("CPW_ENHANCE_PROVIDER", "openai:gpt-4o-mini")
        monkeypatch.setenv("CPW_ENHANCE_ALL", "true")
        monkeypatch.setenv("CPW_ENHANCE_BATCH_SIZE", "4")
        yield server


def _title(media_dir):
    media = copy_to(SAMPLE, media_dir, "Voicemail (2009).mka")
    media.with_name("Voicemail (2009).json").write_text(json.dumps(
        {"title": "Voicemail", "year": 2009, "characters": ["Asterisk"]}))
    # The human English script as one reference cue over the whole recording.
    script = " ".join(REFERENCE.read_text().split())
    media.with_name("Voicemail (2009).en.srt").write_text(
        f"1\n00:00:00,000 --> 00:00:44,000\n{script}\n")
    return media


def _meta(run, asset="enhanced_translation"):
    return [e.materialization.metadata for e in run.result.get_asset_materialization_events()
            if e.asset_key.path == [asset]][0]


def test_enhancement_is_costed_cached_and_scored(run_title, media_dir, store, llm, home,
                                                 monkeypatch):
    serve(llm)
    media = _title(media_dir)
    run = run_title(media, whisper_model="base")
    assert run.success
    translation = json.loads((run.dir / "translation.en.json").read_text())
    enhanced = json.loads((run.dir / "enhanced.en.json").read_text())
    n = len(translation["segments"])
    assert [(s["id"], s["start"], s["end"]) for s in enhanced["segments"]] == [
        (s["id"], s["start"], s["end"]) for s in translation["segments"]]
    assert {d["status"] for d in enhanced["decisions"]} == {"enhanced"}
    assert len(llm.requests) == -(-n // 4) and enhanced["enhancement"] == "enhanced"

    calls = store.read("api_calls")
    ok = calls.filter(calls["outcome"] == "ok")
    expected = sum(i * 0.15e-6 + o * 0.60e-6
                   for i, o in zip(ok["input_tokens"], ok["output_tokens"], strict=True))
    assert expected > 0 and ok["cost_usd"].sum() == pytest.approx(expected)
    assert _meta(run)["cost_usd"].value == pytest.approx(expected, abs=1e-6)
    with duckdb.connect(str(home / "cpw.duckdb"), read_only=True) as con:
        rows = con.execute("select title, sum(cost_usd) from api_calls group by title").fetchall()
    assert rows == [(run.key, pytest.approx(expected))]

    quality = store.read("quality")
    got = {(r["variant"], r["metric"]) for r in quality.iter_rows(named=True)}
    for variant in ("baseline", "enhanced"):
        assert {(variant, m) for m in ("bleu", "chrf", "rule_compliance")} <= got
    chrf = {r["variant"]: r["value"] for r in quality.iter_rows(named=True)
            if r["metric"] == "chrf"}
    assert chrf["baseline"] > 20 and chrf["enhanced"] >= chrf["baseline"]
    assert set(quality["reference"]) == {"Voicemail (2009).en.srt"}
    # The glossary name (given to Whisper as a prompt too) is spelled right in both.
    names = {r["variant"]: r["value"] for r in quality.iter_rows(named=True)
             if r["metric"] == "name_accuracy"}
    assert names == {"baseline": 1.0, "enhanced": 1.0}
    for name in ("enhancement_complete", "not_worse_than_baseline", "names_intact"):
        assert run.check(name).passed, name
    # The key is in no event file, log message or metadata.
    for path in (home / "events").rglob("*.parquet"):
        assert KEY.encode() not in path.read_bytes()
    for event in run.result.all_events:
        assert KEY not in (event.message or "") and KEY not in str(event.event_specific_data)

    # Another batch size re-runs the stage; every line comes from the cache, at no cost.
    monkeypatch.setenv("CPW_ENHANCE_BATCH_SIZE", "3")
    llm.program()
    again = run_title(media, whisper_model="base")
    assert again.success and len(llm.requests) == 0
    hits = store.read("api_calls").filter(store.read("api_calls")["outcome"] == "cache_hit")
    assert hits["segments"].to_list() == [n] and hits["cost_usd"].to_list() == [0.0]
    assert _meta(again)["cache_hits"].value == n and _meta(again)["cost_usd"].value == 0
    assert json.loads((again.dir / "enhanced.en.json").read_text())["segments"] == enhanced[
        "segments"]


def test_broken_names_fail_the_check_and_worse_text_warns(run_title, media_dir, store, llm):
    def vandal(segment, glossary):
        return edit(segment, glossary).replace("Asterisk", "Asterix").upper()

    serve(llm, editor=vandal)
    run = run_title(_title(media_dir), whisper_model="base")
    assert run.success  # checks report; they do not stop the subtitles
    names = run.check("names_intact")
    assert not names.passed and names.severity.value == "ERROR"
    examples = json.dumps(names.metadata["examples"].value, ensure_ascii=False)
    assert "Asterix" in examples.replace("ASTERIX", "Asterix")
    worse = run.check("not_worse_than_baseline")
    assert not worse.passed and worse.severity.value == "WARN"
    assert "bleu" in worse.metadata and run.srt().stat().st_size > 0


def test_provider_down_keeps_the_mt_text_flagged(run_title, media_dir, store, llm, monkeypatch):
    monkeypatch.setenv("CPW_BREAKER_FAIL_MAX", "1")
    llm.program(status(503))
    run = run_title(_title(media_dir), whisper_model="base")
    assert run.success
    translation = json.loads((run.dir / "translation.en.json").read_text())
    enhanced = json.loads((run.dir / "enhanced.en.json").read_text())
    assert enhanced["segments"] == translation["segments"]
    assert {d["status"] for d in enhanced["decisions"]} == {"failed"}
    assert not run.check("enhancement_complete").passed
    assert store.read("degradations")["kind"].to_list() == ["enhance_failed"]
    assert len(llm.requests) == 4  # one call's retries; then the breaker is open
    assert "MT text" in store.read("degradations")["fallback"][0]
    assert run.srt().stat().st_size > 0


def test_a_suggested_name_the_llm_wrote_is_remembered_as_confirmed_by_enhancement(
        run_title, media_dir, store, llm, home) -> None:
    """Episode 1 (the JFK clip) names Asterisk; episode 2 (the French sample) is given it as
    a suggestion, and the post-editor's accepted lines spell it: context_terms records that
    confirmation (source enhancement), and the rebuilt memory holds it."""
    from dagster import materialize

    from cpw_assets.context import context_memory
    from cpw_resources.language.memory import read_memory
    from cpw_resources.orchestration.resources import resources_for
    from cpw_resources.settings import Settings
    from tests.conftest import JFK

    serve(llm)
    resources = resources_for(Settings(home=home))
    first = copy_to(JFK, media_dir, "Voicemail S01E01.wav")
    first.with_suffix(".json").write_text(json.dumps(
        {"series": "Voicemail", "episode": 1, "characters": ["Asterisk"]}))
    assert run_title(first).success
    assert materialize([context_memory], resources=resources).success
    second = copy_to(SAMPLE, media_dir, "Voicemail S01E02.mka")
    second.with_name("Voicemail S01E02.json").write_text(json.dumps(
        {"series": "Voicemail", "episode": 2}))
    run = run_title(second, whisper_model="base")
    assert run.success
    given = json.loads((run.dir / "glossary.json").read_text())["terms"]
    assert [(t["term"], t["suggested"]) for t in given] == [("Asterisk", True)]
    enhanced = json.loads((run.dir / "enhanced.en.json").read_text())
    assert any("Asterisk" in s["text"] for s in enhanced["segments"])
    rows = store.read("context_terms").filter(pl.col("title") == run.key)
    assert rows.select("term", "source", "status").rows() == [
        ("Asterisk", "enhancement", "confirmed")]
    assert materialize([context_memory], resources=resources).success
    memory = read_memory(home / "context" / "memory.parquet")
    assert sorted(memory.select("term", "source", "title").rows()) == [
        ("Asterisk", "enhancement", run.key), ("Asterisk", "sidecar_json", "voicemail_s01e01")]

