"""Finding words, names and terms in subtitle text, in any script and as people spell them.

One place for how the glossary, enhancement selection and quality scoring decide that a line
says a term: whole words only (a letter may not touch the match on either side, Devanagari
vowel signs included), a person's name also by any of its parts ("Ron" for "Ron Burgundy"),
and a name of four or more letters also when spelled a little off ("Akash" for "Aakash",
"Samir" for "Sameer"), by rapidfuzz on the words and on a loose romanisation key. Pure
functions of their arguments; nothing here reads files or settings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

# A word: a letter, then letters, digits, apostrophes or hyphens (any script).
WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
# One letter of any script; \w alone misses Devanagari vowel signs.
LETTER = r"[\w\u0900-\u097F]"
# rapidfuzz ratio (0-100) from which two spellings are taken for the same name.
NEAR_NAME = 85.0
# Words of a person's name that do not name them on their own.
_NOT_A_NAME_PART = {"the", "and", "mr", "mrs", "miss", "sir", "lord", "lady", "dr", "uncle",
                    "aunt", "young", "old", "little", "big", "man", "woman", "boy", "girl"}
# Romanisation variants folded together, in order: long vowels, v/w, aspirates, doubles.
_SPELLINGS = [(re.compile(a), b) for a, b in (
    (r"aa+", "a"), (r"ee+|ii+|y$", "i"), (r"oo+|uu+", "u"), (r"w", "v"), (r"ph", "f"),
    (r"([bcdgjkpqrst])h", r"\1"), (r"(.)\1+", r"\1"),
)]


@lru_cache(maxsize=4096)
def _pattern(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!{LETTER}){re.escape(term.lower())}(?!{LETTER})")


def contains(text: str, term: str) -> bool:
    """``term`` occurs in ``text`` as whole words, ignoring case."""
    return bool(term) and _pattern(term).search(text.lower()) is not None


def term_forms(term: dict[str, Any]) -> list[str]:
    """How a glossary entry shows up in dialogue: a person's full name or any of its parts
    ('Ron' for 'Ron Burgundy'); other terms only whole."""
    full = str(term.get("term", "")).strip()
    forms = [full] if full else []
    if term.get("kind") in ("character", "actor"):
        forms += [part for part in full.split()[1:] + full.split()[:1]
                  if len(part) >= 3 and part[0].isupper()
                  and part.lower() not in _NOT_A_NAME_PART and part != full]
    return list(dict.fromkeys(forms))


@lru_cache(maxsize=65536)
def spelling_key(word: str) -> str:
    """A loose romanisation key, so 'Sameer'/'Samir', 'Pooja'/'Puja' and 'Siddharth'/
    'Sidharth' (the same name spelled as people and MT do) compare equal."""
    key = word.lower()
    for pattern, replacement in _SPELLINGS:
        key = pattern.sub(replacement, key)
    return key


def near_name(candidate: str, name: str) -> bool:
    """``candidate`` is ``name`` spelled a little differently (not identical)."""
    a, b = candidate.lower(), name.lower()
    if a == b or len(b) < 4:
        return False
    return (fuzz.ratio(a, b) >= NEAR_NAME
            or fuzz.ratio(spelling_key(a), spelling_key(b)) >= NEAR_NAME)


def mentions(text: str, term: dict[str, Any]) -> bool:
    """Whole-word mention of a term or, for names of 4+ letters, a near miss (MT and ASR
    spell unfamiliar names loosely: 'Akash' for 'Aakash')."""
    forms = term_forms(term)
    if any(contains(text, form) for form in forms):
        return True
    if term.get("kind") not in ("character", "actor"):
        return False
    words = WORD.findall(text)
    for form in forms:
        n = len(form.split())
        if any(near_name(" ".join(words[i:i + n]), form) for i in range(len(words) - n + 1)):
            return True
    return False


class TermIndex:
    """Which of many terms a text :func:`mentions`, fast enough for a thousand-term glossary
    over a three-hour film (~2,000 lines). A substring test picks the few terms that could
    match whole before the word-boundary check; rapidfuzz's ``cdist`` compares the line's
    runs of words with every name at once (on the words and on their :func:`spelling_key`).
    ``index.mentioned(text)`` equals ``{i for i, t in enumerate(terms) if mentions(text, t)}``.
    """

    def __init__(self, terms: Sequence[dict[str, Any]]) -> None:
        self.terms = list(terms)
        self._whole: list[tuple[str, int]] = []  # (form in lower case, term index)
        near: dict[int, list[tuple[str, int]]] = {}  # words in a name form -> its entries
        for i, term in enumerate(self.terms):
            forms = term_forms(term)
            self._whole += [(form.lower(), i) for form in forms]
            if term.get("kind") in ("character", "actor"):
                for form in forms:
                    if len(form) >= 4:
                        near.setdefault(len(form.split()), []).append((form.lower(), i))
        self._near = {n: ([f for f, _ in entries], [spelling_key(f) for f, _ in entries],
                          [i for _, i in entries]) for n, entries in near.items()}

    def mentioned(self, text: str) -> set[int]:
        lower = text.lower()
        found = {i for form, i in self._whole if form in lower and contains(lower, form)}
        if not self._near:
            return found
        words = [w.lower() for w in WORD.findall(text)]
        for n, (forms, keys, owners) in self._near.items():
            runs = [" ".join(words[k:k + n]) for k in range(len(words) - n + 1)]
            if not runs:
                continue
            equal = np.array(runs)[:, None] == np.array(forms)[None, :]
            close = (_close(runs, forms) | _close([spelling_key(r) for r in runs], keys)) & ~equal
            found.update(owners[j] for j in np.flatnonzero(close.any(axis=0)))
        return found


def _close(runs: list[str], forms: list[str]) -> np.ndarray:
    """Run × form: within :data:`NEAR_NAME` of each other (rapidfuzz ratio)."""
    scores = process.cdist(runs, forms, scorer=fuzz.ratio, score_cutoff=NEAR_NAME, workers=1)
    return scores >= NEAR_NAME


# A word token as Whisper writes it: leading space and punctuation, the word, trailing rest.
_TOKEN = re.compile(r"^([\W\d_]*)([^\W\d_][\w'’-]*)(.*)$", re.UNICODE | re.DOTALL)
#: Shortest name repaired from one more word than it has ("Ragu Veer" → "Raghuveer") or by a
#: fuzzy score; a shorter one only from a word with its spelling key ("Puja" → "Pooja"), else
#: it would swallow ordinary words ("sit" → "Sita").
JOINED_NAME_MIN = 6
#: Score words run together must reach to be a name ("Ragu Veer" → "Raghuveer" scores 94).
JOINED_NAME_SCORE = 90.0


def _score(heard: str, name: str) -> float:
    a, b = heard.lower(), name.lower()
    return max(fuzz.ratio(a, b), fuzz.ratio(spelling_key(a), spelling_key(b)))


def _initial(word: str) -> str:
    return spelling_key(word)[:1]


def repair_run(cores: Sequence[str], forms: Sequence[str]) -> tuple[int, str, float] | None:
    """At the start of ``cores`` (a run of words), the name in ``forms`` they are a near miss
    of: (words it spans, the name, score), or None. A name of n words matches n words, or
    n + 1 words run together when it is long; the first sound must agree."""
    best: tuple[int, str, float] | None = None
    for form in forms:
        n = len(form.split())
        for k in (n + 1, n) if len(form) >= JOINED_NAME_MIN else (n,):
            run = list(cores[:k])
            if len(run) < k or not all(run):
                continue
            heard = " ".join(run)
            if heard == form or _initial(run[0]) != _initial(form.split()[0]):
                continue
            if k > n:
                heard, name = heard.replace(" ", ""), form.replace(" ", "")
            else:
                name = form
            if len(heard) < 4:
                continue
            if len(name) < JOINED_NAME_MIN:  # short: only another spelling of the same sounds
                score = 100.0 if spelling_key(heard.lower()) == spelling_key(name.lower()) \
                    else 0.0
            else:
                score = _score(heard, name)
                if k > n and score < JOINED_NAME_SCORE:
                    continue  # words run together need more: "same here" is not "Sameer"
            if score >= NEAR_NAME and (best is None or (score, k) > (best[2], best[0])):
                best = (k, form, score)
    return best


def repair_words(words: Sequence[str], names: Sequence[str]) -> tuple[list[str], list[dict]]:
    """Word tokens (as Whisper writes them: " Rankyu", " Veer,") with near misses of
    ``names`` written as the names are spelled; and one record per repair (heard, name,
    score, first word index, words spanned)."""
    forms = [n for n in dict.fromkeys(x.strip() for x in names) if len(n) >= 4]
    if not forms:
        return list(words), []
    parts = [m.groups() if (m := _TOKEN.match(w)) else (w, "", "") for w in words]
    cores = [core for _, core, _ in parts]
    # A word that is a listed name already (any case) is that name, never another one's
    # near miss: with both Samir and Sameer listed, each stays itself.
    exact = {f.lower(): f for f in forms if " " not in f}
    out: list[str] = []
    repairs: list[dict] = []
    i = 0
    while i < len(words):
        found = None
        if cores[i].lower() in exact:
            name = exact[cores[i].lower()]
            found = (1, name, 100.0) if cores[i] != name else None
        elif cores[i]:
            found = repair_run(cores[i:i + 4], forms)
        if found is None:
            out.append(words[i])
            i += 1
            continue
        k, name, score = found
        heard = "".join(words[i:i + k]).strip()
        out.append(parts[i][0] + name + parts[i + k - 1][2])
        out.extend([""] * (k - 1))  # keep positions: the spanned words are merged into one
        repairs.append({"heard": heard, "name": name, "score": round(score, 1), "index": i,
                        "words": k})
        i += k
    return out, repairs
