"""LLM providers behind one interface, each through the reliability layer.

``OpenAIProvider`` speaks Chat Completions: OpenAI itself (``openai:MODEL``) and any
OpenAI-compatible server such as Ollama, vLLM or llama.cpp (``compatible:MODEL`` at
``CPW_COMPATIBLE_BASE_URL``). ``AnthropicProvider`` speaks Messages (``anthropic:MODEL``).
With a JSON schema, OpenAI-style servers get ``response_format: json_schema`` (strict) and
Anthropic a forced tool whose input is that schema, so replies are structured output, still
validated by the caller. The real SDKs are used with their own retries switched off
(``max_retries=0``) and explicit connect/read timeouts, so the reliability layer's policy is
the only one. Keys and base URLs come in an :class:`LlmAccess` from the ``llm`` resource
(``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``,
``CPW_COMPATIBLE_BASE_URL``, ``CPW_COMPATIBLE_API_KEY``); nothing here reads the environment.
Their HTTP clients come from :func:`~cpw_resources.services.reliability.http_client`, so the
call's deadline bounds a reply in progress too. Every call's ``api_calls`` event carries the
model, token usage and dollar cost (``pricing``).

Usage a reply reports is checked, not trusted (:class:`Sent`): each count must be a
non-negative integer, input plausible for the bytes sent, output within the reply's length
and ``max_tokens``. A count that is not is replaced by the request's own estimate, and a
``degradations`` row names the provider, what it claimed and what was booked. So no reply can
cost more than :meth:`Sent.worst_cost`, which the engine checks against the budget before
sending.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from cpw_resources.errors import ConfigError
from cpw_resources.llm.pricing import Price, Pricing
from cpw_resources.services.reliability import (
    MALFORMED,
    Reliability,
    ServiceError,
    http_client,
)

if TYPE_CHECKING:
    from cpw_resources.llm.local import LocalServer

PROVIDERS = ("openai", "anthropic", "compatible", "local")
SERVICES = {"openai": "openai", "anthropic": "anthropic", "compatible": "openai-compatible",
            "local": "local-llm"}


@dataclass(frozen=True)
class ProviderSpec:
    """``provider:model``, e.g. ``openai:gpt-4o-mini``, ``compatible:llama3.1:8b``."""

    provider: str
    model: str

    @classmethod
    def parse(cls, text: str, setting: str) -> ProviderSpec:
        provider, _, model = text.strip().partition(":")
        if provider not in PROVIDERS or not model:
            raise ConfigError(f"{setting}={text!r}: expected PROVIDER:MODEL with PROVIDER one "
                              f"of {', '.join(PROVIDERS)} (e.g. openai:gpt-4o-mini)")
        return cls(provider, model)

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.model}"


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    model: str
    cost_usd: float | None = None


class LlmProvider(Protocol):
    service: str
    model: str

    def complete(self, system: str, user: str, *, max_tokens: int = 1024,
                 schema: dict[str, Any] | None = None, items: int | None = None) -> Completion: ...


#: Tokens a chat format adds to what was sent (role markers; Anthropic's tool-use prompt).
FRAMING_TOKENS = 1024
#: No tokenizer packs more bytes into a token, on average over a request or a reply.
MAX_BYTES_PER_TOKEN = 32
#: The estimate: ~4 bytes of UTF-8 per token, and a few tokens around each message.
BYTES_PER_TOKEN = 4
ESTIMATE_OVERHEAD_TOKENS = 20


@dataclass(frozen=True)
class Sent:
    """One request's size and output limit: what its reply's usage may plausibly be."""

    bytes: int
    max_tokens: int

    @classmethod
    def of(cls, system: str, user: str, schema: dict[str, Any] | None,
           max_tokens: int) -> Sent:
        size = len(system.encode()) + len(user.encode())
        if schema is not None:
            size += len(json.dumps(schema).encode())
        return cls(size, max_tokens)

    @property
    def max_input_tokens(self) -> int:
        """Every input token is at least one byte sent, or part of the chat format."""
        return self.bytes + FRAMING_TOKENS

    def worst_cost(self, price: Price) -> float:
        """The most a reply to this request can book: all the input it may count and all of
        ``max_tokens``."""
        return price.cost(self.max_input_tokens, self.max_tokens)

    def booked(self, claimed_input: Any, claimed_output: Any, text: str) -> tuple[int, int]:
        """(input, output) tokens to book: each claim if plausible, else the estimate."""
        out_bytes = len(text.encode())
        input_tokens = _plausible(claimed_input, self.bytes // MAX_BYTES_PER_TOKEN,
                                  self.max_input_tokens)
        output_tokens = _plausible(claimed_output, out_bytes // MAX_BYTES_PER_TOKEN,
                                   self.max_tokens)
        if input_tokens is None:
            input_tokens = self.bytes // BYTES_PER_TOKEN + ESTIMATE_OVERHEAD_TOKENS
        if output_tokens is None:
            output_tokens = min(self.max_tokens, out_bytes // BYTES_PER_TOKEN + 1)
        return input_tokens, output_tokens


def _plausible(count: Any, low: int, high: int) -> int | None:
    """``count`` when it is an integer (not a bool) in [low, high], else None."""
    if isinstance(count, bool) or not isinstance(count, int) or not low <= count <= high:
        return None
    return count


def _claim(value: Any) -> str:
    """A claimed count as it may be shown: short, whatever the provider sent."""
    return repr(value)[:40]


class _Provider:
    service: str
    model: str
    price: Price | None
    reliability: Reliability
    operation: str
    deadline_s: float | None = None  # the reliability policy's unless set

    def _call(self, fn: Any, items: int | None = None) -> Completion:
        """``fn`` through the breaker and retries; its ``api_calls`` row names the model and,
        when given, how many ``items`` (segments) the request carried."""
        def describe(done: Completion) -> dict[str, Any]:
            return {"input_tokens": done.input_tokens, "output_tokens": done.output_tokens,
                    "cost_usd": done.cost_usd}

        context: dict[str, Any] = {"model": self.model}
        if items is not None:
            context["segments"] = items
        return self.reliability.call(self.service, self.operation, fn, describe=describe,
                                     context=context, deadline_s=self.deadline_s)

    def _done(self, text: str, usage: Any, fields: tuple[str, str], model: Any,
              sent: Sent) -> Completion:
        """The completion with its usage checked against ``sent`` (see :class:`Sent`)."""
        claimed = tuple(getattr(usage, name, None) for name in fields)
        input_tokens, output_tokens = sent.booked(*claimed, text)
        cost = self.price.cost(input_tokens, output_tokens) if self.price else None
        if (input_tokens, output_tokens) != claimed:
            self.reliability.degraded(
                self.service, "implausible_usage",
                f"{self.service}:{self.model} reported {_claim(claimed[0])} input and "
                f"{_claim(claimed[1])} output tokens for a request of {sent.bytes} bytes "
                f"with max_tokens {sent.max_tokens}",
                f"booked the request's estimate: {input_tokens} input and {output_tokens} "
                f"output tokens" + (f" (${cost:.6f})" if cost is not None else ""))
        return Completion(text, input_tokens, output_tokens,
                          model if isinstance(model, str) and model else self.model, cost)


def _http(sdk: ModuleType, connect_s: float, read_s: float) -> Any:
    """An HTTP client of the library ``sdk`` uses (httpx or its fork httpx2), bounded by the
    call's deadline."""
    library = sdk.DefaultHttpxClient.__mro__[1].__module__.split(".")[0]
    return http_client(importlib.import_module(library), connect_s=connect_s, read_s=read_s,
                       follow_redirects=True)


class OpenAIProvider(_Provider):
    operation = "chat"

    def __init__(self, model: str, reliability: Reliability, *, service: str = "openai",
                 base_url: str | None = None, api_key: str | None = None,
                 connect_timeout_s: float = 5.0, read_timeout_s: float = 60.0,
                 price: Price | None = None, json_mode: str = "json_schema",
                 deadline_s: float | None = None) -> None:
        import openai

        self.model, self.service, self.reliability, self.price = model, service, reliability, price
        self.json_mode, self.deadline_s = json_mode, deadline_s
        http = _http(openai, connect_timeout_s, read_timeout_s)
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or None, max_retries=0,
                                    http_client=http, timeout=http.timeout)

    def complete(self, system: str, user: str, *, max_tokens: int = 1024,
                 schema: dict[str, Any] | None = None, items: int | None = None) -> Completion:
        extra: dict[str, Any] = {}
        if schema is not None and self.json_mode == "json_object":  # llama.cpp's server
            extra["response_format"] = {"type": "json_object", "schema": schema}
        elif schema is not None:
            extra["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "reply", "strict": True, "schema": schema}}

        sent = Sent.of(system, user, schema, max_tokens)

        def call() -> Completion:
            reply = self.client.chat.completions.create(
                model=self.model, max_tokens=max_tokens,
                messages=[{"role": "system", "content": system},
                          {"role": "user", "content": user}],
                **extra,
            )
            if not getattr(reply, "choices", None):
                raise ServiceError(self.service, "chat", MALFORMED, "reply has no choices")
            return self._done(reply.choices[0].message.content or "",
                              getattr(reply, "usage", None),
                              ("prompt_tokens", "completion_tokens"), reply.model, sent)

        return self._call(call, items)


class AnthropicProvider(_Provider):
    operation = "messages"

    def __init__(self, model: str, reliability: Reliability, *, service: str = "anthropic",
                 base_url: str | None = None, api_key: str | None = None,
                 connect_timeout_s: float = 5.0, read_timeout_s: float = 60.0,
                 price: Price | None = None) -> None:
        import anthropic

        self.model, self.service, self.reliability, self.price = model, service, reliability, price
        http = _http(anthropic, connect_timeout_s, read_timeout_s)
        self.client = anthropic.Anthropic(base_url=base_url, api_key=api_key or None,
                                          max_retries=0, http_client=http, timeout=http.timeout)

    def complete(self, system: str, user: str, *, max_tokens: int = 1024,
                 schema: dict[str, Any] | None = None, items: int | None = None) -> Completion:
        extra: dict[str, Any] = {}
        if schema is not None:
            extra = {"tools": [{"name": "reply", "description": "Submit the reply.",
                                "input_schema": schema}],
                     "tool_choice": {"type": "tool", "name": "reply"}}

        sent = Sent.of(system, user, schema, max_tokens)

        def call() -> Completion:
            reply = self.client.messages.create(
                model=self.model, max_tokens=max_tokens, system=system,
                messages=[{"role": "user", "content": user}], **extra,
            )
            blocks = getattr(reply, "content", None)
            if not isinstance(blocks, list):
                raise ServiceError(self.service, "messages", MALFORMED, "reply has no content")
            tools = [b for b in blocks if getattr(b, "type", "") == "tool_use"]
            if schema is not None and tools:
                text = json.dumps(tools[0].input, ensure_ascii=False)
            else:
                text = "".join(b.text for b in blocks if getattr(b, "type", "") == "text")
            return self._done(text, getattr(reply, "usage", None),
                              ("input_tokens", "output_tokens"), reply.model, sent)

        return self._call(call, items)


@dataclass(frozen=True)
class LlmAccess:
    """Keys, base URLs and timeouts of the LLM APIs (from the ``llm`` resource; never logged)."""

    openai_api_key: str | None = None
    openai_base_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    compatible_base_url: str | None = None
    compatible_api_key: str | None = None
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    local: LocalServer | None = None  # the machine's local model servers (``local:NAME``)
    local_timeout_s: float = 600.0  # one local request, waiting for the server included


def make_provider(spec: ProviderSpec, access: LlmAccess, reliability: Reliability,
                  pricing: Pricing, *, setting: str = "") -> LlmProvider:
    """A provider for ``spec`` with its key, base URL and price."""
    where = f" ({setting})" if setting else ""
    if spec.provider == "local":
        from cpw_resources.llm.local import LocalProvider

        if access.local is None:
            raise ConfigError(f"{spec.label}{where}: no local model server is configured here")
        return LocalProvider(spec.model, access.local, reliability,
                             read_timeout_s=access.local_timeout_s,
                             price=pricing.price(spec.provider, spec.model))
    if spec.provider == "compatible":
        base_url, api_key = access.compatible_base_url, access.compatible_api_key or "no-key"
        if not base_url:
            raise ConfigError(f"{spec.label}{where} needs CPW_COMPATIBLE_BASE_URL, the server's "
                              "OpenAI-compatible URL (e.g. http://127.0.0.1:11434/v1 for Ollama)")
    else:
        key_var, url_var = f"{spec.provider.upper()}_API_KEY", f"{spec.provider.upper()}_BASE_URL"
        api_key = getattr(access, f"{spec.provider}_api_key")
        base_url = getattr(access, f"{spec.provider}_base_url")
        if api_key is None and base_url is None:
            raise ConfigError(f"{spec.label}{where} needs {key_var} (or {url_var} for a local "
                              "server that takes no key)")
    price = pricing.price(spec.provider, spec.model)
    try:
        cls = AnthropicProvider if spec.provider == "anthropic" else OpenAIProvider
        return cls(spec.model, reliability, service=SERVICES[spec.provider], base_url=base_url,
                   api_key=api_key or "no-key", price=price,
                   connect_timeout_s=access.connect_timeout_s,
                   read_timeout_s=access.read_timeout_s)
    except ImportError as error:
        raise ConfigError(f"the {spec.provider} SDK is not installed: "
                          "pip install 'cp-whisperx[llm]'") from error
