"""Enhancement within each line's character budget, against a 127.0.0.1 server speaking the
OpenAI wire protocol through the real SDK: the budget travels as ``max_chars``; an edit over
it is asked for once more, then the line keeps its MT text as ``over_char_budget``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from cpw_resources.llm.engine import Budget, ReplyCache
from cpw_resources.llm.enhance import ENHANCEMENT_PROMPT, Enhancer, EnhanceTask, Line, make_lines
from cpw_resources.llm.pricing import Pricing
from cpw_resources.llm.providers import OpenAIProvider
from cpw_resources.records import Segment
from cpw_resources.services.reliability import Policy, Reliability
from tests.fake_llm import serve
from tests.fake_service import fake_service

KEY = "sk-test-budget-0123456789abcdef"
MINI = Pricing.load().price("openai", "gpt-4o-mini")
CLAUSE = ", as I told you before"
# (start, end, source, MT): roomy lines and lines with little time around them.
TIMED = [(0.0, 3.0, "Le dîner est prêt.", "Dinner is ready."),
         (3.4, 4.4, "On y va.", "Let's go now."),
         (4.8, 8.8, "Où est la voiture ?", "Where is the car?"),
         (8.9, 9.7, "Dépêche-toi.", "Hurry up."),
         (9.8, 10.8, "Vite.", "Quick.")]


def lengthen(segment: dict, glossary: list) -> str:
    """A fluent editor that always says a little more than the MT."""
    return segment["translation"].rstrip(".?!") + CLAUSE + segment["translation"][-1]


def _lines() -> list[Line]:
    source = [Segment(i, a, b, src) for i, (a, b, src, _) in enumerate(TIMED)]
    mt = [Segment(i, a, b, text) for i, (a, b, _, text) in enumerate(TIMED)]
    return make_lines(source, mt, end=12.0)


@pytest.fixture
def server():
    with fake_service() as service:
        yield service


def _enhancer(server, tmp_path: Path) -> Enhancer:
    provider = OpenAIProvider("gpt-4o-mini", Reliability(tmp_path / "breakers", Policy()),
                              base_url=server.url + "/v1", api_key=KEY, read_timeout_s=2,
                              price=MINI)
    return Enhancer([(provider, MINI)], ReplyCache(tmp_path / "cache.sqlite"),
                    Budget(1.0, 10.0), "fr", "en", summary="Voicemail (2009)")


def _requests(server) -> list[tuple[str, dict]]:
    """(system prompt, user data) of every request the server got."""
    bodies = [json.loads(r["body"]) for r in server.requests]
    return [(b["messages"][0]["content"], json.loads(b["messages"][1]["content"]))
            for b in bodies]


def _split(lines: list[Line]) -> tuple[set[int], set[int]]:
    """Ids whose lengthened MT fits their budget, and those it does not."""
    fits = {ln.id for ln in lines
            if len(lengthen({"translation": ln.translation}, [])) <= ln.max_chars}
    return fits, {ln.id for ln in lines} - fits


def test_edits_over_their_budget_are_asked_again_then_keep_the_mt(server, tmp_path) -> None:
    lines = _lines()
    fits, over = _split(lines)
    assert fits and over  # both kinds of line in the title
    # A line without a budget (made by hand, not by make_lines) has no limit.
    lines.append(replace(lines[-1], id=9, start=11.0, end=11.5, max_chars=None))
    serve(server, editor=lengthen)
    out = _enhancer(server, tmp_path).run(lines, {ln.id: ["all"] for ln in lines}, [])

    requests = _requests(server)
    assert len(requests) == 2 and out.requests == 2
    system, first = requests[0]
    assert "max_chars" in system
    assert [s.get("max_chars") for s in first["segments"]] == [ln.max_chars for ln in lines]
    assert "max_chars" not in first["segments"][-1]
    # The second request asks again for the over-long lines only, with their budgets.
    assert [s["id"] for s in requests[1][1]["segments"]] == sorted(over)
    for ln in lines:
        longer = lengthen({"translation": ln.translation}, [])
        if ln.id in over:
            assert out.status[ln.id] == "over_char_budget" and out.text[ln.id] == ln.translation
            assert len(longer) > ln.max_chars
        else:
            assert out.status[ln.id] == "enhanced" and out.text[ln.id] == longer
    for item in over:
        said = [e for e in out.errors if f"for id {item} " in e]
        assert len(said) == 2 and all("(over_char_budget)" in e for e in said)

    # Taken edits are cached; refused ones are not, so a re-run asks for them (only) again.
    server.program()
    serve(server, editor=lengthen)
    again = _enhancer(server, tmp_path).run(lines, {ln.id: ["all"] for ln in lines}, [])
    assert again.cache_hits == len(fits) + 1
    assert [[s["id"] for s in data["segments"]] for _, data in _requests(server)] == [
        sorted(over), sorted(over)]
    assert again.text == out.text and again.status == {
        i: "cached" if s == "enhanced" else s for i, s in out.status.items()}


def test_an_edit_that_fits_when_asked_again_is_taken(server, tmp_path) -> None:
    lines = _lines()
    _, over = _split(lines)

    def shortens_when_asked_again(segment: dict, glossary: list) -> str:
        longer = lengthen(segment, glossary)
        return longer if len(server.requests) == 1 else longer[:segment["max_chars"]].strip()

    serve(server, editor=shortens_when_asked_again)
    out = _enhancer(server, tmp_path).run(lines, {ln.id: ["all"] for ln in lines}, [])
    assert len(server.requests) == 2
    assert set(out.status.values()) == {"enhanced"}
    for ln in lines:
        if ln.id in over:
            assert len(out.text[ln.id]) <= ln.max_chars
            assert out.text[ln.id] != ln.translation


def test_a_cached_edit_over_its_budget_is_asked_again(server, tmp_path) -> None:
    lines = _lines()
    _, over = _split(lines)
    line = next(ln for ln in lines if ln.id in over)
    task = EnhanceTask("fr", "en", "Voicemail (2009)", [], [])
    key = ReplyCache.key(task.name, ENHANCEMENT_PROMPT.version, "openai", "gpt-4o-mini",
                         json.dumps(task.cache_content(line), ensure_ascii=False,
                                    sort_keys=True))
    cache = ReplyCache(tmp_path / "cache.sqlite")
    cache.put_many([(key, lengthen({"translation": line.translation}, []), "openai:x")])
    serve(server, editor=lambda segment, glossary: segment["translation"] + "!")
    out = _enhancer(server, tmp_path).run([line], {line.id: ["all"]}, [])
    assert out.cache_hits == 0 and len(server.requests) == 1
    assert out.status[line.id] == "enhanced" and out.text[line.id] == line.translation + "!"
    assert cache.get_many([key]) == {key: line.translation + "!"}
