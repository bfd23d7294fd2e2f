"""A title's files: one typed object instead of file names scattered through the assets.

Every per-title artifact lives in ``titles/KEY/`` under a name known only here, is written by
exactly one asset (:data:`PRODUCED_BY`) and read through a typed loader. :class:`TitleFiles`
can be *scoped* to what an asset declares: reading the output of an asset that is not among
its declared inputs is a :class:`LineageError`, so the lineage the UI shows is the truth.
"""

from __future__ import annotations

import json
import re
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
    # The run's target languages (``{"languages": [...]}``): which per-language files the
    # assets after ``translation`` work on. Not part of one language's inputs.
    "translation.json": "translation",
    "enhanced.json": "enhanced_translation",  # the same, for the assets after it
}
INDEXES = {"translation.json", "enhanced.json"}
#: Per target language (``translation.de.json``): file name pattern → the asset writing it.
PER_LANGUAGE: dict[str, str] = {
    "translation.{lang}.json": "translation",
    "enhanced.{lang}.json": "enhanced_translation",
}
_LANGUAGE_FILE = re.compile(r"^(translation|enhanced)\.([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*)"
                            r"\.json$")


def producer(name: str) -> str:
    """The asset that writes artifact ``name``."""
    if name in PRODUCED_BY:
        return PRODUCED_BY[name]
    found = _LANGUAGE_FILE.match(name)
    if found is None:
        raise KeyError(f"{name!r} is no title artifact")
    return PER_LANGUAGE[f"{found.group(1)}.{{lang}}.json"]


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
        made_by = producer(name)
        if self.readable is not None and made_by not in self.readable:
            raise LineageError(f"{name} is written by {made_by!r}, which this asset does not "
                               f"declare as an input (declared: {sorted(self.readable)})")
        path = self.dir / name
        self.read.append(path)
        return path

    def outputs_of(self, asset: str, language: str | None = None) -> list[Path]:
        """``asset``'s artifacts: its fixed files and its per-language ones (all languages
        present, or only ``language``'s)."""
        fixed = [self.dir / name for name, made_by in PRODUCED_BY.items()
                 if made_by == asset and not (language and name in INDEXES)]
        patterns = [p for p, made_by in PER_LANGUAGE.items() if made_by == asset]
        if language is not None:
            return fixed + [self.dir / p.format(lang=language) for p in patterns]
        found = sorted(p for pattern in patterns
                       for p in self.dir.glob(pattern.format(lang="*"))
                       if _LANGUAGE_FILE.match(p.name))
        return fixed + found

    def languages(self, index: str = "translation.json") -> list[str]:
        """The target languages of the last run of ``translation`` (or, with ``index``
        ``enhanced.json``, of ``enhanced_translation``)."""
        return list(self._json(index).get("languages", ()))

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

    def translation(self, language: str) -> dict[str, Any]:
        """``translation.<language>.json``: source and target language, backend, segments."""
        return self._json(f"translation.{language}.json")

    def enhanced(self, language: str) -> dict[str, Any]:
        """``enhanced.<language>.json``: the translation with enhanced ``segments``."""
        return self._json(f"enhanced.{language}.json")

    # -- subtitles (written last, read by no asset)
    def subtitles(self, target: str) -> dict[str, Path]:
        """``KEY.<target>.srt`` and ``.vtt``."""
        return {fmt: self.dir / f"{self.key}.{target}.{fmt}" for fmt in ("srt", "vtt")}

    def bilingual(self, source: str, target: str) -> dict[str, Path]:
        """``KEY.<source>-<target>.srt`` and ``.vtt``."""
        return {fmt: self.dir / f"{self.key}.{source}-{target}.{fmt}" for fmt in ("srt", "vtt")}
