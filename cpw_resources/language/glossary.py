"""Names and terms for a title: sidecar files beside the media plus what the transcript shows.

Sidecars (all optional), for ``Film (2001).mkv``:
- ``Film (2001).json``: ``{"title", "year", "series", "director", "genre", "language",
  "characters": ["Aakash", {"name": "Sameer", "actor": "Saif Ali Khan"}]}``;
- ``Film (2001).glossary.tsv``: ``term<TAB>translation<TAB>note`` per line (``#`` comments and
  a ``term`` header line are skipped; translation may be empty, meaning "keep as is").
A malformed sidecar is a :class:`MediaError` naming the file and line: a user who wrote a
glossary wants to know it was not used, not to get subtitles silently without it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

from cpw_resources.errors import MediaError
from cpw_resources.language.matching import WORD
from cpw_resources.records import Segment
from cpw_resources.store.sidecars import Sidecars

METADATA_FIELDS = ("title", "year", "series", "director", "genre", "language", "tmdb_id",
                   "summary")
FUZZY_NAME_SCORE = 88.0
_LANGUAGE_NAMES = {
    "hindi": "hi", "english": "en", "urdu": "ur", "tamil": "ta", "telugu": "te",
    "bengali": "bn", "marathi": "mr", "punjabi": "pa", "gujarati": "gu", "french": "fr",
    "spanish": "es", "italian": "it", "russian": "ru", "german": "de",
}


@dataclass(frozen=True)
class Term:
    term: str
    translation: str = ""
    kind: str = "term"  # character, actor, term
    source: str = "glossary_tsv"
    note: str = ""
    occurrences: int = 0


def read_title_metadata(media: Path) -> tuple[dict[str, Any], list[Term]]:
    """The sidecar JSON's metadata fields and its character names (empty when absent)."""
    path = Sidecars(media).metadata
    if not path.is_file():
        return {}, []
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MediaError(path, f"sidecar is not valid UTF-8 JSON ({error})") from error
    if not isinstance(data, dict):
        raise MediaError(path, "sidecar must be a JSON object with title/year/characters/...")
    metadata = {k: data[k] for k in METADATA_FIELDS if data.get(k) not in (None, "")}
    terms: list[Term] = []
    for entry in data.get("characters") or []:
        if isinstance(entry, str):
            terms.append(Term(entry.strip(), kind="character", source="sidecar_json"))
        elif isinstance(entry, dict) and entry.get("name"):
            terms.append(Term(str(entry["name"]).strip(), kind="character", source="sidecar_json"))
            if entry.get("actor"):
                terms.append(Term(str(entry["actor"]).strip(), kind="actor", source="sidecar_json"))
        else:
            raise MediaError(path, f"'characters' entries must be names or objects with 'name': "
                                   f"{entry!r}")
    return metadata, terms


def sidecar_language(media: Path) -> str | None:
    """The sidecar's language as a Whisper code ('hi'), or None."""
    metadata, _ = read_title_metadata(media)
    value = str(metadata.get("language", "")).strip().lower()
    return _LANGUAGE_NAMES.get(value, value) or None


def read_glossary_tsv(media: Path) -> list[Term]:
    path = Sidecars(media).glossary
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        raise MediaError(path, f"glossary is not UTF-8 text ({error})") from error
    terms = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in line.split("\t")]
        if number == 1 and cells[0].lower() == "term":
            continue
        if not cells[0] or len(cells) > 3:
            raise MediaError(path, f"line {number}: expected 'term<TAB>translation<TAB>note', "
                                   f"got {line!r}")
        cells += [""] * (3 - len(cells))
        terms.append(Term(cells[0], cells[1], "term", "glossary_tsv", cells[2]))
    return terms


def count_occurrences(term: str, words: Sequence[str], text_lower: str) -> int:
    """Exact word-boundary matches, else fuzzy matches of the same number of words.

    Whisper spells unfamiliar names loosely ("Akash" for "Aakash"), so a name also counts
    when a same-length word window scores ≥ FUZZY_NAME_SCORE.
    """
    exact = len(re.findall(rf"(?<!\w){re.escape(term.lower())}(?!\w)", text_lower))
    if exact:
        return exact
    n = max(1, len(term.split()))
    target = term.lower()
    return sum(
        1
        for i in range(len(words) - n + 1)
        if fuzz.ratio(" ".join(words[i:i + n]).lower(), target) >= FUZZY_NAME_SCORE
    )


def candidate_names(segments: Sequence[Segment], known: set[str]) -> list[dict[str, Any]]:
    """Capitalised words that recur mid-sentence: likely names Whisper heard (Latin script)."""
    counts: Counter[str] = Counter()
    for seg in segments:
        tokens = WORD.findall(seg.text)
        for previous, token in zip(tokens, tokens[1:], strict=False):
            if token[0].isupper() and not previous.endswith((".", "?", "!")) and token != "I":
                counts[token] += 1
    return [
        {"term": name, "occurrences": n}
        for name, n in counts.most_common()
        if n >= 2 and name.lower() not in known
    ]


_NOT_A_NAME = {"himself", "herself", "themselves", "self", "narrator", "voice", "uncredited"}


def cast_terms(cast: Sequence[dict[str, str]], source: str = "tmdb") -> list[Term]:
    """Character and actor names from a cast list (``name``, ``character``)."""
    terms = []
    for member in cast:
        for role in re.split(r"\s*/\s*", member.get("character", "")):
            role = re.sub(r"\s*\(.*?\)", "", role).strip()
            if role and role.lower() not in _NOT_A_NAME:
                terms.append(Term(role, kind="character", source=source))
        if member.get("name"):
            terms.append(Term(member["name"].strip(), kind="actor", source=source))
    return terms


def build_glossary(media: Path, segments: Sequence[Segment],
                   extra: Sequence[Term] = ()) -> dict[str, Any]:
    """Sidecar names and terms first, then ``extra`` (e.g. TMDB) terms not already listed."""
    metadata, names = read_title_metadata(media)
    terms = names + read_glossary_tsv(media)
    known = {t.term.lower() for t in terms}
    for term in extra:
        if term.term.lower() not in known:
            known.add(term.term.lower())
            terms.append(term)
    text = " ".join(seg.text for seg in segments)
    words = WORD.findall(text)
    text_lower = text.lower()
    counted = [
        Term(**{**asdict(t), "occurrences": count_occurrences(t.term, words, text_lower)})
        for t in terms
    ]
    sources = sorted({t.source for t in counted})
    return {
        "metadata": metadata,
        "sources": sources,
        "terms": [asdict(t) for t in counted],
        "found_terms": [t.term for t in counted if t.occurrences > 0],
        "candidate_names": candidate_names(segments, {t.term.lower() for t in counted}),
    }


def prompt_names(glossary: dict[str, Any], limit: int = 40) -> str | None:
    """A Whisper initial prompt listing the title's names, so decoding spells them right."""
    names = [t["term"] for t in glossary.get("terms", ()) if t["kind"] in ("character", "term")]
    names = list(dict.fromkeys(names))[:limit]
    return ("Names: " + ", ".join(names) + ".") if names else None
