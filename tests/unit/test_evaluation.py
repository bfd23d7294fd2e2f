"""The scores bench_quality.py and the quality gate use: one normaliser, WER, BLEU, compliance,
invented cues."""

from __future__ import annotations

import pytest

from cpw_resources.records import Cue
from cpw_resources.subtitles import evaluation as ev
from cpw_resources.subtitles.quality import RefLine


def test_one_normaliser_for_every_script() -> None:
    assert ev.normalise("Press #, then *.  It’s “DONE”!") == "press pound then star it's done"
    assert ev.normalise("L'agent — 'quoted' 12h30") == "l'agent quoted 12h30"
    assert ev.normalise("रघुवीर, घर चलो!") == "रघुवीर घर चलो"  # vowel signs stay in the word
    assert ev.normalise("Этот оператор уже зарегистрирован.") == "этот оператор уже зарегистрирован"


def test_wer_ignores_cue_boundaries_case_and_punctuation() -> None:
    reference = [RefLine(0, 2, "Ask not what your country"), RefLine(2, 4, "can do for you.")]
    same = [Cue(0, 1, ("ask not what",)), Cue(1, 4, ("Your country can", "do, for you!"))]
    assert ev.wer(reference, same) == 0.0
    one_wrong = [Cue(0, 4, ("ask not what our country can do for you",))]
    assert ev.wer(reference, one_wrong) == pytest.approx(1 / 9)
    assert ev.wer([RefLine(0, 1, "...")], same) is None


def test_bleu_is_perfect_for_the_reference_and_low_for_other_words() -> None:
    reference = [RefLine(0, 3, "The agent is already logged on."),
                 RefLine(4, 8, "Please enter your agent number followed by the pound key.")]
    exact = [Cue(r.start, r.end, (r.text,)) for r in reference]
    assert ev.bleu_chrf(reference, exact) == (100.0, 100.0)
    other = [Cue(0, 8, ("Bananas grow on tall green plants near rivers.",))]
    bleu, chrf = ev.bleu_chrf(reference, other)
    assert bleu < 5 and chrf < 30


def test_compliance_counts_each_cue_breaking_a_rule() -> None:
    good = Cue(0.0, 2.0, ("A short line.",))
    too_fast = Cue(2.2, 2.6, ("Far too many characters for so little time on screen",))
    overlapping = Cue(2.5, 4.0, ("Overlaps the previous cue.",))
    too_wide = Cue(5.0, 9.0, ("x" * 60,))
    assert ev.compliance([good]) == 1.0
    assert ev.compliance([good, too_fast, overlapping, too_wide]) == 0.25
    assert ev.compliance([]) == 1.0


def test_invented_cues_are_those_with_no_reference_speech_under_them() -> None:
    reference = [RefLine(0, 2, "Hello."), RefLine(30, 32, "Goodbye.")]
    cues = [Cue(0.1, 2.0, ("Hello.",)),
            Cue(2.2, 3.0, ("trailing",)),  # within the half-second slack: heard
            Cue(10, 12, ("♪ music ♪",)),  # in the music-only stretch
            Cue(25, 26, ("what?",)),  # invented, but outside the spans given
            Cue(30, 32, ("Goodbye.",))]
    assert ev.invented_cues(reference, cues, [(5.0, 20.0)]) == (2, 1)


def test_number_words_and_digits_are_the_same_words():
    from cpw_resources.subtitles.evaluation import normalise

    assert normalise("Press one, then dial twenty-eight.") == normalise("press 1 then dial 28")
    assert normalise("eight thousand five hundred") == "8500"
    assert normalise("one two three") == "1 2 3"  # digits said one by one stay apart
    assert normalise("zero one") == "0 1"
    assert normalise("a hundred times") == "a hundred times"  # no number word before it
