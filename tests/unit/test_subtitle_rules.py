"""Subtitle rules: line wrapping, cue building, compliance counts, SRT/VTT output."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pysubs2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpw_resources.records import Cue, Segment, Word
from cpw_resources.subtitles.rules import (
    MAX_EARLY_START,
    VIOLATIONS,
    SubtitleRules,
    bilingual_cues,
    build_cues,
    check_cues,
    wrap_lines,
    write_subtitle_files,
)

RULES = SubtitleRules()
EPS = 1e-6
LETTERS = "abcdefghijklmnopqrstuvwxyz"
PUNCTUATION = ("", "", "", "", "", ",", ".", "?", "!", ";")
HARD_RULES = ("line_too_long", "too_many_lines", "too_long", "gap_too_small", "overlap")


# --------------------------------------------------------------------------- generators


def make_words(rng: random.Random, n_chars: int) -> list[str]:
    words: list[str] = []
    while len(" ".join(words)) < n_chars:
        word = "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 12)))
        words.append(word + rng.choice(PUNCTUATION))
    return words


def timed_words(rng: random.Random, words: list[str], start: float, end: float) -> tuple[Word, ...]:
    """Word times proportional to length, with an occasional pause after a word."""
    weights = [len(w) + 1 for w in words]
    pauses = [rng.choice((0.0, 0.0, 0.0, 3.0)) for _ in words]
    scale = (end - start) / (sum(weights) + sum(pauses[:-1]))
    result, t = [], start
    for word, weight, pause in zip(words, weights, pauses, strict=True):
        result.append(Word(t, t + weight * scale, " " + word))
        t += (weight + pause) * scale
    return tuple(result)


@st.composite
def speech(
    draw: st.DrawFn,
    rate: tuple[float, float] = (8.0, 16.0),
    gap: tuple[float, float] = (0.0, 3.0),
    duration: tuple[float, float] = (0.3, 15.0),
    max_segments: int = 8,
    min_segments: int = 1,
) -> list[Segment]:
    """Segments in time order with realistic speaking rates, sometimes without word times."""
    t = draw(st.floats(0.0, 5.0))
    segments = []
    for i in range(draw(st.integers(min_segments, max_segments))):
        t += draw(st.floats(*gap))
        length = draw(st.floats(*duration))
        rng = random.Random(draw(st.integers(0, 2**32)))
        words = make_words(rng, max(1, round(length * draw(st.floats(*rate)))))
        timed = timed_words(rng, words, t, t + length) if draw(st.booleans()) else ()
        segments.append(Segment(i, t, t + length, " ".join(words), timed))
        t += length
    return segments


# --------------------------------------------------------------------------- assertions


def cps(cue: Cue) -> float:
    return cue.chars / cue.duration


def cue_words(cues: list[Cue]) -> list[str]:
    return [w for cue in cues for line in cue.lines for w in line.split()]


def segment_words(segments: list[Segment]) -> list[str]:
    return [w for segment in segments for w in segment.text.split()]


def assert_text_kept(cues: list[Cue], segments: list[Segment]) -> None:
    assert cue_words(cues) == segment_words(segments)
    ids = [i for cue in cues for i in cue.segment_ids]
    deduplicated = [i for k, i in enumerate(ids) if k == 0 or ids[k - 1] != i]
    assert deduplicated == [s.id for s in segments if s.text.strip()]


def assert_hard_rules(cues: list[Cue], segments: list[Segment]) -> None:
    lower = max(0.0, segments[0].start - MAX_EARLY_START) - 1e-3
    upper = segments[-1].end + RULES.max_duration + 1e-3
    for cue in cues:
        assert 1 <= len(cue.lines) <= RULES.max_lines
        assert all(0 < len(line) <= RULES.max_line_chars for line in cue.lines)
        assert cue.duration <= RULES.max_duration + EPS
        assert lower <= cue.start < cue.end <= upper
        assert cue.start == round(cue.start, 3) and cue.end == round(cue.end, 3)
    for previous, current in itertools.pairwise(cues):
        assert current.start - previous.end >= RULES.min_gap - EPS


def assert_readable(cues: list[Cue]) -> None:
    for k, cue in enumerate(cues):
        assert cue.duration >= RULES.min_duration - EPS
        assert cps(cue) <= RULES.max_cps + EPS
        if cps(cue) > RULES.target_cps + EPS:
            # Above the target only when boxed in: the next cue follows at the minimum gap,
            # so there was no silence to extend into.
            assert k + 1 < len(cues)
            assert cues[k + 1].start - cue.end <= RULES.min_gap + 0.004


# --------------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(speech())
def test_realistic_speech_meets_every_rule(segments: list[Segment]) -> None:
    cues = build_cues(segments, RULES)
    assert_text_kept(cues, segments)
    assert_hard_rules(cues, segments)
    assert_readable(cues)
    assert all(
        count == 0 for name, count in check_cues(cues, RULES).items() if name != "cps_above_target"
    )


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(speech(rate=(25.0, 25.0), gap=(0.0, 0.0), duration=(10.0, 15.0), min_segments=3))
def test_too_fast_speech_keeps_text_and_reports(segments: list[Segment]) -> None:
    cues = build_cues(segments, RULES)
    assert_text_kept(cues, segments)
    assert_hard_rules(cues, segments)
    counts = check_cues(cues, RULES)
    assert counts["cps_above_max"] > 0
    assert all(counts[name] == 0 for name in HARD_RULES)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=LETTERS + "., ", min_size=1, max_size=15), max_size=12))
def test_wrap_lines_keeps_text_within_limits(words: list[str]) -> None:
    text = " ".join(words)
    lines = wrap_lines(text, RULES)
    if lines is None:
        assert len(text.split()) > 1 or len(text) > RULES.max_line_chars
        return
    assert len(lines) <= RULES.max_lines
    assert all(len(line) <= RULES.max_line_chars for line in lines)
    assert " ".join(lines).split() == text.split()


# --------------------------------------------------------------------------- examples: cues


def segment_with_words(seg_id: int, start: float, text: str, cps_rate: float = 14.0) -> Segment:
    words, t = [], start
    for word in text.split():
        words.append(Word(t, t + (len(word) + 1) / cps_rate, " " + word))
        t += (len(word) + 1) / cps_rate
    return Segment(seg_id, start, t, text, tuple(words))


def test_empty_input_gives_no_cues() -> None:
    assert build_cues([], RULES) == []
    assert build_cues([Segment(0, 1.0, 2.0, "   "), Segment(1, 3.0, 4.0, "")], RULES) == []


def test_long_segment_is_split_at_sentence_ends() -> None:
    text = (
        "We left the village before the sun came up. Nobody said a word on the road. "
        "By noon the river was in sight, wide and brown. The boatman wanted more money. "
        "My father paid him without a single complaint. We crossed in silence."
    )
    segment = segment_with_words(7, 2.0, text, cps_rate=11.5)
    assert segment.end - segment.start > 18
    cues = build_cues([segment], RULES)
    assert len(cues) >= 3
    assert cue_words(cues) == text.split()
    assert all(cue.lines[-1][-1] in ".?!" for cue in cues)
    assert all(cue.segment_ids == (7,) for cue in cues)
    assert_hard_rules(cues, [segment])
    assert_readable(cues)


def test_segment_without_word_times_is_split_proportionally() -> None:
    text = " ".join(["lorem ipsum dolor sit amet,"] * 12)
    segment = Segment(3, 10.0, 30.0, text)
    cues = build_cues([segment], RULES)
    assert len(cues) >= 4
    assert cue_words(cues) == text.split()
    assert_hard_rules(cues, [segment])
    assert_readable(cues)
    assert cues[0].start == pytest.approx(10.0, abs=0.01)


def test_short_cue_extends_into_following_silence() -> None:
    segments = [Segment(0, 1.0, 1.3, "Yes."), Segment(1, 3.3, 5.0, "Then we go home.")]
    cues = build_cues(segments, RULES)
    assert cues[0].lines == ("Yes.",)
    assert cues[0].start == pytest.approx(1.0)
    assert cues[0].duration >= RULES.min_duration
    assert cues[1].start == pytest.approx(3.3)


def test_short_cue_boxed_in_front_extends_backwards() -> None:
    segments = [Segment(0, 4.0, 4.3, "Yes."), segment_with_words(1, 4.3, "x " * 30, 16.0)]
    cues = build_cues(segments, RULES)
    assert cues[0].duration >= RULES.min_duration
    assert cues[0].start < 4.0
    assert cues[1].start - cues[0].end >= RULES.min_gap


def test_short_adjacent_segments_are_merged() -> None:
    segments = [
        segment_with_words(0, 0.0, "Wait for me, please.", 20.0),
        Segment(1, 1.05, 1.3, "Go."),
        Segment(2, 1.3, 1.55, "Now."),
        segment_with_words(3, 1.55, "I cannot run as fast as you do, my friend.", 20.0),
    ]
    cues = build_cues(segments, RULES)
    merged = [cue for cue in cues if cue.segment_ids == (1, 2)]
    assert len(merged) == 1 and " ".join(merged[0].lines) == "Go. Now."
    assert_text_kept(cues, segments)
    assert_hard_rules(cues, segments)
    assert check_cues(cues, RULES)["too_short"] == 0


def test_redistribution_keeps_a_fast_cue_under_max_cps() -> None:
    fast = "This sentence is spoken much too fast."  # 38 chars in 1.5 s: 25 cps
    slow = "And then slowly."  # 16 chars in 3 s
    segments = [Segment(0, 5.0, 6.5, fast), Segment(1, 6.5, 9.5, slow)]
    cues = build_cues(segments, RULES)
    assert len(cues) == 2
    assert all(cps(cue) <= RULES.max_cps for cue in cues)


def test_hard_split_word_keeps_its_letters() -> None:
    word = "a" * 60
    segments = [Segment(0, 0.0, 4.0, f"Look: {word} ok")]
    cues = build_cues(segments, RULES)
    assert_hard_rules(cues, segments)
    assert "".join("".join(cue.lines) for cue in cues).replace(" ", "") == f"Look:{word}ok"


def test_mismatching_word_times_fall_back_to_segment_text() -> None:
    segment = Segment(0, 0.0, 2.0, "Hello world.", (Word(0.0, 1.0, " Bonjour"),))
    cues = build_cues([segment], RULES)
    assert cue_words(cues) == ["Hello", "world."]


def test_overlapping_segments_do_not_overlap_as_cues() -> None:
    segments = [Segment(0, 0.0, 3.0, "First thing to say."), Segment(1, 2.0, 4.0, "Second one.")]
    cues = build_cues(segments, RULES)
    assert_hard_rules(cues, segments)
    assert_text_kept(cues, segments)


# --------------------------------------------------------------------------- examples: wrap


def test_wrap_keeps_short_text_on_one_line() -> None:
    assert wrap_lines("Where are you going?", RULES) == ("Where are you going?",)
    assert wrap_lines("   ", RULES) == ()


def test_wrap_balances_two_lines() -> None:
    lines = wrap_lines("the quick brown fox jumps over the lazy dog and runs far away", RULES)
    assert lines is not None and len(lines) == 2
    assert abs(len(lines[0]) - len(lines[1])) <= 6


def test_wrap_prefers_breaking_after_punctuation() -> None:
    text = "Well, I think that we should go now, before it gets dark and cold outside"
    assert wrap_lines(text, RULES) == (
        "Well, I think that we should go now,",
        "before it gets dark and cold outside",
    )


def test_wrap_rejects_text_longer_than_two_lines() -> None:
    assert wrap_lines("word " * 30, RULES) is None


def test_wrap_hard_splits_a_long_word() -> None:
    assert wrap_lines("x" * 60, RULES) == ("x" * 42, "x" * 18)


# --------------------------------------------------------------------------- check_cues


def test_check_cues_counts_each_violation() -> None:
    cues = [
        Cue(0.0, 0.5, ("x" * 43,)),  # too long a line, too short, cps 86
        Cue(0.55, 8.0, ("a", "b", "c")),  # gap 50 ms, three lines, too long
        Cue(7.9, 9.0, ("hello",)),  # overlaps the previous cue
    ]
    counts = check_cues(cues, RULES)
    assert set(counts) == set(VIOLATIONS)
    assert counts == {
        "line_too_long": 1,
        "too_many_lines": 1,
        "cps_above_target": 1,
        "cps_above_max": 1,
        "too_short": 1,
        "too_long": 1,
        "gap_too_small": 1,
        "overlap": 1,
    }
    assert all(v == 0 for v in check_cues([], RULES).values())


# --------------------------------------------------------------------------- files


def load(path: Path, format_: str) -> pysubs2.SSAFile:
    return pysubs2.load(str(path), format_=format_)


def test_subtitle_files_round_trip(tmp_path: Path) -> None:
    cues = [
        Cue(1.0, 2.5, ("नमस्ते दुनिया",), (0,)),
        Cue(3.0, 5.25, ('"Quoted," she said,', "{laughs} and left."), (1, 2)),
        Cue(3723.004, 3725.5, ("Ünïcödé — ok?",), (3,)),
    ]
    srt, vtt = tmp_path / "out" / "film.srt", tmp_path / "out" / "film.vtt"
    write_subtitle_files(cues, srt, vtt)
    assert vtt.read_text(encoding="utf-8").startswith("WEBVTT")
    assert "01:02:03,004 --> 01:02:05,500" in srt.read_text(encoding="utf-8")
    for path, format_ in ((srt, "srt"), (vtt, "vtt")):
        events = load(path, format_).events
        times = [(e.start, e.end) for e in events]
        assert times == [(1000, 2500), (3000, 5250), (3723004, 3725500)]
        assert [e.text for e in events] == ["\\N".join(cue.lines) for cue in cues]
    assert sorted(p.name for p in srt.parent.iterdir()) == ["film.srt", "film.vtt"]


def test_zero_cues_give_valid_empty_files(tmp_path: Path) -> None:
    srt, vtt = tmp_path / "empty.srt", tmp_path / "empty.vtt"
    write_subtitle_files([], srt, vtt)
    assert srt.read_text(encoding="utf-8") == ""
    assert vtt.read_text(encoding="utf-8").strip() == "WEBVTT"
    assert len(load(srt, "srt")) == 0
    assert len(pysubs2.load(str(vtt))) == 0


def test_built_cues_survive_a_round_trip(tmp_path: Path) -> None:
    segments = [segment_with_words(0, 0.5, "Hello there. " * 8), Segment(1, 12.0, 12.4, "Bye.")]
    cues = build_cues(segments, RULES)
    srt, vtt = tmp_path / "a.srt", tmp_path / "a.vtt"
    write_subtitle_files(cues, srt, vtt)
    events = load(srt, "srt").events
    assert [(e.start / 1000, e.end / 1000) for e in events] == [(c.start, c.end) for c in cues]


# --------------------------------------------------------------------------- bilingual


def test_bilingual_cues_put_source_words_on_top_and_lose_none() -> None:
    target = [Cue(1.0, 3.0, ("Hello, my friend.",), (0,)),
              Cue(4.0, 10.0, ("Goodbye, and this is a very long sentence",
                              "that goes on and on."), (1,))]
    long_source = "अलविदा और " + "बहुत लंबा वाक्य " * 5
    source = [Segment(0, 1.0, 3.0, "नमस्ते मेरे दोस्त।"), Segment(1, 4.0, 10.0, long_source)]
    cues = bilingual_cues(target, source, RULES)
    assert cues[0].lines == ("नमस्ते मेरे दोस्त।", "Hello, my friend.")
    # The long source line is split over cues in time, one source line each: no "…".
    rest = cues[1:]
    assert len(rest) >= 2 and all(len(c.lines[0]) <= RULES.max_line_chars for c in rest)
    assert " ".join(c.lines[0] for c in rest).split() == long_source.split()
    assert " ".join(w for c in rest for w in " ".join(c.lines[1:]).split()) == (
        "Goodbye, and this is a very long sentence that goes on and on.")
    assert all("…" not in line for c in cues for line in c.lines)
    assert rest[0].start == 4.0 and rest[-1].end == 10.0
    assert all(a.end <= b.start for a, b in zip(rest, rest[1:], strict=False))
    assert all(c.segment_ids == (1,) for c in rest)


def test_bilingual_source_far_from_every_cue_still_appears() -> None:
    target = [Cue(1.0, 3.0, ("Hello.",), (0,)), Cue(5.0, 6.0, ("Bye.",), (1,))]
    cues = bilingual_cues(target, [Segment(0, 50.0, 52.0, "दूर")], RULES)
    assert cues[0] == target[0] and cues[1].lines == ("दूर", "Bye.")
