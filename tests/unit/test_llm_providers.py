"""The real OpenAI and Anthropic SDKs against 127.0.0.1 servers with injected faults,
implausible usage, replies that repeat the key, and replies that trickle past the deadline."""

from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path

import pytest

from cpw_resources.llm.pricing import Pricing
from cpw_resources.llm.providers import AnthropicProvider, OpenAIProvider, Sent
from cpw_resources.services.reliability import Policy, Reliability, ServiceError
from tests.fake_service import Fault, fake_service, hang, malformed, ok, reset, status
from tests.trickle_server import trickle_server

KEY = "sk-proj-secret-0123456789abcdefghijklmnop"
OPENAI_OK = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hello there."}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}
ANTHROPIC_OK = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku",
    "content": [{"type": "text", "text": "Hello there."}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 3},
}
QUOTA = {"error": {"message": "You exceeded your current quota, please check your plan.",
                   "type": "insufficient_quota", "code": "insufficient_quota"}}
PRICE = Pricing.load().price("openai", "gpt-4o-mini")
USAGE = {"openai": ("prompt_tokens", "completion_tokens"),
         "anthropic": ("input_tokens", "output_tokens")}


def _provider(kind: str, url: str, rel: Reliability, key: str = KEY, read_timeout_s=0.4):
    if kind == "openai":
        return OpenAIProvider("gpt-4o-mini", rel, base_url=url + "/v1", api_key=key,
                              read_timeout_s=read_timeout_s, price=PRICE), OPENAI_OK
    return AnthropicProvider("claude-haiku", rel, base_url=url, api_key=key,
                             read_timeout_s=read_timeout_s, price=PRICE), ANTHROPIC_OK


@pytest.fixture(params=["openai", "anthropic"])
def setup(request, tmp_path: Path):
    waits: list[float] = []
    events: list[dict] = []
    rel = Reliability(tmp_path / "breakers", Policy(fail_max=50), on_event=events.append,
                      sleep=waits.append)
    rel.degradations = []
    rel.on_degradation = rel.degradations.append
    with fake_service() as server:
        provider, reply = _provider(request.param, server.url, rel)
        provider.kind = request.param
        yield provider, reply, server, waits, events


def test_ok_and_usage(setup):
    provider, reply, server, _, events = setup
    server.program(ok(reply))
    done = provider.complete("Translate.", "Namaste")
    assert done.text == "Hello there." and (done.input_tokens, done.output_tokens) == (12, 3)
    assert len(server.requests) == 1 and events[-1]["outcome"] == "ok"
    assert done.cost_usd == PRICE.cost(12, 3) and provider.reliability.degradations == []


SYSTEM, USER = "Translate the lines.", json.dumps({"segments": ["नमस्ते " * 40]})
SENT = Sent.of(SYSTEM, USER, None, 256)
ESTIMATE_IN = SENT.bytes // 4 + 20


@pytest.mark.parametrize(
    ("claim", "booked"),
    [
        ({"in": 10**9}, (ESTIMATE_IN, 3)),  # a billion tokens for a short request
        ({"in": -840_000_000}, (ESTIMATE_IN, 3)),  # negative: a refund nobody gave
        ({"in": 0}, (ESTIMATE_IN, 3)),  # nothing read from ~1 KB sent
        ({"in": 120.5}, (ESTIMATE_IN, 3)),
        ({"in": "many"}, (ESTIMATE_IN, 3)),
        ({"in": True}, (ESTIMATE_IN, 3)),
        ({"in": None}, (ESTIMATE_IN, 3)),
        ({"out": 257}, (120, 4)),  # more output than max_tokens allowed
        ({"out": -1}, (120, 4)),
        ({"in": 10**9, "out": 10**9}, (ESTIMATE_IN, 4)),
        (None, (ESTIMATE_IN, 4)),  # no usage at all
    ],
)
def test_implausible_usage_books_the_estimate_and_says_so(setup, claim, booked):
    """Usage from the real SDKs' parsing of each wire format: a count that is not a
    non-negative integer plausible for the bytes sent (or within max_tokens) is replaced by
    the request's estimate; the reply can then cost no more than the request's worst case."""
    provider, reply, server, _, events = setup
    body = copy.deepcopy(reply)
    names = USAGE[provider.kind]
    body["usage"][names[0]] = 120  # plausible for ~1 KB sent
    if claim is None:
        del body["usage"]
    else:
        for side, value in claim.items():
            body["usage"][names[side == "out"]] = value
    server.program(ok(body))
    done = provider.complete(SYSTEM, USER, max_tokens=256)
    assert (done.input_tokens, done.output_tokens) == booked
    assert done.cost_usd == pytest.approx(PRICE.cost(*booked))
    assert done.cost_usd <= SENT.worst_cost(PRICE)
    assert (events[-1]["input_tokens"], events[-1]["output_tokens"]) == booked
    assert events[-1]["cost_usd"] == done.cost_usd >= 0
    [note] = provider.reliability.degradations
    assert note["service"] == provider.service and note["kind"] == "implausible_usage"
    assert note["message"].startswith(f"{provider.service}:{provider.model} reported ")
    claimed = [v for v in (claim or {}).values() if type(v) in (int, float)]
    assert all(f" {v} " in note["message"] for v in claimed)  # what it claimed
    assert f"{booked[0]} input and {booked[1]} output tokens" in note["fallback"]


@pytest.mark.parametrize(
    ("faults", "requests", "kind"),
    [
        ([status(429, retry_after="2")], 6, "rate_limit"),
        ([status(500)], 4, "server"),
        ([status(503)], 4, "server"),
        ([status(401)], 1, "auth"),
        ([status(429, QUOTA)], 1, "quota"),
        ([status(400)], 1, "client"),
        ([reset()], 4, "network"),
        ([hang(5)], 4, "timeout"),
        ([malformed()], 2, "malformed"),
    ],
)
def test_policies_with_the_real_sdks(setup, faults: list[Fault], requests: int, kind: str):
    provider, _, server, waits, _ = setup
    server.program(*faults)
    started = time.monotonic()
    with pytest.raises(ServiceError) as info:
        provider.complete("Translate.", "Namaste")
    assert info.value.kind == kind
    assert len(server.requests) == requests  # the SDK's own retries are off
    assert KEY not in str(info.value)
    if kind == "rate_limit":
        assert waits == [2.0] * 5
    assert time.monotonic() - started < 10


def test_recovers_after_transient_faults(setup):
    provider, reply, server, _, _ = setup
    server.program(status(502), reset(), ok(reply))
    assert provider.complete("s", "u").text == "Hello there."
    assert len(server.requests) == 3


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_trickling_reply_ends_at_the_deadline(tmp_path: Path, kind: str):
    """One byte every 2 s never trips a 2.5 s read timeout; the 3 s deadline of the call
    still ends the attempt in progress, and the connection is closed."""
    events: list[dict] = []
    rel = Reliability(tmp_path / "b", Policy(deadline_s=3.0), on_event=events.append,
                      sleep=lambda s: None)
    with trickle_server(2.0) as server:
        provider, _ = _provider(kind, server.url, rel, read_timeout_s=2.5)
        started = time.monotonic()
        with pytest.raises(ServiceError) as info:
            provider.complete("Translate.", "Namaste")
        took = time.monotonic() - started
        assert server.hung_up.wait(3)  # nothing left reading from it
    assert info.value.kind == "timeout" and "deadline of 3 s" in str(info.value)
    assert 3.0 <= took < 4.0
    assert events[-1]["attempts"] == 1 and events[-1]["outcome"] == "failed"
    assert events[-1]["error_class"] == "timeout" and server.requests == 1


# Keys of unusual shapes: short, with characters that URL and JSON encode differently.
ODD_KEYS = ["x9Qv2k", 'Zq/8"v+w é']


@pytest.mark.parametrize("key", ODD_KEYS)
def test_a_reply_repeating_the_key_shows_it_nowhere(setup, key, caplog):
    provider, _, server, _, events = setup
    provider, _ = _provider(provider.kind, server.url, Reliability(
        provider.reliability.state_dir, Policy(fail_max=50), on_event=events.append,
        sleep=lambda s: None, secrets=[key]))
    caplog.set_level(logging.DEBUG)
    server.program(status(401, {"error": {"message": f"Incorrect API key provided: {key}",
                                          "key": key}}))
    with pytest.raises(ServiceError) as info:
        provider.complete("Translate.", "Namaste")
    error = info.value
    assert error.kind == "auth" and "Incorrect API key provided: ***" in str(error)
    assert error.__cause__ is None and error.__context__ is None  # the SDK's raw error
    seen = " ".join([str(error), repr(error), json.dumps(events, ensure_ascii=False),
                     caplog.text])
    for form in (key, json.dumps(key)[1:-1], json.dumps(key, ensure_ascii=False)[1:-1]):
        assert form not in seen
