"""The real OpenAI and Anthropic SDKs against 127.0.0.1 servers with injected faults."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cpw_resources.llm.providers import AnthropicProvider, OpenAIProvider
from cpw_resources.services.reliability import Policy, Reliability, ServiceError
from tests.fake_service import Fault, fake_service, hang, malformed, ok, reset, status

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


def _provider(kind: str, url: str, rel: Reliability):
    if kind == "openai":
        return OpenAIProvider("gpt-4o-mini", rel, base_url=url + "/v1", api_key=KEY,
                              read_timeout_s=0.4), OPENAI_OK
    return AnthropicProvider("claude-haiku", rel, base_url=url, api_key=KEY,
                             read_timeout_s=0.4), ANTHROPIC_OK


@pytest.fixture(params=["openai", "anthropic"])
def setup(request, tmp_path: Path):
    waits: list[float] = []
    events: list[dict] = []
    rel = Reliability(tmp_path / "breakers", Policy(fail_max=50), on_event=events.append,
                      sleep=waits.append)
    with fake_service() as server:
        provider, reply = _provider(request.param, server.url, rel)
        yield provider, reply, server, waits, events


def test_ok_and_usage(setup):
    provider, reply, server, _, events = setup
    server.program(ok(reply))
    done = provider.complete("Translate.", "Namaste")
    assert done.text == "Hello there." and (done.input_tokens, done.output_tokens) == (12, 3)
    assert len(server.requests) == 1 and events[-1]["outcome"] == "ok"


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
