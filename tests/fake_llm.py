"""Replies of a subtitle-editing model in the OpenAI Chat Completions and Anthropic Messages
wire formats, for the 127.0.0.1 servers of tests and benchmarks (``tests.fake_service``).

The "model" is deterministic: for each segment of the request it returns the translation with
glossary names spelled as the glossary says (a near miss such as 'Akash' becomes 'Aakash'),
so tests can tell an enhanced line from the MT. Usage is reported in tokens counted by a real
BPE tokenizer when one is given (benchmarks: Whisper's, GPT-2 family), else bytes / 4.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from rapidfuzz import fuzz

from tests.fake_service import Fault, ok

Count = Callable[[str], int]


def byte_tokens(text: str) -> int:
    return max(1, len(text.encode()) // 4)


def edit(segment: dict[str, Any], glossary: list[dict[str, Any]]) -> str:
    text = segment["translation"]
    for term in glossary:
        name = term.get("render") or term["term"]
        n = len(name.split())
        words = text.split()
        for i in range(len(words) - n + 1):
            window = " ".join(words[i:i + n])
            bare = re.sub(r"[^\w\s'-]", "", window)
            if bare != name and fuzz.ratio(bare.lower(), name.lower()) >= 70:
                words[i:i + n] = [window.replace(bare, name)]
        text = " ".join(words)
    return text


def _request_data(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(the user message's JSON data, the whole prompt text) of either wire format."""
    user = body["messages"][-1]["content"]
    system = body.get("system") or body["messages"][0]["content"]
    return json.loads(user), f"{system}\n{user}"


def reply_segments(body: dict[str, Any], editor: Callable[..., str] = edit) -> list[dict]:
    data, _ = _request_data(body)
    return [{"id": s["id"], "text": editor(s, data.get("glossary", []))}
            for s in data["segments"]]


def openai_reply(body: dict[str, Any], content: str | None = None,
                 count: Count = byte_tokens, editor: Callable[..., str] = edit) -> Fault:
    _, prompt = _request_data(body)
    if content is None:
        content = json.dumps({"segments": reply_segments(body, editor)}, ensure_ascii=False)
    usage = {"prompt_tokens": count(prompt), "completion_tokens": count(content)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return ok({"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
               "model": body["model"], "usage": usage,
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content}}]})


def anthropic_reply(body: dict[str, Any], payload: Any = None,
                    count: Count = byte_tokens, editor: Callable[..., str] = edit) -> Fault:
    _, prompt = _request_data(body)
    if payload is None:
        payload = {"segments": reply_segments(body, editor)}
    block = {"type": "tool_use", "id": "toolu_1", "name": "reply", "input": payload}
    return ok({"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
               "content": [block], "stop_reason": "tool_use", "stop_sequence": None,
               "usage": {"input_tokens": count(prompt),
                         "output_tokens": count(json.dumps(payload, ensure_ascii=False))}})


def serve(server, kind: str = "openai", **kwargs: Any) -> None:
    """Make ``server`` answer every request as the editor model of ``kind``."""
    reply = openai_reply if kind == "openai" else anthropic_reply

    def chooser(path: str) -> Fault:
        return reply(json.loads(server.requests[-1]["body"]), **kwargs)

    server.chooser = chooser
