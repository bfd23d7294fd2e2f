"""Sidecars: the optional files beside a media file, and every rule that names them.

A media file ``NAME.ext`` (``NAME`` is its name up to the last dot, as ``Path.stem``) may have,
in the same folder: ``NAME.json`` (title metadata), ``NAME.glossary.tsv`` (user glossary), and
subtitles ``NAME.<lang>.<fmt>`` or ``NAME.<fmt>``, where ``<fmt>`` is one of
:data:`SUBTITLE_FORMATS` (``.srt``, ``.vtt``, ``.ass``, ``.ssa``: text formats pysubs2 reads)
and ``<lang>`` is a 2–3 letter code with an optional region (``en``, ``pt-BR``, ``zh_Hant``).
``NAME`` must match exactly; suffixes and language codes match in any case. A subtitle with a
language is the reference for that language (quality scores, WER): ``NAME.en.srt``, else
``.vtt``, ``.ass``, ``.ssa``; one without a language is a sidecar but no reference (its
language is unknown). A subtitle name belongs to every stem it can: ``Film.en.srt`` is a
sidecar of ``Film.mkv`` (English) and of ``Film.en.mkv`` (no language). Hidden names (leading
dot) and ``NAME.error.txt``, the note the inbox writes beside a rejected file, are neither
media nor sidecars; every other name is media. Sidecars are fingerprinted by name, size and
mtime (:func:`sidecar_stat`, cheap to compare) and by name and content (:func:`sidecar_id`,
part of the inbox sensor's run key, so editing any sidecar, a reference included, re-runs the
title). Every reference :meth:`Sidecars.reference` returns is one of :meth:`Sidecars.existing`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: Title metadata: ``NAME.json``.
METADATA_SUFFIX = ".json"
#: User glossary: ``NAME.glossary.tsv``.
GLOSSARY_SUFFIX = ".glossary.tsv"
#: Subtitle formats of reference subtitles, in order of preference.
SUBTITLE_FORMATS = (".srt", ".vtt", ".ass", ".ssa")
#: Written by the inbox sensor beside a rejected file; neither media nor a sidecar.
ERROR_SUFFIX = ".error.txt"

_SIDECAR_SUFFIXES = (METADATA_SUFFIX, GLOSSARY_SUFFIX)
_LANG_TAIL = re.compile(r"\.[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$")
#: Sidecars up to this size are hashed whole; bigger ones like media (size + first/last MiB).
_SIDECAR_FULL_HASH = 4 << 20


def media_stem(name: str) -> str:
    """``Path(name).stem`` without building a Path (the inbox calls this for every file)."""
    dot = name.rfind(".")
    return name[:dot] if 0 < dot < len(name) - 1 else name


def is_media_name(name: str) -> bool:
    """False for hidden names, sidecar names and ``.error.txt`` notes; True for the rest."""
    return not name.startswith(".") and not name.lower().endswith(
        (*_SIDECAR_SUFFIXES, *SUBTITLE_FORMATS, ERROR_SUFFIX))


def sidecar_stems(name: str) -> tuple[str, ...]:
    """The media stems a sidecar belongs to: ``Film.en.srt`` → ``("Film.en", "Film")``."""
    lower = name.lower()
    if name.startswith(".") or lower.endswith(ERROR_SUFFIX):
        return ()
    for suffix in _SIDECAR_SUFFIXES:
        if lower.endswith(suffix):
            return (name[: -len(suffix)],)
    for suffix in SUBTITLE_FORMATS:
        if lower.endswith(suffix):
            stem = name[: -len(suffix)]
            tail = _LANG_TAIL.search(stem)
            return (stem, stem[: tail.start()]) if tail and tail.start() > 0 else (stem,)
    return ()


@dataclass(frozen=True)
class Sidecars:
    """The sidecar names of one media file; ``Sidecars(Path("Film (2001).mkv")).metadata``."""

    media: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "media", Path(self.media))

    @property
    def stem(self) -> str:
        return media_stem(self.media.name)

    def _beside(self, suffix: str) -> Path:
        return self.media.with_name(self.stem + suffix)

    @property
    def metadata(self) -> Path:
        """``NAME.json``, which may not exist."""
        return self._beside(METADATA_SUFFIX)

    @property
    def glossary(self) -> Path:
        """``NAME.glossary.tsv``, which may not exist."""
        return self._beside(GLOSSARY_SUFFIX)

    def existing(self) -> list[Path]:
        """The sidecar files beside the media, sorted; [] when its folder cannot be listed."""
        try:
            names = os.listdir(self.media.parent)
        except OSError:
            return []
        return sorted(
            path for name in names
            if name != self.media.name and self.stem in sidecar_stems(name)
            and (path := self.media.parent / name).is_file()
        )

    def reference(self, lang: str) -> Path | None:
        """The subtitle in language ``lang`` (``NAME.<lang>.srt``, else ``.vtt``, ...), or None."""
        rank = {f"{self.stem}.{lang}{fmt}".lower(): i for i, fmt in enumerate(SUBTITLE_FORMATS)}
        found = [(rank[p.name.lower()], p) for p in self.existing() if p.name.lower() in rank]
        return min(found)[1] if found else None


def sidecar_stat(stats: Iterable[tuple[str, int, int]]) -> str:
    """Summary of sidecars' ``(name, size, mtime_ns)``: equal means none was touched."""
    items = sorted(stats)
    if not items:
        return ""
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


def sidecar_id(files: Iterable[Path]) -> str:
    """Fingerprint of sidecars' names and content; "" when there are none."""
    from cpw_resources.store.titles import content_id  # titles imports this module

    digest = hashlib.sha256()
    count = 0
    for path in sorted(Path(f) for f in files):
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        digest.update(path.read_bytes() if size <= _SIDECAR_FULL_HASH else
                      content_id(path).encode())
        count += 1
    return digest.hexdigest()[:16] if count else ""
