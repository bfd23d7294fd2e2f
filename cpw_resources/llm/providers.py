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
``CPW_COMPATIBLE_BASE_URL``, ``CPW_COMPATIBLE_API_KEY``); nothing here reads the environment. Every
call's ``api_calls`` event carries the model, token usage and dollar cost (``pricing``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from cpw_resources.errors import ConfigError
from cpw_resources.llm.pricing import Price, Pricing
from cpw_resources.services.reliability import MALFORMED, Reliability, ServiceError

PROVIDERS = ("openai", "anthropic", "compatible")
SERVICES = {"openai": "openai", "anthropic": "anthropic", "compatible": "openai-compatible"}


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
                 schema: dict[str, Any] | None = None) -> Completion: ...


def _timeout(sdk: object, connect_s: float, read_s: float) -> object:
    """A Timeout of the HTTP library the SDK itself uses (httpx or its fork httpx2)."""
    return type(sdk.DEFAULT_TIMEOUT)(read_s, connect=connect_s)


class _Provider:
    service: str
    model: str
    price: Price | None
    reliability: Reliability
    operation: str

    def _call(self, fn: Any) -> Completion:
        def describe(done: Completion) -> dict[str, Any]:
            return {"input_tokens": done.input_tokens, "output_tokens": done.output_tokens,
                    "cost_usd": done.cost_usd}

        return self.reliability.call(self.service, self.operation, fn, describe=describe,
                                     context={"model": self.model})

    def _done(self, text: str, input_tokens: int, output_tokens: int, model: str) -> Completion:
        cost = self.price.cost(input_tokens, output_tokens) if self.price else None
        return Completion(text, input_tokens, output_tokens, model or self.model, cost)


class OpenAIProvider(_Provider):
    operation = "chat"

    def __init__(self, model: str, reliability: Reliability, *, service: str = "openai",
                 base_url: str | None = None, api_key: str | None = None,
                 connect_timeout_s: float = 5.0, read_timeout_s: float = 60.0,
                 price: Price | None = None) -> None:
        import openai

        self.model, self.service, self.reliability, self.price = model, service, reliability, price
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or None, max_retries=0,
                                    timeout=_timeout(openai, connect_timeout_s, read_timeout_s))

    def complete(self, system: str, user: str, *, max_tokens: int = 1024,
                 schema: dict[str, Any] | None = None) -> Completion:
        extra: dict[str, Any] = {}
        if schema is not None:
            extra["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "reply", "strict": True, "schema": schema}}

        def call() -> Completion:
            reply = self.client.chat.completions.create(
                model=self.model, max_tokens=max_tokens,
                messages=[{"role": "system", "content": system},
                          {"role": "user", "content": user}],
                **extra,
            )
            if not getattr(reply, "choices", None):
                raise ServiceError(self.service, "chat", MALFORMED, "reply has no choices")
            usage = reply.usage
            return self._done(reply.choices[0].message.content or "",
                              usage.prompt_tokens if usage else 0,
                              usage.completion_tokens if usage else 0, reply.model)

        return self._call(call)


class AnthropicProvider(_Provider):
    operation = "messages"

    def __init__(self, model: str, reliability: Reliability, *, service: str = "anthropic",
                 base_url: str | None = None, api_key: str | None = None,
                 connect_timeout_s: float = 5.0, read_timeout_s: float = 60.0,
                 price: Price | None = None) -> None:
        import anthropic

        self.model, self.service, self.reliability, self.price = model, service, reliability, price
        self.client = anthropic.Anthropic(base_url=base_url, api_key=api_key or None,
                                          max_retries=0,
                                          timeout=_timeout(anthropic, connect_timeout_s,
                                                           read_timeout_s))

    def complete(self, system: str, user: str, *, max_tokens: int = 1024,
                 schema: dict[str, Any] | None = None) -> Completion:
        extra: dict[str, Any] = {}
        if schema is not None:
            extra = {"tools": [{"name": "reply", "description": "Submit the reply.",
                                "input_schema": schema}],
                     "tool_choice": {"type": "tool", "name": "reply"}}

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
            return self._done(text, reply.usage.input_tokens, reply.usage.output_tokens,
                              reply.model)

        return self._call(call)


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


def make_provider(spec: ProviderSpec, access: LlmAccess, reliability: Reliability,
                  pricing: Pricing, *, setting: str = "") -> LlmProvider:
    """A provider for ``spec`` with its key, base URL and price."""
    where = f" ({setting})" if setting else ""
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
