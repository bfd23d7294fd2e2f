"""Time the glossary's term counting and the sidecar limits (run by hand; prints the figures).

    python benchmarks/bench_glossary.py [--words 30000] [--terms 1000]

A synthetic transcript of ``--words`` words from a 4,000-word vocabulary (a 3-hour film says
about 30,000) and ``--terms`` made-up names of one to three words, none said exactly, so
every term takes the slow path (the fuzzy pass over the transcript's distinct windows). Then a
50 MB glossary sidecar (sparse) is refused: the time and memory of finding out.
"""

from __future__ import annotations

import argparse
import random
import resource
import string
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cpw_resources.errors import MediaError  # noqa: E402
from cpw_resources.language.glossary import TranscriptIndex, read_glossary_tsv  # noqa: E402
from cpw_resources.records import Segment  # noqa: E402


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--words", type=int, default=30_000)
    parser.add_argument("--terms", type=int, default=1_000)
    args = parser.parse_args()
    rng = random.Random(1)
    vocabulary = [_word(rng) for _ in range(4_000)]
    said = [rng.choice(vocabulary) for _ in range(args.words)]
    segments = [Segment(i, i * 3.0, i * 3.0 + 2.5, " ".join(said[i * 10:(i + 1) * 10]))
                for i in range((len(said) + 9) // 10)]
    terms = [" ".join(_word(rng).title() for _ in range(rng.choice((1, 1, 2, 3))))
             for _ in range(args.terms)]

    started = time.perf_counter()
    index = TranscriptIndex(segments)
    counts = index.counts(terms)
    seconds = time.perf_counter() - started
    print(f"{args.terms:,} terms in {args.words:,} words ({len(segments):,} segments): "
          f"{seconds:.2f} s ({seconds / args.terms * 1e3:.2f} ms per term), "
          f"{sum(c > 0 for c in counts)} found")

    with tempfile.TemporaryDirectory() as tmp:
        media = Path(tmp) / "Film.mkv"
        media.write_bytes(b"")
        with open(media.with_name("Film.glossary.tsv"), "wb") as out:
            out.truncate(50 << 20)
        started = time.perf_counter()
        try:
            read_glossary_tsv(media)
        except MediaError as error:
            print(f"50 MB glossary refused in {(time.perf_counter() - started) * 1e3:.1f} ms: "
                  f"{error.problem}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
