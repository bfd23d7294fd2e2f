"""Subtitle layout rules: turn timed translation segments into readable subtitle cues.

This module owns the professional subtitle style used for every output file:

* the limits themselves (:class:`SubtitleRules`: characters per line, lines per cue, reading
  speed, cue duration, gap between cues);
* subtitle text as plain text (:func:`plain_text`), the one boundary every text from a model
  or a transcript passes before it becomes a cue, and its escaping for each file format;
* line breaking (:func:`wrap_lines`);
* cue building (:func:`build_cues`): split long segments at word timestamps, time every cue
  so it can be read, borrow time from silence and from neighbouring cues, merge cues that stay
  too short;
* the compliance check used for metrics (:func:`check_cues`);
* each segment's character budget (:func:`char_budget`): the most text its cues can show at
  the reading speed, which the LLM post-editor is told and held to;
* writing SRT and WebVTT atomically (:func:`write_subtitle_files`);
* the optional bilingual layout (:func:`bilingual_cues`).

Text is never invented or dropped: every word of every segment ends up in exactly one cue, in
order. When speech is too fast to satisfy the reading-speed limit, the text wins and
:func:`check_cues` reports the violation. What is not text (control characters, line breaks
of its own, markup, timing lines) is made harmless first, so no text can add a cue, a line or
a style to the files. Pure Python; no Dagster.
"""

from __future__ import annotations

import bisect
import html
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pysubs2

from cpw_resources.atomic import write_with
from cpw_resources.records import Cue, Segment


@dataclass(frozen=True)
class SubtitleRules:
    max_line_chars: int = 42
    max_lines: int = 2
    target_cps: float = 17.0  # aim, where the speech allows
    max_cps: float = 20.0  # never above, where the speech allows
    min_duration: float = 5 / 6
    max_duration: float = 7.0
    min_gap: float = 2 / 24  # 2 frames at 24 fps


DEFAULT_RULES = SubtitleRules()

#: How far a cue may start before / after the speech it carries when it borrows time.
MAX_EARLY_START = 1.0
MAX_LATE_START = 1.0
#: How far after its speech a :func:`char_budget` counts on a segment's last cue staying. The
#: builder may hold a cue longer (up to the next cue or max_duration); a budget that counted on
#: more would make the cues inside a long segment drift from its speech by more than
#: MAX_EARLY_START / MAX_LATE_START allow.
MAX_LATE_END = 1.0

VIOLATIONS = (
    "line_too_long",
    "too_many_lines",
    "cps_above_target",
    "cps_above_max",
    "too_short",
    "too_long",
    "gap_too_small",
    "overlap",
)

# Times are rounded to whole milliseconds at the end; planning with 2 ms of headroom keeps every
# limit satisfied after rounding (each endpoint moves by at most 0.5 ms).
_MARGIN = 0.002
_TOLERANCE = 1e-6
_MAX_SWEEPS = 100
_BUDGET_ROUNDS = 3

_SENTENCE_END = frozenset(".?!…।॥。！？")
_CLAUSE_END = frozenset(",;:—–、，；：")
_CLOSERS = "\"')]}»”’"

# Costs of breaking after a word, by punctuation class (none, clause, sentence).
_LINE_BREAK_COST = (10.0, 4.0, 0.0)  # in characters of imbalance between lines
_CUE_BREAK_COST = (1.0, 0.4, 0.0)
_PAUSE_BONUS = 0.3  # a break at an audible pause is nearly as good as one at punctuation
_PAUSE = 0.3
_CUE_COST = 1.5  # every extra cue must buy this much better breaking or balance
_BALANCE_WEIGHT = 2.0


# --------------------------------------------------------------------------- plain text

#: Text a subtitle reader takes for (part of) a timing line: the WebVTT/SRT arrow, and
#: timestamps as pysubs2's SRT (``H:M:S,mmm``) and WebVTT (``M:S.mmm``) readers find them
#: anywhere in a line (two on one line make a cue).
TIMING_LIKE = re.compile(r"-->|\d+:\d+(?::\d+)?[.,]\d+")
# Control characters other than whitespace (whitespace, line and paragraph separators
# included, becomes one space) and lone surrogates, which cannot be written as UTF-8.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff]")
# SubStation markup that pysubs2 and libass-based players honour inside SRT/WebVTT text: an
# override block such as {\an8} (moves the cue), the \N \n \h breaks and hard space, and
# what is left of an unclosed block.
_ASS_BLOCK = re.compile(r"\{[^{}]*\\[^{}]*\}")
_ASS_BREAK = re.compile(r"\\[Nnh]")
_ASS_OPEN = re.compile(r"\{\\")
_ARROW = "→"
_RATIO = "∶"  # U+2236: looks like a colon, is not one to a timestamp pattern


def _defuse_markup(text: str) -> str:
    # Removing a block can join the pieces of another ({{\an8}\an8}): repeat until none.
    while (cleaned := _ASS_BLOCK.sub("", text)) != text:
        text = cleaned
    return _ASS_OPEN.sub("{", _ASS_BREAK.sub(" ", text))


def _defuse_timing_match(match: re.Match[str]) -> str:
    return _ARROW if match.group() == "-->" else match.group().replace(":", _RATIO)


def _defuse_timing(text: str) -> str:
    # One match can use up digits that another needs (00:09:59.00012:34.567): repeat.
    while (cleaned := TIMING_LIKE.sub(_defuse_timing_match, text)) != text:
        text = cleaned
    return text


def plain_text(text: str) -> str:
    """``text`` as one line of plain subtitle text; idempotent.

    Control characters and lone surrogates are removed; every run of whitespace (line breaks,
    U+2028, tabs) becomes one space, since the cue builder alone makes line breaks;
    SubStation override blocks are removed and ``\\N``/``\\n``/``\\h`` become spaces; ``-->``
    becomes ``→`` and a timestamp's colons become ``∶``, so no text reads as a timing line.
    Letters, combining marks, right-to-left text and format characters (ZWJ, RLM) are kept.
    HTML-like markup stays text here and is escaped for each file format when written.
    """
    text = _defuse_markup(_CONTROL.sub("", text))
    return " ".join(_defuse_timing(text).split())


def _plain_segment(segment: Segment) -> Segment:
    return replace(segment, text=plain_text(segment.text),
                   words=tuple(replace(w, word=plain_text(w.word)) for w in segment.words))


# --------------------------------------------------------------------------- line breaking


def _punctuation_class(word: str) -> int:
    """0: no punctuation, 1: clause punctuation, 2: sentence end (closing quotes ignored)."""
    core = word.rstrip(_CLOSERS)
    if not core:
        return 0
    if core[-1] in _SENTENCE_END:
        return 2
    return 1 if core[-1] in _CLAUSE_END else 0


def _hard_split(word: str, width: int) -> list[str]:
    return [word[i : i + width] for i in range(0, len(word), width)] or [word]


def _words(text: str, width: int) -> list[str]:
    return [piece for word in text.split() for piece in _hard_split(word, width)]


def _min_lines(lengths: Iterable[int], width: int) -> int:
    """Fewest lines that hold words of these lengths in order (greedy fill is optimal)."""
    lines, current = 0, -1
    for length in lengths:
        if current >= 0 and current + 1 + length <= width:
            current += 1 + length
        else:
            lines, current = lines + 1, length
    return lines


def _balanced_lines(words: list[str], count: int, width: int) -> tuple[str, ...]:
    """Split ``words`` into exactly ``count`` lines of similar length, preferring punctuation."""
    n = len(words)
    offsets = [0]
    for word in words:
        offsets.append(offsets[-1] + len(word))

    def line_length(i: int, j: int) -> int:
        return offsets[j] - offsets[i] + (j - i - 1)

    ideal = (line_length(0, n) - (count - 1)) / count
    cost = [[math.inf] * (n + 1) for _ in range(count + 1)]
    back = [[0] * (n + 1) for _ in range(count + 1)]
    cost[0][0] = 0.0
    for line in range(1, count + 1):
        for end in range(line, n + 1):
            break_cost = _LINE_BREAK_COST[_punctuation_class(words[end - 1])] if end < n else 0.0
            # Ascending starts with a strict "<" keep the upper line shorter on ties.
            for start in range(line - 1, end):
                length = line_length(start, end)
                if length > width or cost[line - 1][start] == math.inf:
                    continue
                total = cost[line - 1][start] + abs(length - ideal) + break_cost
                if total < cost[line][end]:
                    cost[line][end], back[line][end] = total, start
    lines: list[str] = []
    end = n
    for line in range(count, 0, -1):
        start = back[line][end]
        lines.append(" ".join(words[start:end]))
        end = start
    return tuple(reversed(lines))


def wrap_lines(text: str, rules: SubtitleRules) -> tuple[str, ...] | None:
    """Break ``text`` into at most ``rules.max_lines`` lines of ``rules.max_line_chars``.

    Text that fits on one line stays on one line; otherwise it uses as few lines as possible,
    balanced in length and broken after punctuation where that costs little balance. Words
    longer than a line are hard-split. Returns ``None`` when the text cannot fit, ``()`` for
    blank text.
    """
    width = rules.max_line_chars
    words = _words(text, width)
    if not words:
        return ()
    count = _min_lines((len(w) for w in words), width)
    if count > rules.max_lines:
        return None
    if count == 1:
        return (" ".join(words),)
    return _balanced_lines(words, count, width)


# --------------------------------------------------------------------------- timed words


@dataclass(frozen=True)
class _Token:
    text: str
    start: float
    end: float
    segment_id: int


@dataclass(frozen=True)
class _Chunk:
    """Words that become one cue, with their wrapped lines."""

    tokens: tuple[_Token, ...]
    lines: tuple[str, ...]

    @property
    def start(self) -> float:
        return self.tokens[0].start

    @property
    def end(self) -> float:
        return self.tokens[-1].end

    @property
    def chars(self) -> int:
        return sum(len(line) for line in self.lines)

    @property
    def segment_ids(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(t.segment_id for t in self.tokens))


def _char_times(segment: Segment, letters: str) -> list[tuple[float, float]]:
    """Start and end time of every non-space character of the segment text.

    Word timestamps are used when the words spell the segment text; otherwise the segment's
    time is spread evenly over the characters, i.e. over words in proportion to their length.
    """
    start = segment.start
    end = max(segment.end, start)
    times: list[tuple[float, float]] = []
    spelled = "".join("".join(w.word.split()) for w in segment.words)
    if segment.words and spelled == letters:
        for word in segment.words:
            chars = "".join(word.word.split())
            if not chars:
                continue
            w_start = min(max(word.start, start), end)
            w_end = min(max(word.end, w_start), end)
            step = (w_end - w_start) / len(chars)
            times.extend((w_start + step * i, w_start + step * (i + 1)) for i in range(len(chars)))
    else:
        step = (end - start) / len(letters)
        times = [(start + step * i, start + step * (i + 1)) for i in range(len(letters))]
    monotonic: list[tuple[float, float]] = []
    floor = start
    for t_start, t_end in times:
        floor = max(floor, t_start)
        monotonic.append((floor, max(t_end, floor)))
    return monotonic


def _segment_tokens(segment: Segment, width: int) -> list[_Token]:
    """The segment's words as plain text (long ones hard-split) with start and end times.

    Every segment text becomes cue text here, through :func:`plain_text`.
    """
    segment = _plain_segment(segment)
    words = segment.text.split()
    if not words:
        return []
    times = _char_times(segment, "".join(words))
    tokens: list[_Token] = []
    index = 0
    for word in words:
        for piece in _hard_split(word, width):
            first, last = times[index], times[index + len(piece) - 1]
            tokens.append(_Token(piece, first[0], last[1], segment.id))
            index += len(piece)
    return tokens


# --------------------------------------------------------------------------- splitting


def _make_chunk(tokens: Sequence[_Token], rules: SubtitleRules) -> _Chunk | None:
    lines = wrap_lines(" ".join(t.text for t in tokens), rules)
    return None if lines is None else _Chunk(tuple(tokens), lines)


def _cue_break_cost(tokens: Sequence[_Token], after: int) -> float:
    """Cost of ending a cue after ``tokens[after - 1]``; free at the end of the segment."""
    if after >= len(tokens):
        return 0.0
    cost = _CUE_BREAK_COST[_punctuation_class(tokens[after - 1].text)]
    if tokens[after].start - tokens[after - 1].end >= _PAUSE:
        cost -= _PAUSE_BONUS
    return max(cost, 0.0)


def _split_segment(tokens: Sequence[_Token], rules: SubtitleRules) -> list[_Chunk]:
    """Cut a segment's words into cue-sized chunks (two lines, max duration).

    Dynamic programming over cut points: each chunk costs a constant (fewer cues are easier to
    follow) plus a balance term, and each cut costs by its punctuation, so cuts land after
    sentences, then clauses, then anywhere, and chunks come out similar in size.
    """
    n = len(tokens)
    capacity = rules.max_line_chars * rules.max_lines
    max_span = rules.max_duration - _MARGIN
    best = [0.0] + [math.inf] * n
    back = [0] * (n + 1)
    for end in range(1, n + 1):
        lengths: list[int] = []
        for start in range(end - 1, -1, -1):
            lengths.insert(0, len(tokens[start].text))
            span = tokens[end - 1].end - tokens[start].start
            # A single word is always a chunk; more words must fit lines and duration.
            if start < end - 1 and (
                _min_lines(lengths, rules.max_line_chars) > rules.max_lines or span > max_span
            ):
                break
            chars = sum(lengths) + len(lengths) - 1
            cost = (
                best[start]
                + _CUE_COST
                + _BALANCE_WEIGHT * (chars / capacity) ** 2
                + _cue_break_cost(tokens, end)
            )
            if cost < best[end]:
                best[end], back[end] = cost, start
    chunks: list[_Chunk] = []
    end = n
    while end > 0:
        start = back[end]
        chunk = _make_chunk(tokens[start:end], rules)
        assert chunk is not None  # every chunk passed the same line test
        chunks.append(chunk)
        end = start
    return chunks[::-1]


# --------------------------------------------------------------------------- timing


class _Timeline:
    """Display times for a sequence of chunks, adjusted in place until readable.

    Every cue has a ``need`` (duration for min_duration and max_cps) and a ``want`` (duration
    for target_cps). Cues first extend forward into silence, then backward; cues still short of
    time then take it from a touching neighbour that has more than its fair share, moving the
    shared boundary (bounded by MAX_EARLY_START / MAX_LATE_START so cues stay in sync). Each
    step keeps the hard constraints (order, gap, max duration), so the result is always valid.
    """

    def __init__(self, chunks: Sequence[_Chunk], rules: SubtitleRules) -> None:
        self.gap = rules.min_gap + _MARGIN
        self.max_dur = rules.max_duration - _MARGIN
        min_dur = rules.min_duration + _MARGIN
        self.need = [
            min(self.max_dur, max(min_dur, c.chars / rules.max_cps + _MARGIN)) for c in chunks
        ]
        self.want = [
            min(self.max_dur, max(need, c.chars / rules.target_cps + _MARGIN))
            for c, need in zip(chunks, self.need, strict=True)
        ]
        self.start, self.end = self._speech_layout(chunks)
        self.earliest = [max(0.0, s - MAX_EARLY_START) for s in self.start]
        self.latest = [s + MAX_LATE_START for s in self.start]

    def _speech_layout(self, chunks: Sequence[_Chunk]) -> tuple[list[float], list[float]]:
        """Cues on their speech, made monotonic and cut apart where speech touches or overlaps."""
        start: list[float] = []
        end: list[float] = []
        floor = 0.0
        for chunk in chunks:
            floor = max(chunk.start, floor)
            start.append(floor)
            end.append(min(max(chunk.end, floor), floor + self.max_dur))
        for k in range(len(chunks) - 1):
            if end[k] + self.gap > start[k + 1]:
                cut = (end[k] + start[k + 1]) / 2
                end[k] = max(start[k], cut - self.gap / 2)
                start[k + 1] = max(start[k + 1], end[k] + self.gap)
                end[k + 1] = min(max(end[k + 1], start[k + 1]), start[k + 1] + self.max_dur)
        return start, end

    def duration(self, k: int) -> float:
        return self.end[k] - self.start[k]

    def _level(self, k: int, duration: float) -> float:
        """How well a cue is served: 0..1 up to its need, 1..2 up to its want, then more."""
        need, want = self.need[k], self.want[k]
        if duration <= need:
            return duration / need
        if duration <= want:
            return 1.0 + (duration - need) / (want - need)
        return 2.0 + (duration - want)

    def _extend_forward(self, k: int, extra: float = 0.0) -> float:
        """Into the silence after cue k, up to its want (plus ``extra``, within max)."""
        wanted = min(self.want[k] + extra, self.max_dur)
        if self.duration(k) >= wanted:
            return 0.0
        limit = self.start[k + 1] - self.gap if k + 1 < len(self.start) else math.inf
        new_end = min(self.start[k] + wanted, limit)
        if new_end <= self.end[k]:
            return 0.0
        moved, self.end[k] = new_end - self.end[k], new_end
        return moved

    def _extend_backward(self, k: int, extra: float = 0.0) -> float:
        """Into the silence before cue k, up to its want (plus ``extra``, within max)."""
        wanted = min(self.want[k] + extra, self.max_dur)
        if self.duration(k) >= wanted:
            return 0.0
        limit = self.earliest[k] if k == 0 else max(self.earliest[k], self.end[k - 1] + self.gap)
        new_start = max(self.end[k] - wanted, limit)
        if new_start >= self.start[k]:
            return 0.0
        moved, self.start[k] = self.start[k] - new_start, new_start
        return moved

    def _transfer(
        self, taker: int, taker_dur: float, giver: int, giver_dur: float, limit: float
    ) -> float:
        """Seconds to move from ``giver`` to ``taker`` so their levels meet (within ``limit``).

        Both levels are piecewise linear in the transferred time, so the meeting point is found
        exactly by walking the breakpoints.
        """
        if limit <= 0.0:
            return 0.0

        def diff(t: float) -> float:
            return self._level(taker, taker_dur + t) - self._level(giver, giver_dur - t)

        if diff(limit) <= 0.0:
            return limit
        breaks = (
            self.need[taker] - taker_dur,
            self.want[taker] - taker_dur,
            giver_dur - self.want[giver],
            giver_dur - self.need[giver],
        )
        points = sorted({limit, *(p for p in breaks if 0.0 < p < limit)})
        previous, previous_diff = 0.0, diff(0.0)
        for point in points:
            current = diff(point)
            if current >= 0.0:
                return previous + (point - previous) * -previous_diff / (current - previous_diff)
            previous, previous_diff = point, current
        return limit

    def _balance(self, k: int) -> float:
        """Move the boundary between touching cues k and k+1 towards the worse-served one."""
        if self.start[k + 1] - self.end[k] > self.gap + _TOLERANCE:
            return 0.0
        left, right = self.duration(k), self.duration(k + 1)
        left_level, right_level = self._level(k, left), self._level(k + 1, right)
        if left_level < right_level and left_level < 2.0:
            limit = min(
                self.want[k] - left,
                self.max_dur - left,
                self.latest[k + 1] - self.start[k + 1],
                right,
            )
            shift = self._transfer(k, left, k + 1, right, limit)
        elif right_level < left_level and right_level < 2.0:
            limit = min(
                self.want[k + 1] - right,
                self.max_dur - right,
                self.start[k + 1] - self.earliest[k + 1],
                left,
            )
            shift = -self._transfer(k + 1, right, k, left, limit)
        else:
            return 0.0
        self.end[k] += shift
        self.start[k + 1] += shift
        return abs(shift)

    def _touching_runs(self) -> Iterator[tuple[int, int]]:
        """(first, last) of each maximal run of cues separated by no more than the gap."""
        first = 0
        for k in range(1, len(self.start) + 1):
            if k == len(self.start) or self.start[k] - self.end[k - 1] > self.gap + _TOLERANCE:
                yield first, k - 1
                first = k

    def solve(self) -> None:
        self._sweeps()
        # Time still short inside a run of touching cues (speech end to end) is taken from the
        # silence at the run's ends: they may reach past their own want by the run's shortfall,
        # and the balancing passes that time along the run to the cues that need it.
        again = False
        for first, last in list(self._touching_runs()):
            short = sum(max(0.0, self.want[k] - self.duration(k)) for k in range(first, last + 1))
            if first < last and short > _TOLERANCE:
                again |= self._extend_forward(last, short) + self._extend_backward(first, short) > 0
        if again:
            self._sweeps()
        for k in range(len(self.start)):
            self._extend_forward(k)

    def _sweeps(self) -> None:
        n = len(self.start)
        for sweep in range(_MAX_SWEEPS):
            moved = sum(self._extend_forward(k) for k in range(n))
            moved += sum(self._extend_backward(k) for k in range(n))
            # Alternating direction lets time flow both ways along a run of touching cues.
            pairs = range(n - 1) if sweep % 2 == 0 else range(n - 2, -1, -1)
            moved += sum(self._balance(k) for k in pairs)
            if moved < _TOLERANCE:
                break


# --------------------------------------------------------------------------- merging


def _merge(first: _Chunk, second: _Chunk, rules: SubtitleRules) -> _Chunk | None:
    if second.end - first.start > rules.max_duration - _MARGIN:
        return None
    return _make_chunk(first.tokens + second.tokens, rules)


def _merge_short(
    chunks: list[_Chunk], timeline: _Timeline, rules: SubtitleRules
) -> list[_Chunk] | None:
    """Merge each too-short cue with a neighbour; None if none merged.

    Neighbours without a pause in between are preferred, then the one giving the shorter cue.
    """
    threshold = rules.min_duration + _MARGIN - _TOLERANCE
    partner: dict[int, int] = {}
    merged: dict[int, _Chunk] = {}
    for k in range(len(chunks)):
        if k in partner or timeline.duration(k) >= threshold:
            continue
        options: list[tuple[bool, int, int, _Chunk]] = []
        for j in (k - 1, k + 1):
            if not 0 <= j < len(chunks) or j in partner:
                continue
            first, second = min(j, k), max(j, k)
            chunk = _merge(chunks[first], chunks[second], rules)
            if chunk is not None:
                pause = chunks[second].start - chunks[first].end >= _PAUSE
                options.append((pause, chunk.chars, j, chunk))
        if options:
            *_, j, chunk = min(options, key=lambda option: option[:3])
            partner[k], partner[j] = j, k
            merged[min(j, k)] = chunk
    if not merged:
        return None
    result: list[_Chunk] = []
    k = 0
    while k < len(chunks):
        if k in merged:
            result.append(merged[k])
            k += 2
        else:
            result.append(chunks[k])
            k += 1
    return result


# --------------------------------------------------------------------------- cues


def _to_cues(chunks: Sequence[_Chunk], timeline: _Timeline, rules: SubtitleRules) -> list[Cue]:
    """Round to milliseconds (SRT precision) and re-impose gap and max duration after rounding."""
    gap_ms = math.ceil(rules.min_gap * 1000 - _TOLERANCE)
    max_ms = math.floor(rules.max_duration * 1000 + _TOLERANCE)
    cues: list[Cue] = []
    previous_end: int | None = None
    for k, chunk in enumerate(chunks):
        start = max(0, round(timeline.start[k] * 1000))
        if previous_end is not None:
            start = max(start, previous_end + gap_ms)
        end = min(max(round(timeline.end[k] * 1000), start + 1), start + max_ms)
        cues.append(Cue(start / 1000, end / 1000, chunk.lines, chunk.segment_ids))
        previous_end = end
    return cues


def build_cues(segments: Sequence[Segment], rules: SubtitleRules = DEFAULT_RULES) -> list[Cue]:
    """Subtitle cues for translation segments given in time order.

    Long segments are split at word timestamps (synthesised from character counts when a
    segment has none); cues are timed to be readable, borrowing silence and time from
    neighbours, and cues that stay too short are merged with a neighbour. Blank segments
    yield no cue.
    """
    chunks = [
        chunk
        for segment in segments
        for chunk in _split_segment(_segment_tokens(segment, rules.max_line_chars), rules)
    ]
    if not chunks:
        return []
    while True:
        timeline = _Timeline(chunks, rules)
        timeline.solve()
        merged = _merge_short(chunks, timeline, rules)
        if merged is None:
            return _to_cues(chunks, timeline, rules)
        chunks = merged


def text_chars(text: str) -> int:
    """Characters of ``text`` as subtitle text (:func:`plain_text`): what a budget counts."""
    return len(plain_text(text))


def _cue_chars(rules: SubtitleRules) -> int:
    """Characters a cue holds when a budget counts on it: its lines, less 6 columns a line for
    word wrap (a line rarely fills to its last column)."""
    return max(1, rules.max_lines * (rules.max_line_chars - 6))


def _budget_span(segments: Sequence[Segment], k: int, gap: float, end: float | None) -> float:
    """Seconds segment ``k`` may show its text: its speech and its share of the silence around
    it (see :func:`char_budget`)."""
    segment = segments[k]
    start, stop = segment.start, max(segment.end, segment.start)
    if k == 0:
        before = min(max(0.0, start), MAX_EARLY_START)
    else:
        before = min((start - segments[k - 1].end - gap) / 2, MAX_EARLY_START)
    if k + 1 < len(segments):
        after = min((segments[k + 1].start - stop - gap) / 2, MAX_LATE_END)
    elif end is not None:
        after = min(max(0.0, end - stop), MAX_LATE_END)
    else:
        after = MAX_LATE_END
    return max(0.0, stop - start + before + after)


def char_budget(segments: Sequence[Segment], rules: SubtitleRules = DEFAULT_RULES, *,
                end: float | None = None, cps: float | None = None) -> dict[int, int]:
    """The most characters each segment's text may have so that :func:`build_cues` can show it
    at ``cps`` (default ``rules.target_cps``, so the cues pass :func:`check_cues` with no
    reading-speed violation); by segment id, for segments given in time order.

    A segment's time is its own speech plus the silence the builder may borrow: half of each
    gap to a neighbour after the minimum gap between cues (the other half is the neighbour's),
    at most MAX_EARLY_START before and MAX_LATE_END after; before the first segment, the
    silence since 0 (at most MAX_EARLY_START); after the last, the silence until ``end`` (the
    recording's length) when given, else MAX_LATE_END. Segments closer than the minimum gap, or
    overlapping, lose half the shortfall. A segment whose time cannot show its own text at this
    speed, or the shortest cue, takes what it lacks from its neighbours: the builder takes it
    from whichever can give, so it is counted against both. A text longer than one cue holds
    loses the minimum gap between its cues. A segment whose own text (:func:`text_chars`) is
    already longer than its budget keeps its length as its budget: a post-editor must not make
    it longer, but is not asked to cut.
    """
    rate = rules.target_cps if cps is None else cps
    gap = rules.min_gap + _MARGIN
    spans = [_budget_span(segments, k, gap, end) for k in range(len(segments))]
    shortest = rules.min_duration + _MARGIN
    needs = [max(shortest, text_chars(s.text) / rate + _MARGIN) for s in segments]
    taken = [0.0] * len(segments)
    lacked = [0.0] * len(segments)
    for _ in range(_BUDGET_ROUNDS):  # what a neighbour lost may make it lack in turn
        lacks = [max(0.0, need - (span - lost)) for need, span, lost in
                 zip(needs, spans, taken, strict=True)]
        for k, more in enumerate(lack - before for lack, before in
                                 zip(lacks, lacked, strict=True)):
            for j in (k - 1, k + 1) if more > _TOLERANCE else ():
                if 0 <= j < len(segments):
                    taken[j] += more
        if lacks == lacked:
            break
        lacked = lacks
    budgets: dict[int, int] = {}
    for segment, span, lost in zip(segments, spans, taken, strict=True):
        span = max(0.0, span - lost)
        chars = 0
        for cues in itertools.count(1):  # the most that any number of cues can show
            shown = span - (cues - 1) * gap - cues * _MARGIN
            fits = max(0, math.floor(rate * shown + _TOLERANCE))
            chars = max(chars, min(fits, cues * _cue_chars(rules)))
            if fits <= cues * _cue_chars(rules):
                break
        budgets[segment.id] = max(chars, text_chars(segment.text))
    return budgets


def check_cues(cues: Sequence[Cue], rules: SubtitleRules) -> dict[str, int]:
    """Count rule violations, one per offending cue (or pair of consecutive cues).

    A cue above max_cps is also counted above target_cps. Consecutive cues that overlap count
    as ``overlap``; those that do not overlap but are closer than min_gap as ``gap_too_small``.
    """
    counts = dict.fromkeys(VIOLATIONS, 0)
    ordered = sorted(cues, key=lambda cue: (cue.start, cue.end))
    for broken in cue_violations(ordered, rules):
        for kind in broken:
            counts[kind] += 1
    return counts


def cue_violations(cues: Sequence[Cue], rules: SubtitleRules) -> list[list[str]]:
    """The violations (keys of :data:`VIOLATIONS`) of each of ``cues``, in their order; a
    gap or overlap is the later cue's of the pair."""
    found: list[list[str]] = []
    for cue in cues:
        duration = cue.duration
        cps = cue.chars / duration if duration > 0 else (math.inf if cue.chars else 0.0)
        found.append([kind for kind, broken in (
            ("line_too_long", any(len(line) > rules.max_line_chars for line in cue.lines)),
            ("too_many_lines", len(cue.lines) > rules.max_lines),
            ("cps_above_target", cps > rules.target_cps + _TOLERANCE),
            ("cps_above_max", cps > rules.max_cps + _TOLERANCE),
            ("too_short", duration < rules.min_duration - _TOLERANCE),
            ("too_long", duration > rules.max_duration + _TOLERANCE),
        ) if broken])
    for k, (previous, current) in enumerate(itertools.pairwise(cues), 1):
        gap = current.start - previous.end
        if gap < 0:
            found[k].append("overlap")
        elif gap < rules.min_gap - _TOLERANCE:
            found[k].append("gap_too_small")
    return found


#: Violations of one cue that make it non-compliant (pairs: ``overlap``, ``gap_too_small``).
RULES = ("line_too_long", "too_many_lines", "cps_above_target", "cps_above_max", "too_short",
         "too_long")


def compliance(cues: Sequence[Cue], rules: SubtitleRules | None = None) -> float:
    """Share of cues breaking no rule of :data:`RULES`, nor overlapping or crowding the next."""
    rules = rules or SubtitleRules()
    if not cues:
        return 1.0
    bad = {i for i, cue in enumerate(cues)
           if any(check_cues([cue], rules)[k] for k in RULES)}
    for i in range(1, len(cues)):
        pair = check_cues([cues[i - 1], cues[i]], rules)
        if pair["overlap"] or pair["gap_too_small"]:
            bad.add(i)
    return round(1 - len(bad) / len(cues), 4)


# --------------------------------------------------------------------------- files


def escape_srt(line: str) -> str:
    """SRT has no escapes and players read ``<b>``, ``<font>`` (and worse, in web players) as
    markup: angle brackets become the look-alike ``‹ ›`` (U+2039, U+203A)."""
    return line.replace("<", "‹").replace(">", "›")


def escape_vtt(line: str) -> str:
    """WebVTT cue text: ``&``, ``<`` and ``>`` as the character references ``&amp;``,
    ``&lt;`` and ``&gt;``, which WebVTT players show as the characters themselves."""
    return html.escape(line, quote=False)


def _ssa_file(cues: Sequence[Cue], escape: Callable[[str], str]) -> pysubs2.SSAFile:
    """The cues with each line made plain text (a no-op for built cues) and escaped; a line
    left empty is dropped, a cue left without lines too."""
    subs = pysubs2.SSAFile()
    for cue in cues:
        lines = [escape(line) for line in map(plain_text, cue.lines) if line]
        if lines:
            subs.append(pysubs2.SSAEvent(start=round(cue.start * 1000),
                                         end=round(cue.end * 1000), text="\\N".join(lines)))
    return subs


def write_subtitle_files(cues: Sequence[Cue], srt_path: Path, vtt_path: Path) -> None:
    """Write the cues as SRT and WebVTT, each atomically, with every line plain text escaped
    for its format (:func:`escape_srt`, :func:`escape_vtt`).

    Zero cues give an empty SRT and a VTT holding only the ``WEBVTT`` header. (pysubs2 cannot
    auto-detect the format of an empty SRT; load it with ``format_="srt"``.)
    """
    srt, vtt = _ssa_file(cues, escape_srt), _ssa_file(cues, escape_vtt)
    # keep_ssa_tags: the text is plain and already escaped; pysubs2 must write it as it is.
    write_with(srt_path, lambda tmp: srt.save(str(tmp), format_="srt", keep_ssa_tags=True))
    write_with(vtt_path, lambda tmp: vtt.save(str(tmp), format_="vtt", keep_ssa_tags=True))


# --------------------------------------------------------------------------- bilingual


def _nearest_cue(cues: Sequence[Cue], starts: Sequence[float], time: float) -> int:
    """The cue containing ``time``, else the nearest one (every source word goes somewhere)."""
    index = bisect.bisect_right(starts, time) - 1
    best: tuple[float, int] | None = None
    for k in (index, index + 1):
        if 0 <= k < len(cues):
            distance = max(cues[k].start - time, time - cues[k].end, 0.0)
            if best is None or distance < best[0]:
                best = (distance, k)
    assert best is not None, "at least one cue"
    return best[1]


def _source_lines(tokens: Sequence[_Token], width: int) -> list[tuple[str, int]]:
    """Source words in order, as lines of at most ``width`` characters: (line, index of its
    first token)."""
    lines: list[tuple[str, int]] = []
    current: list[str] = []
    first = 0
    for i, token in enumerate(tokens):
        if current and len(" ".join([*current, token.text])) > width:
            lines.append((" ".join(current), first))
            current, first = [], i
        current.append(token.text)
    if current:
        lines.append((" ".join(current), first))
    return lines


def _split_words(words: list[str], shares: Sequence[float]) -> list[list[str]]:
    """``words`` in order, cut into ``len(shares)`` parts of about those shares."""
    parts, start, total = [], 0, sum(shares) or 1.0
    for k in range(len(shares)):
        end = len(words) if k == len(shares) - 1 else min(
            len(words), max(start, round(len(words) * sum(shares[:k + 1]) / total)))
        parts.append(words[start:end])
        start = end
    return parts


def bilingual_cues(
    target: Sequence[Cue], source_segments: Sequence[Segment], rules: SubtitleRules = DEFAULT_RULES
) -> list[Cue]:
    """Target cues with the source-language words spoken during each cue on a line above.

    Every source word appears once: each goes to the cue that contains its midpoint, else to
    the nearest cue. A cue whose source words need more than one line of
    ``rules.max_line_chars`` is split in time, at the words' own times, into as many cues as
    lines, each with one source line and its share of the target text (wrapped by the same
    rules), so nothing is cut short. Such cues have one line more than ``rules.max_lines``
    allows, so :func:`check_cues` reports them as ``too_many_lines``. Cues without source
    words are returned unchanged.
    """
    ordered = sorted(target, key=lambda cue: cue.start)
    if not ordered:
        return []
    starts = [cue.start for cue in ordered]
    words: list[list[_Token]] = [[] for _ in ordered]
    for segment in source_segments:
        for token in _segment_tokens(segment, rules.max_line_chars):
            words[_nearest_cue(ordered, starts, (token.start + token.end) / 2)].append(token)
    out: list[Cue] = []
    for cue, tokens in zip(ordered, words, strict=True):
        lines = _source_lines(tokens, rules.max_line_chars)
        if len(lines) <= 1:
            out.append(Cue(cue.start, cue.end, (lines[0][0], *cue.lines), cue.segment_ids)
                       if lines else cue)
            continue
        cuts = [min(max(tokens[i].start, cue.start), cue.end) for _, i in lines[1:]]
        bounds = [cue.start, *cuts, cue.end]
        if any(b <= a for a, b in zip(bounds, bounds[1:], strict=False)):
            step = (cue.end - cue.start) / len(lines)  # words without usable times
            bounds = [cue.start + step * k for k in range(len(lines))] + [cue.end]
        spans = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
        parts = _split_words(" ".join(cue.lines).split(), spans)
        for k, (line, _) in enumerate(lines):
            text = " ".join(parts[k])
            wrapped = wrap_lines(text, rules)
            if wrapped is None:  # more target text than two lines hold: keep every word
                wrapped = tuple(x for x, _ in _source_lines(
                    [_Token(w, 0.0, 0.0, 0) for w in parts[k]], rules.max_line_chars))
            end = bounds[k + 1]
            if k + 1 < len(lines) and end - bounds[k] > 2 * rules.min_gap:
                end -= rules.min_gap
            out.append(Cue(round(bounds[k], 3), round(end, 3), (line, *wrapped),
                           cue.segment_ids))
    return out
