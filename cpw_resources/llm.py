"""LLM providers behind one interface, each through the reliability layer.

``OpenAIProvider`` (Chat Completions; also any OpenAI-compatible server such as Ollama, vLLM
or llama.cpp through ``base_url``) and ``AnthropicProvider`` (Messages). The real SDKs are
used with their own retries switched off (``max_retries=0``) and explicit connect/read
timeouts, so the reliability layer's policy is the only one. Base URLs and keys come from the
environment the SDKs already read: ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``,
``ANTHROPIC_BASE_URL``, ``ANTHROPIC_API_KEY``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from cpw_resources.errors import ConfigError
from cpw_resources.reliability import MALFORMED, Reliability, ServiceError
from cpw_resources.settings import Settings


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    model: str


class LlmProvider(Protocol):
    service: str

    def complete(self, system: str, user: str, *, max_tokens: int = 1024) -> Completion: ...


def _timeout(sdk: object, connect_s: float, read_s: float) -> object:
    """A Timeout of the HTTP library the SDK itself uses (httpx or its fork httpx2)."""
    return type(sdk.DEFAULT_TIMEOUT)(read_s, connect=connect_s)


class OpenAIProvider:
    def __init__(self, model: str, reliability: Reliability, *, service: str = "openai",
                 base_url: str | None = None, api_key: str | None = None,
                 connect_timeout_s: float = 5.0, read_timeout_s: float = 60.0) -> None:
        import openai

        self.model, self.service, self.reliability = model, service, reliability
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or None, max_retries=0,
                                    timeout=_timeout(openai, connect_timeout_s, read_timeout_s))

    def complete(self, system: str, user: str, *, max_tokens: int = 1024) -> Completion:
        def call() -> Completion:
            reply = self.client.chat.completions.create(
                model=self.model, max_tokens=max_tokens,
                messages=[{"role": "system", "content": system},
                          {"role": "user", "content": user}],
            )
            if not getattr(reply, "choices", None):
                raise ServiceError(self.service, "chat", MALFORMED, "reply has no choices")
            usage = reply.usage
            return Completion(reply.choices[0].message.content or "",
                              usage.prompt_tokens if usage else 0,
                              usage.completion_tokens if usage else 0, reply.model)

        return self.reliability.call(self.service, "chat", call)


class AnthropicProvider:
    def __init__(self, model: str, reliability: Reliability, *, service: str = "anthropic",
                 base_url: str | None = None, api_key: str | None = None,
                 connect_timeout_s: float = 5.0, read_timeout_s: float = 60.0) -> None:
        import anthropic

        self.model, self.service, self.reliability = model, service, reliability
        self.client = anthropic.Anthropic(base_url=base_url, api_key=api_key or None,
                                          max_retries=0,
                                          timeout=_timeout(anthropic, connect_timeout_s,
                                                           read_timeout_s))

    def complete(self, system: str, user: str, *, max_tokens: int = 1024) -> Completion:
        def call() -> Completion:
            reply = self.client.messages.create(
                model=self.model, max_tokens=max_tokens, system=system,
                messages=[{"role": "user", "content": user}],
            )
            blocks = getattr(reply, "content", None)
            if not isinstance(blocks, list):
                raise ServiceError(self.service, "messages", MALFORMED, "reply has no content")
            text = "".join(b.text for b in blocks if getattr(b, "type", "") == "text")
            return Completion(text, reply.usage.input_tokens, reply.usage.output_tokens,
                              reply.model)

        return self.reliability.call(self.service, "messages", call)


def provider_from_settings(settings: Settings, reliability: Reliability) -> LlmProvider:
    """The configured provider; keys and base URLs from the SDKs' usual variables."""
    timeouts = {"connect_timeout_s": settings.http_connect_timeout_s,
                "read_timeout_s": settings.http_read_timeout_s}
    name = settings.llm_provider
    key_var, url_var = f"{name.upper()}_API_KEY", f"{name.upper()}_BASE_URL"
    base_url, api_key = os.environ.get(url_var) or None, os.environ.get(key_var) or None
    if api_key is None and base_url is None:
        raise ConfigError(f"CPW_TRANSLATION_BACKEND=llm with provider {name!r} needs {key_var} "
                          f"(or {url_var} for a local server that takes no key)")
    try:
        cls = AnthropicProvider if name == "anthropic" else OpenAIProvider
        return cls(settings.llm_model, reliability, base_url=base_url,
                   api_key=api_key or "no-key", **timeouts)
    except ImportError as error:
        raise ConfigError(f"the {name} SDK is not installed: pip install 'cp-whisperx[llm]'"
                          ) from error
