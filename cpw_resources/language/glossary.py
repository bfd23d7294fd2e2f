"""Names and terms for a title: sidecar files beside the media plus what the transcript shows.

Sidecars (all optional), for ``Film (2001).mkv``:
- ``Film (2001).json``: ``{"title", "year", "series", "director", "genre", "language",
  "tmdb_id", "summary", "characters": ["Aakash", {"name": "Sameer", "actor": "Saif Ali Khan"}]}``
  (:class:`TitleMetadata` gives each field's type; other keys are ignored);
- ``Film (2001).glossary.tsv``: ``term<TAB>translation<TAB>note`` per line (``#`` comments and
  a ``term`` header line are skipped; translation may be empty, meaning "keep as is").
A malformed sidecar (not UTF-8 JSON, nested too deeply, a field of the wrong type, a language
Whisper does not know, an odd TSV line) is a :class:`MediaError` naming the file, the field or
line, and the problem: a user who wrote a glossary wants to know it was not used, not to get
subtitles silently without it. For the same reason a sidecar over one of the limits below
(size, terms, length of a term) is refused whole, never cut short.

The glossary is made before the transcript (its names are Whisper's hotwords); the transcript
then counts each term through :class:`TranscriptIndex` (:func:`heard_terms`), built once:
a term costs one substring scan of the text and one fuzzy pass (rapidfuzz, in C) over the
*distinct* word windows, so the work grows with terms × vocabulary, not terms × words spoken.
"""

from __future__ import annotations

import json
import os
import re
import reprlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    StringConstraints,
    ValidationError,
    field_validator,
)
from rapidfuzz import fuzz, process

from cpw_resources.errors import MediaError
from cpw_resources.language.matching import LETTER, WORD, near_name, repair_words
from cpw_resources.records import Segment, Word
from cpw_resources.store.sidecars import Sidecars

METADATA_FIELDS = ("title", "year", "series", "season", "episode", "director", "genre",
                   "language", "tmdb_id", "summary")
FUZZY_NAME_SCORE = 88.0
#: Largest sidecar JSON read, in bytes. A title's metadata and a big cast take a few KiB; a
#: bigger file is a mistake (another file renamed), and JSON is parsed into memory whole.
MAX_METADATA_BYTES = 1 << 20
#: Largest glossary TSV read, in bytes: MAX_TERMS lines with notes take about 100 KiB.
MAX_GLOSSARY_BYTES = 1 << 20
#: Most entries one sidecar may list (characters in the JSON, lines in the TSV). Every term
#: is looked for in every subtitle line by the later stages, so their time grows with this;
#: a film's cast plus a generous glossary stay far below it.
MAX_TERMS = 1000
#: Longest term or translation, in characters: a name or a phrase, not a sentence.
MAX_TERM_CHARS = 100
#: Longest free text (title, summary, a note), in characters: it goes into LLM requests.
MAX_TEXT_CHARS = 2000
_LANGUAGE_NAMES = {
    "hindi": "hi", "english": "en", "urdu": "ur", "tamil": "ta", "telugu": "te",
    "bengali": "bn", "marathi": "mr", "punjabi": "pa", "gujarati": "gu", "french": "fr",
    "spanish": "es", "italian": "it", "russian": "ru", "german": "de",
}
_SHORT = reprlib.Repr()  # how a bad value is quoted in a message: short, however nested
_SHORT.maxstring = _SHORT.maxother = 40
_SHORT.maxlevel = 2
#: A letter of any script (Devanagari vowel signs included): may not touch an exact match.
_WORD_CHAR = re.compile(LETTER)
#: Terms scored against the transcript's windows at once: bounds the score matrix's memory
#: (256 terms × 100,000 windows = 25 MB).
_FUZZY_CHUNK = 256
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # C0 controls but tab, and DEL


@dataclass(frozen=True)
class Term:
    term: str
    translation: str = ""
    kind: str = "term"  # character, actor, term
    source: str = "glossary_tsv"
    note: str = ""
    occurrences: int = 0
    suggested: bool = False  # from the context learner's memory, not confirmed for this title
    score: float | None = None  # the suggestion's rank score


def whisper_language(value: str) -> str | None:
    """The Whisper code for a sidecar's language ('Hindi', 'hi', 'pt-BR' → 'pt'), or None."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # what Whisper accepts; heavy import

    code = value.strip().lower().replace("_", "-")
    code = _LANGUAGE_NAMES.get(code, code).split("-")[0]
    return code if code in _LANGUAGE_CODES else None


def _printable(value: str) -> str:
    found = _CONTROL.search(value)
    if found:
        raise ValueError(f"contains a control character (U+{ord(found.group()):04X})")
    return value


TermText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=MAX_TERM_CHARS), AfterValidator(_printable)]
FreeText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_TEXT_CHARS)]


class Character(BaseModel):
    """A ``characters`` entry: a name, or an object with ``name`` and maybe ``actor``."""

    model_config = ConfigDict(extra="ignore")
    name: TermText
    actor: TermText | None = None


class WhisperPin(BaseModel):
    """The sidecar JSON's ``whisper`` block: this title's Whisper config, pinned (the
    optimizer does not choose for it)."""

    model_config = ConfigDict(extra="forbid")
    model: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=200)]
    beam_size: Annotated[int, Field(ge=1, le=20)] = 5
    vad_threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    temperature_fallback: bool = True


class TitleMetadata(BaseModel):
    """The sidecar JSON; every field is optional and keys not listed here are ignored."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)
    title: FreeText | None = None
    year: Annotated[int, Field(ge=1800, le=2200)] | None = None
    series: FreeText | None = None
    season: Annotated[int, Field(ge=0, le=10_000)] | None = None
    episode: Annotated[int, Field(ge=0, le=100_000)] | None = None
    director: FreeText | None = None
    genre: FreeText | list[TermText] | None = None
    language: str | None = None
    tmdb_id: PositiveInt | None = None
    summary: FreeText | None = None
    characters: list[Character] = Field(default_factory=list, max_length=MAX_TERMS)
    #: Names the context learner suggested that are wrong for this title (docs/context.md).
    reject: list[TermText] = Field(default_factory=list, max_length=MAX_TERMS)
    #: The audio track to transcribe: a number (0 = first audio track) or a language tag.
    audio_track: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                  max_length=35)] | None = None
    #: Pins the Whisper config: {"model": "base", "beam_size": 5, ...} (docs/optimizer.md).
    whisper: WhisperPin | None = None

    @field_validator("characters", mode="before")
    @classmethod
    def _names_or_objects(cls, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            return value  # pydantic says "should be a valid list"
        for number, entry in enumerate(value, 1):
            if not isinstance(entry, str | dict):
                raise ValueError(f"entry {number} must be a name or an object with a 'name' "
                                 f"(got {_SHORT.repr(entry)})")
        return [{"name": e} if isinstance(e, str) else e for e in value]

    @field_validator("language")
    @classmethod
    def _whisper_knows_it(cls, value: str | None) -> str | None:
        if value is not None and value.strip() and whisper_language(value) is None:
            raise ValueError(f"unknown language {_SHORT.repr(value)}: use a code Whisper "
                             f"knows (hi, en, fr, ...) or a name such as hindi or english")
        return value


def _read_sidecar(path: Path, limit: int, advice: str) -> str | None:
    """The text of sidecar ``path``, None when it does not exist; refused over ``limit``."""
    if not os.path.isfile(path):  # also False for a name too long to exist
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as error:
        raise MediaError(path, f"sidecar cannot be read ({error.strerror}); check its "
                               f"permissions") from error
    if len(data) > limit:
        raise MediaError(path, f"sidecar is {path.stat().st_size:,} bytes, over the limit of "
                               f"{limit:,}; {advice}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MediaError(path, f"sidecar is not UTF-8 text ({error})") from error


def _problems(error: ValidationError, shown: int = 3) -> str:
    """Pydantic's errors as 'field 'year': should be ... (got {...})', the first few."""
    parts = []
    for item in error.errors()[:shown]:
        field = ".".join(str(part) for part in item["loc"]) or "(the whole file)"
        message = item["msg"].removeprefix("Value error, ")
        got = "" if item["type"] == "value_error" else f" (got {_SHORT.repr(item['input'])})"
        parts.append(f"field {field!r}: {message}{got}")
    more = error.error_count() - shown
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _title_metadata(path: Path) -> TitleMetadata | None:
    text = _read_sidecar(path, MAX_METADATA_BYTES,
                         "keep the title's metadata and cast in it (a few KiB)")
    if text is None:
        return None
    try:
        data = json.loads(text)
    except RecursionError as error:
        raise MediaError(path, "sidecar JSON is nested too deeply to read; it needs at most "
                               "three levels (object, characters list, character)") from error
    except ValueError as error:
        raise MediaError(path, f"sidecar is not valid UTF-8 JSON ({error})") from error
    if not isinstance(data, dict):
        raise MediaError(path, "sidecar must be a JSON object with title/year/characters/...")
    try:
        return TitleMetadata.model_validate(data)
    except ValidationError as error:
        raise MediaError(path, f"sidecar {_problems(error)}") from error


def read_title_metadata(media: Path) -> tuple[dict[str, Any], list[Term]]:
    """The sidecar JSON's metadata fields and its character names (empty when absent)."""
    parsed = _title_metadata(Sidecars(media).metadata)
    if parsed is None:
        return {}, []
    metadata = {k: v for k, v in parsed.model_dump(include=set(METADATA_FIELDS)).items()
                if v not in (None, "")}
    terms: list[Term] = []
    for character in parsed.characters:
        terms.append(Term(character.name, kind="character", source="sidecar_json"))
        if character.actor:
            terms.append(Term(character.actor, kind="actor", source="sidecar_json"))
    return metadata, terms


def sidecar_language(media: Path) -> str | None:
    """The sidecar's language as a Whisper code ('hi'), or None."""
    metadata, _ = read_title_metadata(media)
    return whisper_language(metadata["language"]) if metadata.get("language") else None


def sidecar_audio_track(media: Path) -> str | None:
    """The sidecar's ``audio_track`` (a track number or a language tag), or None."""
    parsed = _title_metadata(Sidecars(media).metadata)
    return parsed.audio_track if parsed is not None else None


def sidecar_whisper_pin(media: Path) -> WhisperPin | None:
    """The sidecar's pinned Whisper config, or None."""
    parsed = _title_metadata(Sidecars(media).metadata)
    return parsed.whisper if parsed is not None else None


def _odd_line(cells: list[str]) -> str | None:
    """What is wrong with a glossary line's cells, or None."""
    if len(cells) > 3:
        return f"expected 'term<TAB>translation<TAB>note', got {len(cells)} columns"
    if not cells[0]:
        return "the term (first column) is empty"
    for cell, name, limit in zip(cells, ("term", "translation", "note"),
                                 (MAX_TERM_CHARS, MAX_TERM_CHARS, MAX_TEXT_CHARS), strict=False):
        if len(cell) > limit:
            return f"the {name} is {len(cell):,} characters, over the limit of {limit:,}"
        control = _CONTROL.search(cell)
        if control:
            return f"the {name} contains a control character (U+{ord(control.group()):04X})"
    return None


def read_glossary_tsv(media: Path) -> list[Term]:
    path = Sidecars(media).glossary
    text = _read_sidecar(path, MAX_GLOSSARY_BYTES,
                         f"keep the terms this title needs in it (at most {MAX_TERMS:,})")
    if text is None:
        return []
    terms = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in line.split("\t")]
        if number == 1 and cells[0].lower() == "term":
            continue
        problem = _odd_line(cells)
        if problem:
            raise MediaError(path, f"line {number}: {problem}: {_SHORT.repr(line)}")
        if len(terms) == MAX_TERMS:
            raise MediaError(path, f"line {number}: more than {MAX_TERMS:,} terms, the most a "
                                   f"glossary may list; keep the terms this title needs")
        cells += [""] * (3 - len(cells))
        terms.append(Term(cells[0], cells[1], "term", "glossary_tsv", cells[2]))
    return terms


class TranscriptIndex:
    """A transcript's text indexed once, to count many terms in it.

    A term counts its exact word-boundary matches; with none, its fuzzy matches: Whisper spells
    unfamiliar names loosely ("Akash" for "Aakash"), so a window of as many words as the term
    has also counts when it scores ≥ FUZZY_NAME_SCORE. Each distinct window is scored once per
    term, in C (``rapidfuzz.process.cdist``), :data:`_FUZZY_CHUNK` terms at a time.
    """

    def __init__(self, segments: Sequence[Segment]) -> None:
        text = " ".join(seg.text for seg in segments)
        self.lower = text.lower()
        self.words = [word.lower() for word in WORD.findall(text)]

    def counts(self, terms: Sequence[str]) -> list[int]:
        """How often each of ``terms`` occurs."""
        targets = [term.strip().lower() for term in terms]
        result = [self._exact(target) if target else 0 for target in targets]
        fuzzy: dict[int, list[int]] = {}  # words per window → terms without an exact match
        for i, target in enumerate(targets):
            if target and not result[i]:
                fuzzy.setdefault(len(target.split()), []).append(i)
        for size, indexes in fuzzy.items():
            windows = Counter(" ".join(self.words[i:i + size])
                              for i in range(len(self.words) - size + 1))
            weights = np.fromiter(windows.values(), dtype=np.int64, count=len(windows))
            for first in range(0, len(indexes) if windows else 0, _FUZZY_CHUNK):
                chunk = indexes[first:first + _FUZZY_CHUNK]
                scores = process.cdist([targets[i] for i in chunk], list(windows),
                                       scorer=fuzz.ratio, score_cutoff=FUZZY_NAME_SCORE,
                                       dtype=np.uint8)
                for i, count in zip(chunk, (scores > 0) @ weights, strict=True):
                    result[i] = int(count)
        return result

    def _exact(self, target: str) -> int:
        """Non-overlapping matches of ``target`` that no word character touches."""
        text, count, start = self.lower, 0, 0
        while (i := text.find(target, start)) >= 0:
            end = i + len(target)
            if not (i and _WORD_CHAR.match(text, i - 1)) and not _WORD_CHAR.match(text, end):
                count, start = count + 1, end
            else:
                start = i + 1
        return count


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


def sidecar_rejections(media: Path) -> list[str]:
    """Names the sidecar's ``reject`` list refuses (suggestions wrong for this title)."""
    parsed = _title_metadata(Sidecars(media).metadata)
    return list(dict.fromkeys(parsed.reject)) if parsed is not None else []


def build_glossary(media: Path, extra: Sequence[Term] = (),
                   suggestions: Sequence[Term] = ()) -> dict[str, Any]:
    """The names and terms known before the transcript: sidecar names and terms first, then
    ``extra`` (e.g. TMDB) terms not already listed, then the context learner's
    ``suggestions`` (flagged ``suggested``) not already listed in any spelling."""
    metadata, names = read_title_metadata(media)
    terms = names + read_glossary_tsv(media)
    known = {t.term.lower() for t in terms}
    for term in extra:
        if term.term.lower() not in known:
            known.add(term.term.lower())
            terms.append(term)
    confirmed = list(terms)
    for term in suggestions:
        if term.term.lower() in known or any(
                near_name(term.term, t.term) for t in confirmed if t.kind in ("character",
                                                                              "actor")):
            continue
        known.add(term.term.lower())
        terms.append(term)
    return {
        "metadata": metadata,
        "sources": sorted({t.source for t in terms}),
        "terms": [asdict(t) for t in terms],
        "rejected": sidecar_rejections(media),
    }


def heard_terms(terms: Sequence[dict[str, Any]], segments: Sequence[Segment]) -> dict[str, Any]:
    """How often the transcript says each glossary term, and the names it seems to say that
    the glossary does not list."""
    names = [t["term"] for t in terms]
    occurrences = TranscriptIndex(segments).counts(names)
    return {
        "occurrences": dict(zip(names, occurrences, strict=True)),
        "found_terms": [n for n, k in zip(names, occurrences, strict=True) if k > 0],
        "candidate_names": candidate_names(segments, {n.lower() for n in names}),
    }


def repair_segments(segments: Sequence[Segment], names: Sequence[str]
                    ) -> tuple[list[Segment], list[dict[str, Any]]]:
    """``segments`` with near misses of ``names`` spelled as the glossary spells them (words
    a name spans merge into one word, timed from the first's start to the last's end), and
    one record per repair (segment start, heard, name, score)."""
    out, repairs = [], []
    for seg in segments:
        tokens = [w.word for w in seg.words] if seg.words else re.findall(r"\s*\S+", seg.text)
        fixed, found = repair_words(tokens, names)
        if not found:
            out.append(seg)
            continue
        if seg.words:
            words: list[Word] = []
            for word, text in zip(seg.words, fixed, strict=True):
                if text:
                    words.append(Word(word.start, word.end, text, word.probability))
                elif words:  # spanned by the repaired name before it: its time joins
                    last = words[-1]
                    words[-1] = Word(last.start, word.end, last.word,
                                     min(last.probability, word.probability))
            text = "".join(w.word for w in words).strip()
            out.append(replace(seg, text=text, words=tuple(words)))
        else:
            out.append(replace(seg, text="".join(fixed).strip()))
        repairs += [{"start": round(seg.start, 3), "heard": r["heard"], "name": r["name"],
                     "score": r["score"]} for r in found]
    return out, repairs


def asr_names(glossary: dict[str, Any], limit: int = 40) -> list[str]:
    """The glossary's names and terms for Whisper: what the user wrote first, then TMDB's,
    then suggestions by rank (actors' names are rarely said and are left out)."""
    terms = [t for t in glossary.get("terms", ()) if t.get("kind") in ("character", "term")]
    return list(dict.fromkeys(t["term"] for t in terms))[:limit]


def prompt_names(glossary: dict[str, Any], limit: int = 40) -> str | None:
    """A Whisper initial prompt listing the title's names, so decoding spells them right."""
    names = [t["term"] for t in glossary.get("terms", ()) if t["kind"] in ("character", "term")]
    names = list(dict.fromkeys(names))[:limit]
    return ("Names: " + ", ".join(names) + ".") if names else None
