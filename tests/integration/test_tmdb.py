"""TMDB names in the glossary through the real graph, and a title that finishes when TMDB fails.

The real client talks HTTP to a server on 127.0.0.1 (tests/fake_service.py) that answers like
TMDB API v3 or fails as programmed.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import JFK, copy_to
from tests.fake_service import fake_service, hang, ok, status

KEY = "0123456789abcdef0123456789abcdef"
SEARCH = {"page": 1, "results": [{"id": 42, "title": "Ask Not", "release_date": "1961-01-20"}],
          "total_results": 1}
CREDITS = {"id": 42, "cast": [
    {"name": "John Kennedy", "character": "Americans / The President (uncredited)"},
    {"name": "Narrator Person", "character": "Narrator"},
]}


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
    assert by_term["Americans"]["source"] == "tmdb" and by_term["Americans"]["occurrences"] == 1
    assert by_term["The President"]["kind"] == "character"
    assert by_term["John Kennedy"]["kind"] == "actor" and "Narrator" not in by_term
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
