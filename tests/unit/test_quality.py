"""Quality scores: time-aligned BLEU/chrF, name accuracy, glossary adherence, rule compliance."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpw_resources.errors import MediaError
from cpw_resources.records import Segment
from cpw_resources.store.sidecars import Sidecars
from cpw_resources.subtitles.quality import (
    RefLine,
    blocks,
    glossary_adherence,
    load_reference,
    name_accuracy,
    rule_compliance,
    score,
)


def _seg(i, start, end, text):
    return Segment(i, start, end, text)


def test_blocks_join_lines_that_overlap_in_time_whatever_their_split():
    reference = [RefLine(0.0, 2.0, "Where were you?"), RefLine(2.1, 5.0, "At the market."),
                 RefLine(9.0, 10.0, "Nobody said this.")]
    output = [_seg(0, 0.2, 4.8, "Where were you? At the market."),
              _seg(1, 6.0, 7.0, "An invented line.")]
    assert blocks(reference, output) == [
        ("Where were you? At the market.", "Where were you? At the market."),
        ("", "An invented line."),
        ("Nobody said this.", ""),
    ]


def test_reference_scores_reward_the_closer_text(tmp_path: Path):
    srt = tmp_path / "Film.en.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:02,000\nWhere were you, Aakash?\n\n"
                   "2\n00:00:02,100 --> 00:00:05,000\nI was at the market.\n")
    assert Sidecars(tmp_path / "Film.mkv").reference("en") == srt
    reference = load_reference(srt)
    source = [_seg(0, 0, 2.5, "आकाश, तुम कहाँ थे?"), _seg(1, 2.5, 5, "मैं बाज़ार में था।")]
    good = [_seg(0, 0, 2.5, "Where were you, Aakash?"), _seg(1, 2.5, 5, "I was at the market.")]
    poor = [_seg(0, 0, 2.5, "Where you was, Akash?"), _seg(1, 2.5, 5, "Me market in was.")]
    terms = [{"term": "Aakash", "kind": "character"}]
    good_scores, _ = score(source, good, terms, reference)
    poor_scores, broken = score(source, poor, terms, reference, baseline=good)
    assert good_scores["bleu"] == pytest.approx(100.0) and good_scores["chrf"] > 99
    assert poor_scores["bleu"] < 30 and poor_scores["chrf"] < good_scores["chrf"]
    assert good_scores["name_accuracy"] == 1.0 and poor_scores["name_accuracy"] == 0.0
    assert broken == [{"id": 0, "name": "Aakash", "text": "Where you was, Akash?",
                       "problem": "misspelt"}]


def test_a_broken_reference_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "Film.en.srt"
    bad.write_bytes(b"\x00\x01 not subtitles")
    with pytest.raises(MediaError, match="Film.en.srt"):
        load_reference(bad)


def test_name_accuracy_counts_misspelt_and_dropped_names():
    names = ["Sameer", "Pooja"]
    source = [_seg(i, i, i + 1, "...") for i in range(4)]
    baseline = [_seg(0, 0, 1, "Sameer is here."), _seg(1, 1, 2, "Call Pooja."),
                _seg(2, 2, 3, "Nothing."), _seg(3, 3, 4, "Samir left.")]
    output = [_seg(0, 0, 1, "He is here."), _seg(1, 1, 2, "Call Puja."),
              _seg(2, 2, 3, "Nothing."), _seg(3, 3, 4, "Sameer left.")]
    accuracy, broken = name_accuracy(source, output, names, baseline)
    assert accuracy == pytest.approx(1 / 3, abs=1e-4)
    assert [(b["id"], b["problem"]) for b in broken] == [(0, "dropped"), (1, "misspelt")]
    assert name_accuracy(source, baseline[2:3], names) == (None, [])


def test_glossary_adherence_uses_the_rendering_the_glossary_asks_for():
    terms = [{"term": "izzat", "kind": "term", "translation": "honour"},
             {"term": "Goa", "kind": "term", "translation": ""}]
    source = [_seg(0, 0, 1, "meri izzat"), _seg(1, 1, 2, "Goa chalo"), _seg(2, 2, 3, "izzat")]
    output = [_seg(0, 0, 1, "my honour"), _seg(1, 1, 2, "let's go to Goa"),
              _seg(2, 2, 3, "respect")]
    assert glossary_adherence(source, output, terms) == pytest.approx(2 / 3, abs=1e-4)
    assert glossary_adherence(source, output, []) is None


def test_rule_compliance_is_the_share_of_clean_cues():
    fine = [_seg(0, 0.0, 2.0, "Short line."), _seg(1, 3.0, 5.0, "Another short line.")]
    assert rule_compliance(fine) == 1.0
    crammed = fine + [_seg(2, 6.0, 6.6, "This line says far too much for the little time it is "
                                        "on screen, so nobody can read it in time at all.")]
    assert rule_compliance(crammed) < 1.0
