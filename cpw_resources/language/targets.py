"""Which subtitle languages the configured translation backends can make.

Whisper's translate task makes English only; an LLM backend (``CPW_TRANSLATION_BACKEND=llm``)
makes any language. Asked before a run (``cpw run``, the inbox sensor) and by ``translation``
for each language, so a language nobody can make is refused with one line naming the backend
that could, instead of failing a title whose other languages are fine.
"""

from __future__ import annotations


def unreachable(languages: list[str], spoken: str | None, backend: str) -> str | None:
    """Before any run: why one of the subtitle ``languages`` cannot be made with ``backend``
    from speech in ``spoken`` (None: not known yet), or None when all can."""
    if backend == "llm":
        return None
    for language in languages:
        if language != "en" and language != spoken:
            why = unavailable(spoken or "an unknown language", language, backend)
            if why:
                said = "" if spoken else (
                    f"; or, if the film is spoken in {language!r}, say so: "
                    f"CPW_LANGUAGE={language}")
                return f"cannot subtitle in {why}{said}"
    return None


def unavailable(source: str | None, target: str, backend: str) -> str | None:
    """Why no configured backend can translate into ``target``, naming the ones that could;
    None when it can be done."""
    if backend == "llm" or target == "en" or source == target or source is None:
        return None
    return (f"{target!r}: Whisper's translate task only produces English; an LLM can translate "
            f"into {target!r}: set CPW_TRANSLATION_BACKEND=llm and CPW_TRANSLATION_LLM="
            f"PROVIDER:MODEL (openai:…, anthropic:…, or compatible:… for a local server)")
