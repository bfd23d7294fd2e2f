"""TermIndex finds exactly what `mentions` finds, term by term, on many made-up lines."""

from __future__ import annotations

import random

from cpw_resources.language.matching import TermIndex, mentions

FIRST = ["Raghuveer", "Aakash", "Sameer", "Pooja", "Siddharth", "Lonavala", "Khandala", "Ron",
         "Meera", "Vikram", "Anjali", "Kabir", "Zoya", "Imran", "Tara", "Dev", "Ishaan", "Naina"]
LAST = ["Malhotra", "Burgundy", "Khanna", "Rathore", "Kapoor", "Singh", "Iyer", "Shah"]
FILLER = ["the", "train", "to", "Mumbai", "leaves", "at", "dawn", "and", "nobody", "waits",
          "for", "chai", "yaar", "listen", "Dr.", "Mr", "tonight", "रघुवीर", "घर", "चलो"]


def _misspell(word: str, rng: random.Random) -> str:
    """A spelling a person or an MT system might produce: a letter doubled, dropped or swapped."""
    if len(word) < 2:
        return word
    i = rng.randrange(1, len(word))
    return rng.choice([word[:i] + word[i - 1] + word[i:], word[:i] + word[i + 1:],
                       word[:i] + rng.choice("aeiouy") + word[i + 1:], word.replace("ee", "i"),
                       word.replace("aa", "a"), word.lower(), word.upper()])


def _glossary(rng: random.Random, n: int) -> list[dict]:
    terms = []
    for _ in range(n):
        name = rng.choice(FIRST) + ("" if rng.random() < 0.4 else " " + rng.choice(LAST))
        kind = rng.choice(["character", "actor", "place", "term"])
        terms.append({"term": name, "kind": kind})
    terms.append({"term": "", "kind": "character"})  # an empty entry matches nothing
    terms.append({"term": "Dr. Iyer", "kind": "term"})  # punctuation inside a term
    return terms


def _line(rng: random.Random, terms: list[dict]) -> str:
    words = rng.choices(FILLER, k=rng.randrange(0, 9))
    for _ in range(rng.randrange(0, 3)):
        name = rng.choice(terms)["term"] or "x"
        parts = [_misspell(p, rng) if rng.random() < 0.5 else p for p in name.split()]
        words.insert(rng.randrange(len(words) + 1), " ".join(parts))
    glue = rng.choice([" ", " ", ", ", "-", "'s "])
    return glue.join(words) + rng.choice(["", ".", "?", "!"])


def test_the_index_agrees_with_mentions_term_by_term() -> None:
    rng = random.Random(7)
    checked = hits = 0
    for _ in range(20):
        terms = _glossary(rng, rng.randrange(1, 60))
        index = TermIndex(terms)
        for _ in range(60):
            text = _line(rng, terms)
            expected = {i for i, t in enumerate(terms) if mentions(text, t)}
            assert index.mentioned(text) == expected, text
            checked += 1
            hits += bool(expected)
    assert hits > checked // 3  # the cases do exercise matches, near misses included


def test_near_names_and_whole_words() -> None:
    terms = [{"term": "Sameer Khanna", "kind": "character"}, {"term": "Lonavala", "kind": "place"},
             {"term": "Ron", "kind": "term"}, {"term": "Pooja", "kind": "actor"}]
    index = TermIndex(terms)
    assert index.mentioned("Samir said so.") == {0}  # a part of the name, spelled loosely
    assert index.mentioned("We drove to Lonavala") == {1}
    assert index.mentioned("Lone Marla was far") == set()  # a place is matched whole only
    assert index.mentioned("Ronald and Ron") == {2}
    assert index.mentioned("Ronald") == set()  # whole words only
    assert index.mentioned("Puja is here, and Sameer Khanna too") == {0, 3}
    assert TermIndex([]).mentioned("anything") == set()
