"""Scores of a title's translation: against a reference subtitle when one exists, and always
name accuracy, glossary adherence and subtitle-rule compliance.

A reference (``NAME.en.srt`` beside the media, or ``.vtt``/``.ass``/``.ssa``: see
:mod:`cpw_resources.store.sidecars`) rarely splits the dialogue the way Whisper did, so
text is compared in *blocks*: reference cues and output segments that overlap in time are
joined into one block (transitively), and BLEU and chrF
(sacrebleu) are computed over the blocks as a corpus. Lines of either side that overlap
nothing become blocks of their own with an empty counterpart, so misses and inventions count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pysubs2

from cpw_resources.errors import MediaError
from cpw_resources.language.matching import WORD, near_name, term_forms
from cpw_resources.records import Segment
from cpw_resources.subtitles.rules import SubtitleRules, build_cues, compliance


@dataclass(frozen=True)
class RefLine:
    start: float
    end: float
    text: str


def load_reference(path: Path) -> list[RefLine]:
    try:
        subs = pysubs2.load(str(path))
    except Exception as error:  # pysubs2 raises many kinds for broken files
        raise MediaError(path, f"reference subtitle is unreadable ({error})") from error
    lines = []
    for event in subs:
        if event.is_comment:
            continue
        text = " ".join(event.plaintext.split())
        if text:
            lines.append(RefLine(event.start / 1000, event.end / 1000, text))
    return lines


def blocks(reference: Sequence[RefLine], output: Sequence[Segment]) -> list[tuple[str, str]]:
    """(reference text, output text) per block of lines that overlap in time."""
    items = [(r.start, r.end, 0, r.text) for r in reference]
    items += [(s.start, s.end, 1, s.text) for s in output]
    items.sort(key=lambda item: (item[0], item[1]))
    result: list[tuple[str, str]] = []
    current: list[tuple[float, float, int, str]] = []
    reach = float("-inf")
    for item in items:
        if current and item[0] >= reach:
            result.append(_join(current))
            current = []
        current.append(item)
        reach = max(reach, item[1]) if len(current) > 1 else item[1]
    if current:
        result.append(_join(current))
    return result


def _join(items: Sequence[tuple[float, float, int, str]]) -> tuple[str, str]:
    return (" ".join(t for _, _, side, t in items if side == 0),
            " ".join(t for _, _, side, t in items if side == 1))


def reference_scores(reference: Sequence[RefLine], output: Sequence[Segment]) -> dict[str, float]:
    pairs = blocks(reference, output)
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    import sacrebleu  # ~0.3 s (it pulls portalocker and redis): only when scoring

    return {"bleu": round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2),
            "chrf": round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2)}


def _normalise(text: str) -> str:
    return " ".join(w.lower() for w in WORD.findall(text.replace("’", "'")))


def word_error_rate(reference: Sequence[RefLine], output: Sequence[Segment]) -> float | None:
    """WER (jiwer) of the whole transcript against a same-language reference subtitle, after
    lower-casing and dropping punctuation; None when the reference has no words."""
    ref = _normalise(" ".join(r.text for r in reference))
    if not ref:
        return None
    import jiwer

    return round(jiwer.wer(ref, _normalise(" ".join(s.text for s in output))), 4)


def _windows(text: str, n: int) -> list[str]:
    words = WORD.findall(text)
    return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


def name_findings(text: str, name: str) -> tuple[bool, bool]:
    """(spelled right, a near miss such as 'Akash' for 'Aakash') for ``name`` in ``text``."""
    right = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.IGNORECASE) is not None
    n = max(1, len(name.split()))
    near = any(near_name(w, name) for w in _windows(text, n))
    return right, near and not right


def name_accuracy(source: Sequence[Segment], output: Sequence[Segment],
                  names: Sequence[str], baseline: Sequence[Segment] | None = None,
                  ) -> tuple[float | None, list[dict[str, Any]]]:
    """Share of expected name mentions spelled right, and the broken ones.

    A name is expected in an output segment when its source or its baseline says it (right or
    nearly), or the output itself nearly says it. Broken: misspelt, or dropped where the
    baseline had it right. None when no name is expected anywhere.
    """
    src = {s.id: s.text for s in source}
    base = {s.id: s.text for s in baseline} if baseline is not None else {}
    expected = right = 0
    broken: list[dict[str, Any]] = []
    for seg in output:
        for name in names:
            ok, near = name_findings(seg.text, name)
            in_source = any(name_findings(src.get(seg.id, ""), name))
            base_ok, base_near = name_findings(base.get(seg.id, ""), name)
            if not (ok or near or in_source or base_ok or base_near):
                continue
            expected += 1
            right += ok
            if near or (base_ok and not ok):
                broken.append({"id": seg.id, "name": name, "text": seg.text,
                               "problem": "misspelt" if near else "dropped"})
    return (round(right / expected, 4) if expected else None), broken


def glossary_adherence(source: Sequence[Segment], output: Sequence[Segment],
                       terms: Sequence[dict[str, Any]]) -> float | None:
    """Of the segments whose source says a glossary term, the share whose output renders it as
    the glossary asks (its translation, or the term itself when none is given)."""
    out = {s.id: s.text for s in output}
    expected = kept = 0
    for seg in source:
        for term in terms:
            if term.get("kind") not in ("term", "character") or not term.get("term"):
                continue
            if not re.search(rf"(?<!\w){re.escape(term['term'])}(?!\w)", seg.text, re.I):
                continue
            want = term.get("translation") or term["term"]
            expected += 1
            kept += re.search(rf"(?<!\w){re.escape(want)}(?!\w)", out.get(seg.id, ""),
                              re.I) is not None
    return round(kept / expected, 4) if expected else None


def rule_compliance(output: Sequence[Segment], rules: SubtitleRules | None = None) -> float:
    """Share of the subtitle cues built from ``output`` that break no style rule."""
    rules = rules or SubtitleRules()
    return compliance(build_cues(output, rules), rules)


def score(source: Sequence[Segment], output: Sequence[Segment], terms: Sequence[dict[str, Any]],
          reference: Sequence[RefLine] | None, baseline: Sequence[Segment] | None = None,
          ) -> tuple[dict[str, float | None], list[dict[str, Any]]]:
    """All scores of one variant, and its broken names."""
    names = list(dict.fromkeys(form for t in terms if t.get("kind") in ("character", "actor")
                               for form in term_forms(t)))
    accuracy, broken = name_accuracy(source, output, names, baseline)
    scores: dict[str, float | None] = {
        "name_accuracy": accuracy,
        "glossary_adherence": glossary_adherence(source, output, terms),
        "rule_compliance": rule_compliance(output),
    }
    if reference:
        scores |= reference_scores(reference, output)
    return scores, broken
