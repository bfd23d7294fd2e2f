"""The one LLM engine, for both tasks: strict replies, ask again, split, fall back, cache,
budget, dedupe, cost; with scripted providers (real ``Completion`` objects) and, for the
translation task end to end, the real SDKs against 127.0.0.1 servers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cpw_resources.llm import translate
from cpw_resources.llm.engine import Budget, Engine, ReplyCache, parse_reply
from cpw_resources.llm.enhance import Enhancer, EnhanceTask, Line
from cpw_resources.llm.pricing import Price, Pricing
from cpw_resources.llm.providers import AnthropicProvider, Completion, OpenAIProvider, Sent
from cpw_resources.llm.translate import TranslateTask
from cpw_resources.records import Segment, Word
from cpw_resources.services.reliability import SERVER, Policy, Reliability, ServiceError
from tests.fake_llm import anthropic_reply
from tests.fake_service import fake_service, status

KEY = "sk-test-engine-0123456789abcdef"
PRICE = Price(1.0, 2.0, Pricing.load().price("openai", "gpt-4o-mini").as_of)
Answer = Callable[[dict], object]


class Scripted:
    """A provider whose reply to each request is ``answer(user JSON)`` (a value dumped to
    JSON, or a string sent as is); every reply costs 100 + 10 tokens at ``price``."""

    def __init__(self, answer: Answer, *, service: str = "scripted", model: str = "m1",
                 price: Price | None = PRICE, down: bool = False) -> None:
        self.answer, self.service, self.model, self.price = answer, service, model, price
        self.down, self.requests = down, []

    def complete(self, system: str, user: str, *, max_tokens: int = 1024,
                 schema: dict | None = None, items: int | None = None) -> Completion:
        data = json.loads(user)
        self.requests.append(data)
        if self.down:
            raise ServiceError(self.service, "chat", SERVER, "status 503 after 4 attempts")
        reply = self.answer(data)
        text = reply if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False)
        cost = self.price.cost(100, 10) if self.price else None
        return Completion(text, 100, 10, self.model, cost)


def translations(edit: Callable[[dict], object] = lambda s: f"EN[{s['text']}]") -> Answer:
    return lambda data: {"translations": [{"id": s["id"], "text": edit(s)}
                                          for s in data["segments"]]}


def enhanced(data: dict) -> dict:
    return {"segments": [{"id": s["id"], "text": s["translation"].upper()}
                         for s in data["segments"]]}


def segs(n: int, text: str = "line {}") -> list[Segment]:
    return [Segment(i, i * 2.0, i * 2.0 + 1.5, text.format(i),
                    words=(Word(i * 2.0, i * 2.0 + 1.0, "w", 0.9),)) for i in range(n)]


def lines(n: int) -> list[Line]:
    return [Line(i, i * 2.0, i * 2.0 + 1.5, f"पंक्ति {i}", f"line {i}") for i in range(n)]


def sizes(provider: Scripted) -> list[int]:
    return [len(r["segments"]) for r in provider.requests]


@pytest.mark.parametrize("text", [None, {"words": "hi"}, 7, 7.5, True, ["hi"]])
def test_a_reply_whose_text_is_not_a_string_is_rejected_and_asked_again(text) -> None:
    with pytest.raises(ValueError, match="expected JSON"):
        parse_reply(json.dumps({"translations": [{"id": 0, "text": text}]}), [0],
                    "translations")
    replies = iter([{"translations": [{"id": 0, "text": text}]},
                    {"translations": [{"id": 0, "text": "Hello"}]}])
    provider = Scripted(lambda data: next(replies))
    done = translate.run([(provider, PRICE)], segs(1), source="hi", target="en")
    assert len(provider.requests) == done.requests == 2
    assert done.segments[0].text == "Hello" and done.failed_ids == []
    assert "expected JSON" in done.errors[0] and done.errors[0].startswith("scripted:m1: ")


def test_a_batch_that_keeps_failing_is_split_down_to_the_one_bad_item() -> None:
    provider = Scripted(translations(lambda s: None if s["id"] == 5 else f"EN[{s['text']}]"))
    done = translate.run([(provider, PRICE)], segs(6), source="hi", target="en", batch_size=6)
    # 6 twice → 3 ok; 3 twice → 1 ok; 2 twice → 1 ok; 5 alone twice.
    assert sizes(provider) == [6, 6, 3, 3, 3, 1, 2, 2, 1, 1, 1]
    assert done.failed_ids == [5] and done.segments[5] == segs(6)[5]  # words kept too
    assert [s.text for s in done.segments[:5]] == [f"EN[line {i}]" for i in range(5)]
    assert all(s.words == () for s in done.segments[:5])  # times of the source language
    assert [(s.id, s.start, s.end) for s in done.segments] == [
        (s.id, s.start, s.end) for s in segs(6)]
    assert done.requests == 11 and done.cost_usd == pytest.approx(11 * PRICE.cost(100, 10))


def test_the_next_provider_takes_over_when_one_fails_after_its_retries() -> None:
    primary = Scripted(enhanced, service="openai", model="gpt", down=True)
    fallback = Scripted(enhanced, service="anthropic", model="claude")
    out = Enhancer([(primary, PRICE), (fallback, PRICE)], None, None, "hi", "en",
                   batch_size=2).run(lines(5), {0: ["all"], 1: ["all"], 3: ["all"]}, [])
    assert sizes(primary) == sizes(fallback) == [2, 1]
    assert out.status == {0: "enhanced", 1: "enhanced", 2: "kept", 3: "enhanced", 4: "kept"}
    assert out.text[3] == "LINE 3" and out.text[2] == "line 2"
    assert set(out.by.values()) == {"anthropic:claude"} and out.requests == 2
    assert len(out.errors) == 2 and "503" in out.errors[0]

    fallback.down = True
    failed = Enhancer([(primary, PRICE), (fallback, PRICE)], None, None, "hi", "en").run(
        lines(2), {0: ["all"], 1: ["all"]}, [])
    assert failed.status == {0: "failed", 1: "failed"} and failed.text[0] == "line 0"


def test_identical_items_in_one_run_are_sent_once() -> None:
    segments = segs(6, "haan")[:3] + [Segment(3, 6, 7, "nahin"), Segment(4, 8, 9, "haan")]
    provider = Scripted(translations())
    done = translate.run([(provider, PRICE)], segments, source="hi", target="en")
    assert [s["text"] for s in provider.requests[0]["segments"]] == ["haan", "nahin"]
    assert [s.text for s in done.segments] == ["EN[haan]"] * 3 + ["EN[nahin]", "EN[haan]"]
    assert done.cache_hits == 3 and done.status[4] == "cached" and done.status[0] == "done"


def test_the_cache_serves_the_second_run_of_both_tasks(tmp_path: Path) -> None:
    cache = ReplyCache(tmp_path / "llm.sqlite")
    hits: list[tuple] = []
    provider = Scripted(translations())
    first = translate.run([(provider, PRICE)], segs(4), source="hi", target="en", cache=cache)
    assert first.requests == 1 and first.cache_hits == 0
    again = translate.run([(provider, PRICE)], segs(4), source="hi", target="en", cache=cache,
                          on_cache_hits=lambda *a: hits.append(a))
    assert again.requests == 0 and again.cache_hits == 4 and again.cost_usd == 0
    assert [s.text for s in again.segments] == [s.text for s in first.segments]
    assert again.failed_ids == [] and hits == [("scripted", "m1", 4)]
    other = translate.run([(provider, PRICE)], segs(4), source="hi", target="fr", cache=cache)
    assert other.requests == 1  # another target language is another answer

    editor = Scripted(enhanced)

    def enhance() -> object:
        return Enhancer([(editor, PRICE)], cache, Budget(1.0, 1.0), "hi", "en",
                        on_cache_hits=lambda *a: hits.append(a)).run(
            lines(4), {1: ["all"], 2: ["all"]}, [])

    before = enhance()
    assert before.requests == 1 and before.count("enhanced") == 2
    after = enhance()
    assert after.requests == 0 and after.count("cached") == 2 and after.text == before.text
    assert hits[-1] == ("scripted", "m1", 2)
    # The same text under another task is not the translation's answer.
    assert len(editor.requests) == 1 and len(provider.requests) == 2


def test_budget_stops_before_the_request_that_would_pass_it() -> None:
    pricey = Price(1000.0, 4000.0, PRICE.as_of)
    provider = Scripted(translations(), price=pricey)
    per_request = pricey.cost(100, 10)
    # Each request is checked at its worst case (all it sends, all of max_tokens) and books
    # 100 + 10 tokens: room for the worst case plus 1.5 bookings lets exactly two through.
    task = TranslateTask("hi", "en", [])
    room = 64 + 2 * 24 + 6  # two answers of at most 3 x 6 characters, and the JSON
    worst = Sent.of(task.system(), task.user(segs(10)[:2], []), TranslateTask.schema,
                    room).worst_cost(pricey)
    budget = Budget(title_limit=worst + 1.5 * per_request, day_limit=100.0)
    done = translate.run([(provider, pricey)], segs(10), source="hi", target="en",
                         batch_size=2, budget=budget)
    assert done.budget_stopped and done.requests == len(provider.requests) >= 1
    assert done.cost_usd == pytest.approx(budget.title_spent)
    assert budget.title_spent <= budget.title_limit
    assert done.count("done") == 2 * done.requests
    assert done.count("budget") == 10 - 2 * done.requests
    assert done.failed_ids == list(range(2 * done.requests, 10))

    unlimited = translate.run([(Scripted(translations()), pricey)], segs(10), source="hi",
                              target="en", batch_size=2)
    assert not unlimited.budget_stopped and unlimited.failed_ids == []


def test_context_lines_come_from_the_whole_timeline() -> None:
    provider = Scripted(enhanced)
    task = EnhanceTask("hi", "en", "Film", [], [])
    Engine([(provider, PRICE)], context_lines=2, batch_size=1).run(
        task, [lines(6)[4]], timeline=lines(6))
    assert [c["translation"] for c in provider.requests[0]["context"]] == ["line 2", "line 3"]


def test_progress_reaches_one() -> None:
    seen: list[float] = []
    translate.run([(Scripted(translations()), PRICE)], segs(5), source="hi", target="en",
                  batch_size=2, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_translation_gets_split_fallback_and_cache_through_the_real_sdks(tmp_path: Path):
    """OpenAI down (503), Anthropic answering but merging one segment: the batch is split
    down to that segment, the rest translated by the fallback, and a re-run is free."""
    events: list[dict] = []
    rel = Reliability(tmp_path / "breakers", Policy(fail_max=50), on_event=events.append,
                      sleep=lambda s: None)
    pricing = Pricing.load()
    cache = ReplyCache(tmp_path / "llm.sqlite")
    segments = segs(4)
    with fake_service() as gpt, fake_service() as claude:
        gpt.program(status(503))

        def answer(path: str):
            body = json.loads(claude.requests[-1]["body"])
            data = json.loads(body["messages"][-1]["content"])
            return anthropic_reply(body, payload={"translations": [
                {"id": s["id"], "text": f"EN[{s['text']}]"} for s in data["segments"]
                if s["id"] != 2]})

        claude.chooser = answer
        providers = [
            (OpenAIProvider("gpt-4o-mini", rel, base_url=gpt.url + "/v1", api_key=KEY,
                            read_timeout_s=2, price=pricing.price("openai", "gpt-4o-mini")),
             pricing.price("openai", "gpt-4o-mini")),
            (AnthropicProvider("claude-haiku-4-5", rel, base_url=claude.url, api_key=KEY,
                               read_timeout_s=2,
                               price=pricing.price("anthropic", "claude-haiku-4-5")),
             pricing.price("anthropic", "claude-haiku-4-5")),
        ]
        done = translate.run(providers, segments, source="hi", target="en", cache=cache)
        body = json.loads(claude.requests[0]["body"])
        assert body["tool_choice"] == {"type": "tool", "name": "reply"}
        assert "translations" in body["tools"][0]["input_schema"]["properties"]
        assert done.failed_ids == [2] and done.segments[2].text == "line 2"
        assert [done.segments[i].text for i in (0, 1, 3)] == ["EN[line 0]", "EN[line 1]",
                                                               "EN[line 3]"]
        assert {done.by[i] for i in (0, 1, 3)} == {"anthropic:claude-haiku-4-5"}
        assert done.cost_usd > 0 and done.input_tokens > 0 and done.requests > 2
        assert any("503" in e for e in done.errors)

        sent = len(claude.requests)
        again = translate.run(providers, segments, source="hi", target="en", cache=cache)
        assert again.cache_hits == 3 and again.failed_ids == [2]
        # Only segment 2 is asked for again (primary down again, fallback rejects it again).
        assert {len(json.loads(json.loads(r["body"])["messages"][-1]["content"])["segments"])
                for r in claude.requests[sent:]} == {1}


def test_a_time_budget_stops_before_a_request_that_would_pass_it() -> None:
    import time as _time

    def slow(data: dict) -> object:
        _time.sleep(0.2)
        return translations()(data)

    budget = Budget(title_limit=100.0, day_limit=100.0, seconds_limit=0.5)
    done = translate.run([(Scripted(slow), PRICE)], segs(10), source="fr", target="en",
                         batch_size=1, budget=budget)
    # 0.2 s a request: after two (0.4 s) a third would pass 0.5 s on average.
    assert done.budget_stopped and done.requests == 2
    assert done.count("budget") == 8


def test_a_reply_may_be_only_as_long_as_its_answers_could_plausibly_be() -> None:
    asked: list[int] = []

    class Recording(Scripted):
        def complete(self, system, user, *, max_tokens=1024, schema=None, items=None):
            asked.append(max_tokens)
            return super().complete(system, user, max_tokens=max_tokens, schema=schema,
                                    items=items)

    translate.run([(Recording(translations()), PRICE)], segs(4, "a line of twenty ch {}"),
                  source="fr", target="en", batch_size=2)
    # Two answers of at most 3 x 21 characters, about 3 a token, plus the JSON around them.
    assert asked == [64 + 2 * 24 + 42] * 2
