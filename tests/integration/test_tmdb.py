"""TMDB names in the glossary through the real graph, and a title that finishes when TMDB fails.

The real client talks HTTP to a server on 127.0.0.1 (tests/fake_service.py) that answers like
TMDB API v3 or fails as programmed.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from dagster import serialize_value

from cpw_resources.services.reliability import Policy, Reliability, ServiceError
from cpw_resources.services.tmdb import TmdbClient
from tests.conftest import JFK, copy_to
from tests.fake_service import fake_service, hang, ok, status
from tests.trickle_server import trickle_server

KEY = "0123456789abcdef0123456789abcdef"
SEARCH = {"page": 1, "results": [{"id": 42, "title": "Ask Not", "release_date": "1961-01-20",
                                  "genre_ids": [99, 36, 123456]}],
          "total_results": 1}
CREDITS = {"id": 42, "cast": [
    {"name": "John Kennedy", "character": "Americans / The President (uncredited)"},
    {"name": "Narrator Person", "character": "Narrator"},
], "crew": [{"name": "Robert Drew", "job": "Director"}, {"name": "Someone", "job": "Editor"}]}


@pytest.fixture
def tmdb(monkeypatch):
    with fake_service() as server:
        monkeypatch.setenv("TMDB_API_KEY", KEY)
        monkeypatch.setenv("CPW_TMDB_BASE_URL", server.url + "/3")
        yield server


def _film(media_dir, name="Ask Not (1961).wav"):
    media = copy_to(JFK, media_dir, name)
    media.with_suffix(".json").write_text(json.dumps({"title": "Ask Not", "year": 1961}))
    return media


def test_tmdb_names_join_the_glossary_and_are_kept(run_title, media_dir, store, tmdb):
    tmdb.program(ok(SEARCH), ok(CREDITS))
    run = run_title(_film(media_dir))
    assert run.success
    glossary = json.loads((run.dir / "glossary.json").read_text())
    by_term = {t["term"]: t for t in glossary["terms"]}
    assert by_term["Americans"]["source"] == "tmdb" and not by_term["Americans"]["suggested"]
    # TMDB's names reach Whisper before it transcribes, and are counted in what it heard.
    heard = json.loads((run.dir / "transcript.json").read_text())["names"]
    assert "Americans" in heard["given"] and heard["occurrences"]["Americans"] == 1
    assert by_term["The President"]["kind"] == "character"
    assert by_term["John Kennedy"]["kind"] == "actor" and "Narrator" not in by_term
    # TMDB says where the film belongs (director, genres by id), for the context learner.
    assert glossary["metadata"]["director"] == "Robert Drew"
    assert glossary["metadata"]["genre"] == ["documentary", "history"]
    remembered = store.read("context_terms")
    assert set(remembered["director"]) == {"Robert Drew"}
    assert set(remembered["genre"]) == {"documentary|history"}
    search, credits = tmdb.requests
    assert search["path"].startswith("/3/search/movie?") and "year=1961" in search["path"]
    assert "query=Ask+Not" in search["path"] and credits["path"].startswith("/3/movie/42/credits")
    calls = store.read("api_calls").sort("ts")
    assert calls["operation"].to_list() == ["search_movie", "movie_credits"]
    assert calls["outcome"].to_list() == ["ok", "ok"]
    assert run.check("tmdb_names").passed

    # Kept responses: another copy of the film asks TMDB nothing.
    again = run_title(_film(media_dir, "Ask Not (1961) copy.wav").with_suffix(".wav"))
    assert again.success and len(tmdb.requests) == 2
    # The key is in no event, no metadata, no log message.
    for path in (store.events_dir).rglob("*.parquet"):
        assert KEY.encode() not in path.read_bytes()
    for event in run.result.all_events:
        assert KEY not in (event.message or "") and KEY not in str(event.event_specific_data)


def test_tmdb_down_degrades_and_the_breaker_then_fails_fast(run_title, media_dir, store, tmdb,
                                                             monkeypatch):
    monkeypatch.setenv("CPW_BREAKER_FAIL_MAX", "1")
    tmdb.program(status(503))
    run = run_title(_film(media_dir))
    assert run.success
    glossary = json.loads((run.dir / "glossary.json").read_text())
    assert not [t for t in glossary["terms"] if t["source"] == "tmdb"]
    assert not run.check("tmdb_names").passed
    degradations = store.read("degradations")
    assert degradations["service"].to_list() == ["tmdb"]
    assert len(tmdb.requests) == 4  # 3 retries, then the failed call opened the breaker

    other = run_title(_film(media_dir, "Ask Not Again (1961).wav"))
    assert other.success and len(tmdb.requests) == 4
    kinds = store.read("degradations").sort("ts")["kind"].to_list()
    assert kinds == ["server", "breaker_open"]
    fast = store.read("api_calls").sort("ts")[-1]
    assert fast["error_class"][0] == "breaker_open" and fast["latency_ms"][0] < 500


def test_a_hung_tmdb_cannot_hang_the_run(run_title, media_dir, tmdb, monkeypatch, store):
    monkeypatch.setenv("CPW_HTTP_READ_TIMEOUT_S", "0.4")
    monkeypatch.setenv("CPW_SERVICE_SECOND_ROUND_PAUSE_S", "1")
    tmdb.program(hang(60))
    started = time.monotonic()
    run = run_title(_film(media_dir))
    assert run.success
    assert time.monotonic() - started < 40
    # Two rounds (the breaker stayed closed), each 4 attempts that timed out, then degraded.
    calls = store.read("api_calls")
    assert calls["error_class"].to_list() == ["timeout", "timeout"]
    assert calls["attempts"].to_list() == [4, 4] and len(tmdb.requests) == 8
    assert store.read("degradations")["kind"].to_list() == ["timeout"]


def test_a_second_round_after_a_burst_of_failures_gets_full_names(run_title, media_dir, tmdb,
                                                                   monkeypatch, store):
    monkeypatch.setenv("CPW_SERVICE_SECOND_ROUND_PAUSE_S", "0.5")
    # Search answers; credits fail 4 times in a row (its retries spent), then answer.
    tmdb.program(ok(SEARCH), status(502), status(503), status(500), status(503), ok(CREDITS))
    run = run_title(_film(media_dir))
    assert run.success and run.check("tmdb_names").passed
    glossary = json.loads((run.dir / "glossary.json").read_text())
    assert [t for t in glossary["terms"] if t["source"] == "tmdb"]
    # The kept search reply was not asked for again in the second round.
    assert [r["path"].split("?")[0] for r in tmdb.requests] == (
        ["/3/search/movie"] + ["/3/movie/42/credits"] * 5)
    calls = store.read("api_calls").sort("ts")
    assert calls["outcome"].to_list() == ["ok", "failed", "ok"]
    assert store.read("degradations").is_empty()


def test_a_trickling_tmdb_ends_at_the_call_deadline(tmp_path):
    """TMDB answering one byte every 2 s (read timeout 2.5 s, deadline 3 s): the call ends at
    its deadline as a timeout, the attempt recorded, the connection closed, nothing cached."""
    events: list[dict] = []
    rel = Reliability(tmp_path / "breakers", Policy(deadline_s=3.0), on_event=events.append,
                      sleep=lambda s: None)
    with trickle_server(2.0) as server:
        client = TmdbClient(server.url + "/3", rel, cache_dir=tmp_path / "responses",
                            api_key=KEY, read_timeout_s=2.5)
        started = time.monotonic()
        with pytest.raises(ServiceError) as info:
            client.film_cast("Ask Not", 1961)
        took = time.monotonic() - started
        assert server.hung_up.wait(3)
    assert info.value.kind == "timeout" and 3.0 <= took < 4.0
    assert [(e["operation"], e["attempts"], e["outcome"], e["error_class"]) for e in events] == [
        ("search_movie", 1, "failed", "timeout")]
    assert not (tmp_path / "responses").exists()


ODD_OPENAI_KEY = 'q7"Z/+k'  # short, random, no sk- prefix: only knowing it can mask it


def _forms(secret: str) -> list[bytes]:
    texts = {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}
    return [t.encode() for t in texts]


def test_keys_echoed_by_tmdb_and_the_llm_appear_nowhere(run_title, media_dir, tmdb, home, store,
                                                        instance, monkeypatch, caplog, capfd):
    """TMDB's 401 and the LLM's 401 both repeat the key they were sent. The title finishes
    (degraded), and neither key is in the errors, any file under the home, the Dagster run's
    event log and storage, or the captured logs and output."""
    caplog.set_level(logging.DEBUG)
    tmdb.program(status(401, {"status_code": 7, "status_message": f"Invalid API key {KEY}; "
                              f"you sent api_key={KEY}"}))
    with fake_service() as llm:
        llm.program(status(401, {"error": {"message": f"Incorrect API key: {ODD_OPENAI_KEY}"}}))
        monkeypatch.setenv("OPENAI_BASE_URL", llm.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", ODD_OPENAI_KEY)
        monkeypatch.setenv("CPW_TRANSLATION_BACKEND", "llm")
        monkeypatch.setenv("CPW_TRANSLATION_LLM", "openai:gpt-4o-mini")
        monkeypatch.setenv("CPW_TARGET_LANGUAGE", "fr")  # English audio: the LLM is asked
        run = run_title(_film(media_dir))
        assert len(llm.requests) == 1
    assert run.success and len(tmdb.requests) == 1
    degradations = store.read("degradations")
    assert sorted(degradations["kind"]) == ["auth", "translation_failed"]
    messages = " ".join(degradations["message"])
    assert "Invalid API key ***" in messages and "Incorrect API key: ***" in messages

    forms = _forms(KEY) + _forms(ODD_OPENAI_KEY)
    files = [p for p in home.rglob("*") if p.is_file()]
    files += [p for p in Path(instance.root_directory).rglob("*") if p.is_file()]
    assert len(files) > 20
    for path in files:
        data = path.read_bytes()
        assert not [f for f in forms if f in data], path
    logged = [serialize_value(entry) for entry in instance.all_logs(run.result.run_id)]
    assert any("TMDB unavailable" in text for text in logged)
    out, err = capfd.readouterr()
    seen = "\n".join([*logged, caplog.text, out, err]).encode()
    assert not [f for f in forms if f in seen]
