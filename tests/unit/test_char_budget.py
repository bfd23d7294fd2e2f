"""Character budgets (``char_budget``): the most text a segment may hold so that its cues meet
the reading speed, counting the silence the cue builder borrows from its neighbours; and
that ``build_cues`` really delivers what a budget promises."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from cpw_resources.records import Cue, Segment
from cpw_resources.subtitles.rules import (
    MAX_EARLY_START,
    MAX_LATE_END,
    SubtitleRules,
    build_cues,
    char_budget,
    check_cues,
    text_chars,
)

RULES = SubtitleRules()
GAP = RULES.min_gap + 0.002  # the builder plans every gap with 2 ms of headroom
MARGIN = 0.002  # ... and every cue's duration
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def text_of(rng: random.Random, n: int) -> str:
    """Words (some with punctuation) exactly ``n`` characters long."""
    words: list[str] = []
    while True:
        word = "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 10)))
        word += rng.choice(("", "", "", ",", "."))
        if len(" ".join([*words, word])) > n:
            break
        words.append(word)
    text = " ".join(words)
    return text + "x" * (n - len(text)) if words else "x" * n


def clean(cue: Cue) -> bool:
    return not any(check_cues([cue], RULES).values())


def cps(cue: Cue) -> float:
    return cue.chars / cue.duration


# --------------------------------------------------------------------------- the budget


def test_a_short_line_with_silence_around_borrows_up_to_a_second_each_side() -> None:
    segments = [Segment(0, 10.0, 11.0, "Yes."), Segment(1, 20.0, 22.0, "Then we go home.")]
    budget = char_budget(segments, RULES)
    # 1 s of speech, 1 s before it (the first line: silence since 0), 1 s of the 9 s after.
    shown = 1.0 + MAX_EARLY_START + MAX_LATE_END
    assert budget[0] == math.floor(RULES.target_cps * (shown - MARGIN)) == 50
    # The last line: 1 s after it unless the recording ends sooner.
    assert budget[1] == math.floor(RULES.target_cps * (2.0 + 1.0 + 1.0 - MARGIN))
    assert char_budget(segments, RULES, end=22.5)[1] == math.floor(
        RULES.target_cps * (2.0 + 1.0 + 0.5 - MARGIN))
    assert char_budget(segments, RULES, end=22.0)[1] == math.floor(
        RULES.target_cps * (2.0 + 1.0 - MARGIN))


def test_a_gap_is_shared_with_the_next_line_and_the_budget_grows_with_it() -> None:
    def first(gap: float) -> int:
        segments = [Segment(0, 0.0, 2.0, "We go."), Segment(1, 2.0 + gap, 4.0 + gap, "Fine.")]
        return char_budget(segments, RULES)[0]

    gaps = [0.0, 0.1, 0.5, 1.0, 1.5, 2.0, 2.1, 5.0, 60.0]
    budgets = [first(gap) for gap in gaps]
    assert budgets == sorted(budgets) and budgets[0] < budgets[-1]
    # Half of what the minimum gap leaves, at most MAX_LATE_END.
    assert first(1.0) == math.floor(RULES.target_cps * (2.0 + (1.0 - GAP) / 2 - MARGIN))
    assert first(5.0) == first(60.0) == math.floor(
        RULES.target_cps * (2.0 + MAX_LATE_END - MARGIN))


def test_back_to_back_lines_lose_half_the_minimum_gap_each() -> None:
    segments = [Segment(0, 0.0, 2.0, "We go."), Segment(1, 2.0, 4.0, "Fine."),
                Segment(2, 4.0, 6.0, "Good.")]
    budget = char_budget(segments, RULES)
    assert budget[0] == math.floor(RULES.target_cps * (2.0 - GAP / 2 - MARGIN))
    assert budget[1] == math.floor(RULES.target_cps * (2.0 - GAP - MARGIN))
    assert budget[1] < budget[0] < RULES.target_cps * 2.0


def test_a_mt_line_already_over_its_budget_keeps_its_own_length() -> None:
    long = "This translation is far too long for the half second it is spoken in."
    segments = [Segment(0, 0.0, 2.0, "We go."), Segment(1, 2.0, 2.5, long),
                Segment(2, 2.5, 4.5, "Fine.")]
    budget = char_budget(segments, RULES)
    assert budget[1] == len(long)
    # Its neighbours lose what it lacks: the builder will take that time from them.
    alone = char_budget([Segment(0, 0.0, 2.0, "We go."), Segment(1, 2.0, 2.5, "Go."),
                         Segment(2, 2.5, 4.5, "Fine.")], RULES)
    assert budget[0] < alone[0] and budget[2] < alone[2]


def test_a_line_too_short_for_the_shortest_cue_takes_from_its_neighbours() -> None:
    def budgets(middle: float) -> dict[int, int]:
        return char_budget([Segment(0, 0.0, 3.0, "We go."), Segment(1, 3.0, 3.0 + middle, "Go."),
                            Segment(2, 3.0 + middle, 6.0, "Fine.")], RULES)

    assert budgets(0.3)[0] < budgets(1.5)[0]
    assert budgets(0.3)[1] == len("Go.")  # it cannot even show its own text


def test_a_long_line_loses_the_gaps_between_its_cues() -> None:
    (budget,) = char_budget([Segment(0, 0.0, 12.0, "It goes on.")], RULES).values()
    one_cue = math.floor(RULES.target_cps * (12.0 + MAX_LATE_END - MARGIN))
    assert budget < one_cue
    # m cues show 17 cps over 13 s less m - 1 gaps, and hold m × 2 lines of 42 - 6 (for
    # word wrap) characters: the budget is the most any m can do.
    assert budget == max(
        min(math.floor(RULES.target_cps * (13.0 - (m - 1) * GAP - m * MARGIN)),
            m * RULES.max_lines * (RULES.max_line_chars - 6))
        for m in range(1, 10))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 3.0), st.floats(0.0, 8.0), st.text(max_size=150)),
                min_size=1, max_size=8))
def test_a_budget_is_never_below_the_mt_text(layout) -> None:
    segments, t = [], 0.0
    for k, (gap, duration, text) in enumerate(layout):
        segments.append(Segment(k, t + gap, t + gap + duration, text))
        t += gap + duration
    budget = char_budget(segments, RULES)
    assert set(budget) == {s.id for s in segments}
    assert all(budget[s.id] >= text_chars(s.text) >= 0 for s in segments)


# --------------------------------------------------------------------------- the builder


def test_a_long_enhanced_line_fits_by_borrowing_the_following_silence() -> None:
    mt = [Segment(0, 0.0, 2.0, "We go now."), Segment(1, 4.0, 6.0, "Fine.")]
    budget = char_budget(mt, RULES)[0]
    assert budget > RULES.target_cps * 2.0  # more than its own 2 s can show
    rng = random.Random(1)
    enhanced = [Segment(0, 0.0, 2.0, text_of(rng, budget)), mt[1]]
    first, second = build_cues(enhanced, RULES)
    # It starts with its speech at 0 (nothing to borrow before): the time came from the gap.
    assert first.segment_ids == (0,) and first.start == 0.0 and first.end > 2.0 + 0.5
    assert clean(first) and cps(first) <= RULES.target_cps
    assert second.start == 4.0 and clean(second)


def _layouts(seed: int, durations: tuple[float, float], gaps: tuple[float, ...],
             count: tuple[int, int]) -> list[list[Segment]]:
    rng = random.Random(seed)
    layouts = []
    for _ in range(150):
        segments, t = [], rng.uniform(0.0, 2.0)
        for k in range(rng.randint(*count)):
            duration = rng.uniform(*durations)
            mt = text_of(rng, max(2, int(duration * rng.uniform(5.0, 15.0))))
            segments.append(Segment(k, round(t, 3), round(t + duration, 3), mt))
            t += duration + rng.choice(gaps) * rng.random()
        layouts.append(segments)
    return layouts


def test_text_at_its_budget_gives_cues_within_the_reading_speed() -> None:
    """Every line of a title written out to exactly its budget (the worst a post-editor may
    do): sparse and dense dialogue, lines of 0.3–9 s. The budget is built from the builder's
    own rules, but the builder balances time its own way, so a few cues may miss the target;
    none may pass the maximum, and ≥ 99 % of the cues of lines the budget let grow are clean."""
    rng = random.Random(7)
    kinds = [_layouts(1, (0.3, 9.0), (0.0, 0.05, 0.1, 0.3, 0.8, 2.0, 5.0), (1, 12)),
             _layouts(2, (0.3, 4.0), (0.0, 0.0, 0.05, 0.1, 0.2, 0.3), (5, 20))]
    for layouts in kinds:
        grown = good = 0
        for mt in layouts:
            budget = char_budget(mt, RULES)
            at_budget = [Segment(s.id, s.start, s.end, text_of(rng, budget[s.id])) for s in mt]
            cues = build_cues(at_budget, RULES)
            assert check_cues(cues, RULES)["cps_above_max"] == 0
            floor = {s.id for s in mt if budget[s.id] == text_chars(s.text)}
            for cue in cues:
                if not floor & set(cue.segment_ids):
                    grown += 1
                    good += clean(cue)
        assert grown > 1000 and good / grown >= 0.99, (good, grown)
