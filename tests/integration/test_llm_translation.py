"""The LLM translation backend through the real graph and the real OpenAI SDK, against a
Chat Completions server on 127.0.0.1; and a title that finishes when the provider is down."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SAMPLE, copy_to
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
    translation = json.loads((run.dir / "translation.json").read_text())
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
    translation = json.loads((run.dir / "translation.json").read_text())
    assert [s["text"] for s in translation["segments"]] == [
        s["text"] for s in transcript["segments"]]
    assert translation["untranslated_segment_ids"] == [s["id"] for s in transcript["segments"]]
    assert not run.check("translation_complete").passed
    assert store.read("degradations")["kind"].to_list() == ["translation_failed"]
    assert len(openai_server.requests) == 4  # first batch: 3 retries; then the breaker is open
    assert run.srt().stat().st_size > 0
