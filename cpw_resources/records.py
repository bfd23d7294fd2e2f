"""Typed records passed between stages: words, segments and subtitle cues.

They are plain dataclasses that serialise to the JSON artifacts (``transcript.json``,
``translation.json``) with :func:`dataclasses.asdict` and back with ``from_dict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float = 1.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Word:
        return cls(
            float(d["start"]), float(d["end"]), str(d["word"]), float(d.get("probability", 1.0))
        )


@dataclass(frozen=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segment:
        return cls(
            id=int(d["id"]),
            start=float(d["start"]),
            end=float(d["end"]),
            text=str(d["text"]),
            words=tuple(Word.from_dict(w) for w in d.get("words", ())),
            avg_logprob=float(d.get("avg_logprob", 0.0)),
            no_speech_prob=float(d.get("no_speech_prob", 0.0)),
            compression_ratio=float(d.get("compression_ratio", 1.0)),
        )


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]
    segment_ids: tuple[int, ...] = field(default=())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def chars(self) -> int:
        """Characters a viewer reads: line text without the line break."""
        return sum(len(line) for line in self.lines)


def read_segments(document: dict[str, Any]) -> list[Segment]:
    """Segments from a transcript/translation JSON document."""
    return [Segment.from_dict(d) for d in document.get("segments", ())]
