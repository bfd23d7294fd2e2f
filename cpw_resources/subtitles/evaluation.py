"""Scores of a subtitle file against a human reference: one normaliser, jiwer and sacrebleu.

Used by ``benchmarks/bench_quality.py`` (the evaluation corpus, the project against plain
faster-whisper) and by the suite's quality gate, so both systems and every run are scored the
same way:

- :func:`normalise` — the one text normaliser: Unicode NFKC, lower case, typographic
  apostrophes made plain, the recording-script symbols ``#`` and ``*`` spoken as English says
  them ("pound", "star"; the Asterisk prompts are phone-menu scripts), every character that is
  not a letter, digit or apostrophe inside a word dropped, spaces collapsed, and English
  number words written as digits ("press one" and "press 1", "twenty eight" and "28" are the
  same words), as Whisper's own evaluation normaliser does: Whisper writes a number either
  way from one sentence to the next, and a subtitle reader reads both alike.
- :func:`wer` — jiwer's word error rate of the whole film (all cues joined, in time order)
  against the whole reference: cue boundaries do not matter.
- :func:`bleu_chrf` — sacrebleu's corpus BLEU and chrF over blocks of cues that overlap in
  time (:func:`cpw_resources.subtitles.quality.blocks`), normalised on both sides.
- :func:`compliance` — the share of cues that break no subtitle style rule (line length, lines
  per cue, reading speed above the target of 17 characters per second, too short, too long,
  overlap, gap): the same count as the project's own ``rule_compliance`` score.
- :func:`invented_cues` — cues with no reference speech under them: less than
  :data:`HEARD_S` of the cue overlaps any reference cue (each widened by :data:`SLACK_S`, as
  subtitles may lead or trail speech a little); and how many of them lie in the given
  non-speech spans (music alone, silence).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import pysubs2

from cpw_resources.records import Cue, Segment
from cpw_resources.subtitles.quality import RefLine, blocks
from cpw_resources.subtitles.rules import compliance  # noqa: F401  (re-exported: one definition)

#: A cue heard as speech overlaps the reference for at least this long ...
HEARD_S = 0.3
#: ... counting each reference cue this much wider on both sides.
SLACK_S = 0.5
_SPOKEN = {"#": " pound ", "*": " star "}
# Not part of a word: \w misses the Devanagari vowel signs, so they are named.
_NOT_WORD = re.compile(r"[^\w'\u0900-\u097F]+|(?<!\w)'|'(?!\w)|_", re.UNICODE)


_UNITS = {w: n for n, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen"))}
_TENS = {w: 10 * n for n, w in enumerate(
    ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"), start=2)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}


def _number_words(words: list[str]) -> list[str]:
    """English number words as digits, each run of them one number ("twenty eight" → 28,
    "eight thousand five hundred" → 8500, "one" → 1; "zero" and a unit after a unit stand
    alone: "one two" → 1 2), as Whisper's own evaluation normaliser does: Whisper writes the
    same number either way from one sentence to the next."""
    out: list[str] = []
    k = 0
    while k < len(words):
        total, current, j = 0, None, k
        while j < len(words):
            word = words[j]
            open_tens = current is None or current % 100 == 0
            if word == "zero":
                if current is None:
                    j += 1
                    current = 0
                break
            if word in _UNITS and (open_tens or (current % 100 >= 20 and current % 10 == 0)):
                current = (current or 0) + _UNITS[word]
            elif word in _TENS and open_tens:
                current = (current or 0) + _TENS[word]
            elif word in _SCALES and current:
                if _SCALES[word] == 100:
                    current *= 100
                else:
                    total, current = total + current * _SCALES[word], 0
            else:
                break
            j += 1
        if j == k:
            out.append(words[k])
            k += 1
        else:
            out.append(str(total + (current or 0)))
            k = j
    return out


def normalise(text: str) -> str:
    """The one normaliser for every score (see the module's docstring)."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'").replace("‘", "'")
    for symbol, spoken in _SPOKEN.items():
        text = text.replace(symbol, spoken)
    return " ".join(_number_words(_NOT_WORD.sub(" ", text).split()))


def read_cues(path: Path) -> list[Cue]:
    """The cues of a subtitle file, in time order (comments and empty cues left out)."""
    subs = pysubs2.load(str(path))
    cues = [Cue(e.start / 1000, e.end / 1000, tuple(e.plaintext.splitlines()))
            for e in subs if not e.is_comment and e.plaintext.strip()]
    return sorted(cues, key=lambda c: (c.start, c.end))


def reference_lines(path: Path) -> list[RefLine]:
    return [RefLine(c.start, c.end, " ".join(c.lines)) for c in read_cues(path)]


def wer(reference: Sequence[RefLine], cues: Sequence[Cue]) -> float | None:
    """Word error rate of the whole film; None when the reference has no words."""
    ref = normalise(" ".join(r.text for r in reference))
    if not ref:
        return None
    import jiwer

    return float(jiwer.wer(ref, normalise(" ".join(" ".join(c.lines) for c in cues))))


def bleu_chrf(reference: Sequence[RefLine], cues: Sequence[Cue]) -> tuple[float, float]:
    """Corpus BLEU and chrF (sacrebleu) over time-overlap blocks, normalised both sides."""
    import sacrebleu

    output = [Segment(i, c.start, c.end, " ".join(c.lines)) for i, c in enumerate(cues)]
    pairs = [(normalise(r), normalise(h)) for r, h in blocks(reference, output)]
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    return (round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2),
            round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2))


def invented_cues(reference: Sequence[RefLine], cues: Sequence[Cue],
                  nonspeech: Sequence[tuple[float, float]] = ()) -> tuple[int, int]:
    """(cues with no reference speech under them, how many of those lie in ``nonspeech``)."""
    spans = [(r.start - SLACK_S, r.end + SLACK_S) for r in reference]
    invented = in_nonspeech = 0
    for cue in cues:
        heard = sum(max(0.0, min(cue.end, b) - max(cue.start, a)) for a, b in spans)
        if heard + 1e-9 >= min(HEARD_S, cue.duration):
            continue
        invented += 1
        middle = (cue.start + cue.end) / 2
        in_nonspeech += any(a <= middle <= b for a, b in nonspeech)
    return invented, in_nonspeech
