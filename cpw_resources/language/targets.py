"""Which translation route makes each subtitle language, and which languages none can make.

Whisper's translate task makes English only; an LLM backend (``CPW_TRANSLATION_BACKEND=llm``)
makes any language. ``auto`` (the default) chooses by evidence: the local model (the `local`
extra, no key, no network) where ``benchmarks/bench_local_llm.py`` measured its English better
than Whisper's translate task, and for every language but English; Whisper's translate task
otherwise, and whenever the local model is not installed. Asked before a run (``cpw run``,
the inbox sensor, the run coordinator) and by ``translation`` for each language, so a
language nobody can make is refused with one line naming the backend that could, instead of
failing a title whose other languages are fine.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache

#: Spoken languages whose English the local model writes better than Whisper's translate
#: task, as measured on the corpus films (BLEU into English, transcript → local model vs
#: Whisper base's translate task; benchmarks/bench_local_llm.py, docs/local-llm.md).
LOCAL_BETTER_INTO_EN: dict[str, tuple[float, float]] = {
    "fr": (22.0, 16.1),  # fr_asterisk, 478 s
    "es": (22.8, 19.5),  # es_asterisk, 530 s
}


@dataclass(frozen=True)
class Route:
    """How one language's subtitles are made: ``whisper`` or ``llm`` with ``llm``."""

    backend: str
    llm: str | None
    reason: str


@lru_cache(maxsize=1)
def local_installed() -> bool:
    """Whether the local model can run here: its runtime and its packaged weights."""
    from cpw_resources.errors import ConfigError
    from cpw_resources.llm.local import DEFAULT_MODEL, MODELS

    if any(importlib.util.find_spec(m) is None for m in ("llama_cpp", "uvicorn")):
        return False
    try:
        MODELS[DEFAULT_MODEL].part_paths()
    except ConfigError:
        return False
    return True


def route(backend: str, llm: str, source: str | None, target: str) -> Route:
    """The route for subtitles in ``target`` from speech in ``source`` under ``backend``."""
    if backend == "whisper":
        return Route("whisper", None, "CPW_TRANSLATION_BACKEND=whisper")
    if backend == "llm":
        return Route("llm", llm, f"CPW_TRANSLATION_BACKEND=llm ({llm})")
    from cpw_resources.llm.local import DEFAULT_MODEL

    local = f"local:{DEFAULT_MODEL}"
    if not local_installed():
        return Route("whisper", None, "auto: the local model is not installed (the `local` "
                     "extra), so Whisper's translate task")
    if target != "en":
        return Route("llm", local, f"auto: only an LLM writes {target!r}; the local model")
    if source in LOCAL_BETTER_INTO_EN:
        ours, whisper = LOCAL_BETTER_INTO_EN[source]
        return Route("llm", local, f"auto: the local model's English from {source!r} measured "
                     f"better than Whisper's translate task (BLEU {ours:.1f} vs {whisper:.1f})")
    return Route("whisper", None, f"auto: for {source or 'this'} speech the local model was "
                 "not measured better than Whisper's translate task")


def _any_language(backend: str) -> bool:
    return backend == "llm" or (backend == "auto" and local_installed())


def unreachable(languages: list[str], spoken: str | None, backend: str) -> str | None:
    """Before any run: why one of the subtitle ``languages`` cannot be made with ``backend``
    from speech in ``spoken`` (None: not known yet), or None when all can."""
    if _any_language(backend):
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
    if _any_language(backend) or target == "en" or source == target or source is None:
        return None
    return (f"{target!r}: Whisper's translate task only produces English; an LLM can translate "
            f"into {target!r}: install the local model (pip install 'cp-whisperx[local]') or "
            f"set CPW_TRANSLATION_BACKEND=llm and CPW_TRANSLATION_LLM=PROVIDER:MODEL "
            f"(openai:…, anthropic:…, compatible:… for your own server, local:…)")
