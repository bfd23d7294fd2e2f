"""A title's files: one typed object instead of file names scattered through the assets.

Every per-title artifact lives in ``titles/KEY/`` under a name known only here, is written by
exactly one asset (:data:`PRODUCED_BY`) and read through a typed loader. :class:`TitleFiles`
can be *scoped* to what an asset declares: reading the output of an asset that is not among
its declared inputs is a :class:`LineageError`, so the lineage the UI shows is the truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpw_resources.records import Segment, read_segments
from cpw_resources.speech.media import WavReader

#: File name → the asset that writes it.
PRODUCED_BY: dict[str, str] = {
    "audio.wav": "audio",
    "fingerprint.json": "audio",
    "transcript.json": "transcript",
    "glossary.json": "glossary",
    "translation.json": "translation",
    "enhanced.json": "enhanced_translation",
}


class LineageError(RuntimeError):
    """An asset read a file of an asset it does not declare as an input (a bug, not input)."""


@dataclass(frozen=True)
class TitleFiles:
    """The artifact folder of title ``key``; ``readable`` limits reads to some assets' files."""

    dir: Path
    key: str
    readable: frozenset[str] | None = None  # asset names; None = all
    read: list[Path] = field(default_factory=list, compare=False)

    def scoped(self, readable: set[str]) -> TitleFiles:
        return TitleFiles(self.dir, self.key, frozenset(readable))

    def path(self, name: str) -> Path:
        """The path of artifact ``name`` (for writing, or for an input, checked)."""
        return self.dir / name

    def input(self, name: str) -> Path:
        """The path of an input artifact; its producer must be a declared input."""
        producer = PRODUCED_BY[name]
        if self.readable is not None and producer not in self.readable:
            raise LineageError(f"{name} is written by {producer!r}, which this asset does not "
                               f"declare as an input (declared: {sorted(self.readable)})")
        path = self.dir / name
        self.read.append(path)
        return path

    def outputs_of(self, asset: str) -> list[Path]:
        return [self.dir / name for name, producer in PRODUCED_BY.items() if producer == asset]

    # -- typed loaders
    def _json(self, name: str) -> dict[str, Any]:
        return json.loads(self.input(name).read_text(encoding="utf-8"))

    def audio(self) -> WavReader:
        """The title's 16 kHz mono audio, read span by span (a film never fits in memory)."""
        return WavReader(self.input("audio.wav"))

    def fingerprint(self) -> dict[str, Any]:
        return self._json("fingerprint.json")

    def transcript(self) -> dict[str, Any]:
        """``transcript.json``: language, duration, config and ``segments``."""
        return self._json("transcript.json")

    def transcript_segments(self) -> list[Segment]:
        return read_segments(self.transcript())

    def glossary(self) -> dict[str, Any]:
        return self._json("glossary.json")

    def translation(self) -> dict[str, Any]:
        """``translation.json``: source and target language, backend and ``segments``."""
        return self._json("translation.json")

    def enhanced(self) -> dict[str, Any]:
        """``enhanced.json``: the translation document with enhanced ``segments``."""
        return self._json("enhanced.json")

    # -- subtitles (written last, read by no asset)
    def subtitles(self, target: str) -> dict[str, Path]:
        """``KEY.<target>.srt`` and ``.vtt``."""
        return {fmt: self.dir / f"{self.key}.{target}.{fmt}" for fmt in ("srt", "vtt")}

    def bilingual(self, source: str, target: str) -> dict[str, Path]:
        """``KEY.<source>-<target>.srt`` and ``.vtt``."""
        return {fmt: self.dir / f"{self.key}.{source}-{target}.{fmt}" for fmt in ("srt", "vtt")}
