"""Enhancement selection with a large glossary: TermIndex against `mentions` term by term.

    python benchmarks/bench_selection.py [--terms 1000] [--lines 2000]

A glossary at the sidecar limit (1,000 terms: names of people and places, two thirds of them
characters or actors) against the lines of a three-hour film (~2,000 lines, source and MT text
each). Both ways give the same answer (checked here, and in tests/unit/test_matching.py); the
per-term way is timed on a sample of lines and scaled, since in full it takes minutes.
"""

from __future__ import annotations

import argparse
import random
import time

from cpw_resources.language.matching import TermIndex, mentions

SYLLABLES = ["ra", "ghu", "veer", "aa", "kash", "sa", "meer", "poo", "ja", "sid", "dharth",
             "lo", "na", "va", "la", "khan", "da", "vik", "ram", "an", "ja", "li", "ka", "bir"]
WORDS = ["the", "train", "to", "Mumbai", "leaves", "at", "dawn", "and", "nobody", "waits",
         "for", "us", "tonight", "listen", "to", "me", "we", "have", "been", "here", "before",
         "you", "know", "what", "he", "said"]


def name(rng: random.Random) -> str:
    return "".join(rng.choices(SYLLABLES, k=rng.randrange(2, 4))).capitalize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terms", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--sample", type=int, default=40)
    args = parser.parse_args()
    rng = random.Random(1)
    terms = [{"term": name(rng) + ("" if rng.random() < 0.5 else " " + name(rng)),
              "kind": rng.choice(["character", "character", "actor", "place", "term"])}
             for _ in range(args.terms)]
    lines = []
    for _ in range(args.lines):
        words = rng.choices(WORDS, k=rng.randrange(3, 12))
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), rng.choice(terms)["term"].split()[0])
        lines.append(" ".join(words))

    started = time.perf_counter()
    index = TermIndex(terms)
    indexed = [index.mentioned(text) for text in lines]
    fast = time.perf_counter() - started

    sample = lines[:: max(1, len(lines) // args.sample)]
    started = time.perf_counter()
    slow_found = [{i for i, t in enumerate(terms) if mentions(text, t)} for text in sample]
    slow = (time.perf_counter() - started) * len(lines) / len(sample)
    assert slow_found == indexed[:: max(1, len(lines) // args.sample)]

    print(f"{args.terms} terms × {args.lines} lines (one text each)")
    print(f"mentions, term by term : {slow:8.2f} s  (scaled from {len(sample)} lines)")
    print(f"TermIndex              : {fast:8.2f} s  (index built and every line searched)")
    print(f"speed-up               : {slow / fast:8.1f} ×")


if __name__ == "__main__":
    main()
