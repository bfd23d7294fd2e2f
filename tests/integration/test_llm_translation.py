"""The LLM translation backend through the real graph and the real OpenAI SDK, against a
Chat Completions server on 127.0.0.1; a title that finishes when the provider is down; and
hostile text from a transcript and from replies, which never changes the subtitle files."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pysubs2
import pytest
from dagster import AssetCheckSeverity

from cpw_resources.records import read_segments
from cpw_resources.subtitles.rules import SubtitleRules, build_cues, check_cues
from tests.conftest import JFK, SAMPLE, copy_to
from tests.fake_service import fake_service, ok, status


def _chat_reply(request: dict) -> dict:
    segments = json.loads(request["messages"][-1]["content"])["segments"]
    content = json.dumps({"translations": [{"id": s["id"], "text": f"EN[{s['text']}]"}
                                           for s in segments]})
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": request["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140}}


@pytest.fixture
def openai_server(monkeypatch):
    with fake_service() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdefghij")
        monkeypatch.setenv("CPW_TRANSLATION_BACKEND", "llm")
        monkeypatch.setenv("CPW_TRANSLATION_LLM", "openai:gpt-4o-mini")
        monkeypatch.setenv("CPW_LLM_BATCH_SIZE", "4")
        yield server


def test_llm_backend_translates_in_batches(run_title, media_dir, store, openai_server):
    def reply(path: str):
        body = json.loads(openai_server.requests[-1]["body"])
        return ok(_chat_reply(body))

    openai_server.chooser = reply
    run = run_title(copy_to(SAMPLE, media_dir), whisper_model="base")
    assert run.success
    transcript = json.loads((run.dir / "transcript.json").read_text())
    translation = json.loads((run.dir / "translation.en.json").read_text())
    assert translation["backend"] == "llm:openai:gpt-4o-mini"
    assert [s["id"] for s in translation["segments"]] == [s["id"] for s in transcript["segments"]]
    assert all(s["text"] == f"EN[{t['text']}]" for s, t in
               zip(translation["segments"], transcript["segments"], strict=True))
    n = len(transcript["segments"])
    assert len(openai_server.requests) == -(-n // 4)  # ceil: batches of 4
    assert run.check("translation_complete").passed
    calls = store.read("api_calls")
    assert set(calls["service"]) == {"openai"} and set(calls["outcome"]) == {"ok"}


def test_provider_down_keeps_the_original_text_and_the_title_finishes(
        run_title, media_dir, store, openai_server, monkeypatch):
    monkeypatch.setenv("CPW_BREAKER_FAIL_MAX", "1")
    openai_server.program(status(503))
    run = run_title(copy_to(SAMPLE, media_dir), whisper_model="base")
    assert run.success
    transcript = json.loads((run.dir / "transcript.json").read_text())
    translation = json.loads((run.dir / "translation.en.json").read_text())
    assert [s["text"] for s in translation["segments"]] == [
        s["text"] for s in transcript["segments"]]
    assert translation["untranslated_segment_ids"] == [s["id"] for s in transcript["segments"]]
    assert not run.check("translation_complete").passed
    assert store.read("degradations")["kind"].to_list() == ["translation_failed"]
    assert len(openai_server.requests) == 4  # first batch: 3 retries; then the breaker is open
    assert run.srt().stat().st_size > 0


TIMING_LINE = "00:00:00.000 --> 00:09:59.000"
HOSTILE = [  # what a transcript (Whisper can write "-->" too) or a reply may hold
    f"Before.\n{TIMING_LINE}\nInjected cue.",
    "<script>alert('x')</script> <b>bold</b> Tom & Jerry: 3 < 4 > 2",
    "{\\an8}On top\\Nsecond\\nthird\\hfourth",
    "NUL\x00 BEL\x07 ESC\x1b[0m CR\r\nLF\u2028LS\u2029PS\tend",
    "\u200fمرحبا يا صديقي، كيف حالك؟ Ame\u0301lie",
    "\x00\r\n{\\an8}\u2028",  # nothing left once cleaned
]
#: Reply texts that are not a string: the segment keeps its source text, never "None".
NOT_TEXT = {1: None, 2: {"evil": True}, 3: 12, 4: ["x"]}


def _hostile_transcript(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    document["segments"] = [{"id": i, "start": 1.0 + 4 * i, "end": 3.5 + 4 * i, "text": text,
                             "words": []} for i, text in enumerate(HOSTILE)]
    path.write_text(json.dumps(document), encoding="utf-8")


def _assert_files_hold_the_built_cues(run, srt: Path, vtt: Path, document: dict) -> None:
    cues = build_cues(read_segments(document), SubtitleRules())
    assert cues and all(n == 0 for n in check_cues(cues, SubtitleRules()).values())
    assert run.check("follows_subtitle_rules").passed
    for path, unescape in ((srt, lambda t: t.replace("‹", "<").replace("›", ">")),
                           (vtt, html.unescape)):
        raw = path.read_text(encoding="utf-8")
        assert raw.count("-->") == len(cues) and "<" not in raw and "00:09:59" not in raw
        events = pysubs2.load(str(path), format_=path.suffix[1:]).events
        assert [(e.start, e.end) for e in events] == [
            (round(c.start * 1000), round(c.end * 1000)) for c in cues]
        assert [unescape(e.text) for e in events] == ["\\N".join(c.lines) for c in cues]


def test_hostile_text_from_the_transcript_or_a_reply_never_changes_the_cues(
        run_title, media_dir, store, openai_server):
    def reply(path: str):
        body = json.loads(openai_server.requests[-1]["body"])
        segments = json.loads(body["messages"][-1]["content"])["segments"]
        content = {"translations": [{"id": s["id"], "text": NOT_TEXT.get(s["id"],
                                                                        f"FR {s['text']}")}
                                    for s in segments]}
        return ok({"id": "c1", "object": "chat.completion", "created": 0,
                   "model": body["model"], "usage": {"prompt_tokens": 100,
                                                     "completion_tokens": 40,
                                                     "total_tokens": 140},
                   "choices": [{"index": 0, "finish_reason": "stop", "message": {
                       "role": "assistant", "content": json.dumps(content)}}]})

    openai_server.chooser = reply
    media = copy_to(JFK, media_dir)
    first = run_title(media, only=["media", "audio", "transcript", "glossary"])
    assert first.success
    _hostile_transcript(first.dir / "transcript.json")
    later = ["translation", "enhanced_translation", "subtitles"]

    # Transcript passthrough (English to English): the transcript's text, cleaned, only.
    passthrough = run_title(media, only=later, translation_backend="whisper")
    assert passthrough.success
    document = json.loads((passthrough.dir / "enhanced.en.json").read_text(encoding="utf-8"))
    assert [s["text"] for s in document["segments"]] == HOSTILE
    _assert_files_hold_the_built_cues(passthrough, passthrough.srt("en"),
                                      passthrough.vtt("en"), document)
    assert openai_server.requests == []

    # The LLM backend into French, bilingual: replies echo the timing line; four are not text.
    llm = run_title(media, only=later, target_language="fr", bilingual=True)
    assert llm.success
    translation = json.loads((llm.dir / "translation.fr.json").read_text(encoding="utf-8"))
    texts = [s["text"] for s in translation["segments"]]
    assert TIMING_LINE in texts[0] and texts[0].startswith("FR ")
    assert [texts[i] for i in NOT_TEXT] == [HOSTILE[i] for i in NOT_TEXT]
    assert translation["untranslated_segment_ids"] == list(NOT_TEXT)
    complete = llm.check("translation_complete")
    assert not complete.passed and complete.severity == AssetCheckSeverity.WARN
    assert store.read("degradations")["kind"].to_list() == ["translation_failed"]
    document = json.loads((llm.dir / "enhanced.fr.json").read_text(encoding="utf-8"))
    _assert_files_hold_the_built_cues(llm, llm.srt("fr"), llm.vtt("fr"), document)
    written = llm.srt("fr").read_text(encoding="utf-8") + llm.vtt("fr").read_text(
        encoding="utf-8")
    assert "None" not in written and "evil" not in written
    for fmt in ("srt", "vtt"):
        both = llm.dir / f"{llm.key}.en-fr.{fmt}"
        raw = both.read_text(encoding="utf-8")
        events = pysubs2.load(str(both), format_=fmt).events
        # A source line too long for one line is split over cues (nothing cut), so the
        # bilingual file may have more cues than the French one, never fewer.
        assert raw.count("-->") == len(events) >= len(pysubs2.load(
            str(llm.dir / f"{llm.key}.fr.{fmt}"), format_=fmt).events)
        assert "<" not in raw and "00:09:59" not in raw


def test_several_target_languages_each_with_its_own_files_and_cache(
        run_title, media_dir, store, openai_server):
    """English speech into [en, fr]: English passes through, French comes from the LLM; adding
    French later redoes nothing of English, and switching to French alone keeps English's
    files as they were."""
    def reply(path: str):
        body = json.loads(openai_server.requests[-1]["body"])
        return ok(_chat_reply(body))

    openai_server.chooser = reply
    media = copy_to(JFK, media_dir)
    first = run_title(media, target_languages=["en"])
    assert first.success and not (first.dir / "translation.fr.json").exists()
    english = {name: (first.dir / name).stat().st_mtime_ns
               for name in ("translation.en.json", "enhanced.en.json", "jfk.en.srt",
                            "jfk.en.vtt", "preview.en.html")}

    both = run_title(media, target_languages=["en", "fr"])
    assert both.success
    assert {name: (both.dir / name).stat().st_mtime_ns for name in english} == english
    french = json.loads((both.dir / "translation.fr.json").read_text())
    assert french["target_language"] == "fr" and french["backend"] == "llm:openai:gpt-4o-mini"
    assert (both.dir / "jfk.fr.srt").is_file() and (both.dir / "preview.fr.html").is_file()
    assert json.loads((both.dir / "translation.json").read_text())["languages"] == ["en", "fr"]
    asked = len(openai_server.requests)
    assert asked >= 1

    only_french = run_title(media, target_languages=["fr"])
    assert only_french.success
    assert len(openai_server.requests) == asked  # French's cache entry held
    assert {name: (only_french.dir / name).stat().st_mtime_ns for name in english} == english
    metrics = store.read("stage_metrics").sort("ts")
    last = metrics.filter(metrics["run_id"] == metrics["run_id"][-1])
    redone = {a for a, hit in last.select("asset", "cache_hit").iter_rows() if not hit}
    assert not redone & {"transcript", "translation", "enhanced_translation", "subtitles"}


def test_a_language_no_backend_can_make_is_refused_without_failing_the_title(
        run_title, media_dir, store, tmp_path):
    """The Whisper backend makes English only: German is left out with a warning naming
    what could make it, the title's English subtitles are written, and `cpw run --target de`
    refuses before any run starts."""
    import os
    import subprocess
    import sys

    media = copy_to(JFK, media_dir)
    run = run_title(media, target_languages=["en", "de"])
    assert run.success
    assert (run.dir / "jfk.en.srt").is_file()
    assert not (run.dir / "jfk.de.srt").exists()
    check = run.check("translation_complete")
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    refused = store.read("degradations")
    assert refused["kind"].to_list() == ["language_unavailable"]
    assert "CPW_TRANSLATION_BACKEND=llm" in refused["message"][0]

    home = tmp_path / "cli"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPW_")}
    env |= {"CPW_HOME": str(home), "CPW_WHISPER_MODEL": "tiny.en",
            "CPW_TRANSLATION_BACKEND": "whisper"}
    done = subprocess.run([str(Path(sys.executable).parent / "cpw"), "run", str(JFK),
                           "--target", "de"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "CPW_TRANSLATION_BACKEND=llm" in done.stderr
    assert not (home / "titles").exists() or not any((home / "titles").glob("*/title.json"))
