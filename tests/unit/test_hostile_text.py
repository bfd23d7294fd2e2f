"""Hostile text from a model or a transcript: it never changes the structure of the subtitle
files (cues, lines, styles), and a model's implausible answer (far too long, timing lines of
its own) is refused like any bad reply. Files are read back with pysubs2; replies come from a
127.0.0.1 server through the real OpenAI SDK."""

from __future__ import annotations

import html
import json
import re
import tempfile
import unicodedata
from pathlib import Path

import pysubs2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpw_resources.llm import translate
from cpw_resources.llm.engine import ReplyCache
from cpw_resources.llm.enhance import Enhancer, Line
from cpw_resources.llm.pricing import Pricing
from cpw_resources.llm.providers import OpenAIProvider
from cpw_resources.records import Cue, Segment, Word
from cpw_resources.services.reliability import Policy, Reliability
from cpw_resources.subtitles.rules import (
    TIMING_LIKE,
    SubtitleRules,
    bilingual_cues,
    build_cues,
    check_cues,
    plain_text,
    write_subtitle_files,
)
from tests.fake_llm import openai_reply
from tests.fake_service import fake_service

RULES = SubtitleRules()
TIMING_LINE = "00:00:00.000 --> 00:09:59.000"
RTL = "\u200fمرحبا يا صديقي، كيف حالك؟"  # Arabic with a right-to-left mark
COMBINING = "Ame\u0301lie va à l’école; क्‍षमा कीजिए"  # e + U+0301, Devanagari virama + ZWJ
SNIPPETS = [
    TIMING_LINE, "1:02:03,456", "12:34.567", "-->", "--->", "<script>alert(1)</script>",
    "<b>", "</i>", "&amp;", "&", "<", ">", "{\\an8}", "{{\\an8}\\an8}", "{\\b1", "{laughs}",
    "\\N", "\\n", "\\h", "\\\\N", "\n", "\r\n", "\r", "\u2028", "\u2029", "\t", "\x0b", "\x85",
    "\x00", "\x07", "\x1b[31m", "\x7f", "\x9b", "\ud800", RTL, COMBINING, "WEBVTT", "NOTE",
    "Hello,", "there.", "ok?",
]
HOSTILE = [
    f"Before.\n{TIMING_LINE}\nInjected cue.",
    "<script>alert('x')</script> <b>bold</b> Tom & Jerry: 3 < 4 > 2",
    "{\\an8}On top\\Nsecond\\nthird\\hfourth",
    "NUL\x00 BEL\x07 ESC\x1b[0m CR\r\nLF\nLS\u2028PS\u2029TAB\tend",
    RTL,
    COMBINING,
]


def timed(texts: list[str], cps: float = 12.0, gap: float = 2.0) -> list[Segment]:
    """Segments read at ``cps`` (raw length; cleaning only shortens) with ``gap`` between."""
    segments, t = [], 1.0
    for i, text in enumerate(texts):
        duration = max(1.5, len(text) / cps)
        segments.append(Segment(i, t, t + duration, text))
        t += duration + gap
    return segments


def write_and_load(cues: list[Cue], folder: Path) -> tuple[str, str, list, list]:
    srt, vtt = folder / "t.srt", folder / "t.vtt"
    write_subtitle_files(cues, srt, vtt)
    return (srt.read_text(encoding="utf-8"), vtt.read_text(encoding="utf-8"),
            pysubs2.load(str(srt), format_="srt").events,
            pysubs2.load(str(vtt), format_="vtt").events)


def assert_files_hold_exactly(cues: list[Cue], folder: Path) -> None:
    """Each file has exactly the built cues (count, times, text) and no markup of its own."""
    srt_raw, vtt_raw, srt_events, vtt_events = write_and_load(cues, folder)
    times = [(round(c.start * 1000), round(c.end * 1000)) for c in cues]
    lines = ["\\N".join(c.lines) for c in cues]
    for events in (srt_events, vtt_events):
        assert [(e.start, e.end) for e in events] == times
    assert [e.text.replace("‹", "<").replace("›", ">") for e in srt_events] == lines
    assert [html.unescape(e.text) for e in vtt_events] == lines
    for raw in (srt_raw, vtt_raw):
        assert raw.count("-->") == len(cues) and "<" not in raw
        assert not re.search(r"\\[Nnh]|\{\\", raw)
    assert "\n\n\n" not in srt_raw.strip() and vtt_raw.startswith("WEBVTT\n")


# --------------------------------------------------------------------------- plain_text


@pytest.mark.parametrize(("text", "plain"), [
    (f"{TIMING_LINE}\nevil", "00∶00∶00.000 → 00∶09∶59.000 evil"),
    ("lap 01:02.50, then 1:2,3 at 10:30", "lap 01∶02.50, then 1∶2,3 at 10:30"),
    ("a ---> b", "a -→ b"),
    ("{\\an8}Top {\\b1}bold{\\b0}", "Top bold"),
    ("{{\\an8}\\an8}nested", "nested"),
    ("{\\an8 unclosed", "{an8 unclosed"),
    ("one\\Ntwo\\nthree\\hfour", "one two three four"),
    ("a\r\nb\rc\nd\u2028e\u2029f\tg\x0bh\x85i", "a b c d e f g h i"),
    ("N\x00U\x07L\x1b[0mL\x7f\x9b\ud800", "NUL[0mL"),
    ("<script>x</script> & <b>", "<script>x</script> & <b>"),
    ("{laughs} is dialogue", "{laughs} is dialogue"),
    (RTL, RTL),
    (COMBINING, COMBINING),
    ("\x00\r\n{\\an8}\u2028 \\N", ""),
])
def test_plain_text(text: str, plain: str) -> None:
    assert plain_text(text) == plain


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SNIPPETS), max_size=12).map("".join))
def test_plain_text_leaves_nothing_a_subtitle_reader_would_obey(text: str) -> None:
    plain = plain_text(text)
    assert plain_text(plain) == plain
    assert not TIMING_LIKE.search(plain)
    assert not re.search(r"\\[Nnh]|\{\\|\{[^{}]*\\[^{}]*\}", plain)
    assert all(unicodedata.category(c) not in ("Cc", "Cs") for c in plain)
    assert all(not c.isspace() or c == " " for c in plain) and "  " not in plain
    assert plain == plain.strip()


# --------------------------------------------------------------------------- cues and files


def test_the_issue_examples_keep_the_cues_that_were_built(tmp_path: Path) -> None:
    segments = timed(HOSTILE + ["\x00\r\n{\\an8}\u2028"])  # the last is empty once cleaned
    cues = build_cues(segments, RULES)
    assert {i for c in cues for i in c.segment_ids} == set(range(len(HOSTILE)))
    assert all(count == 0 for count in check_cues(cues, RULES).values())
    assert_files_hold_exactly(cues, tmp_path)
    srt_raw, vtt_raw, srt_events, vtt_events = write_and_load(cues, tmp_path)
    assert "&lt;script&gt;" in vtt_raw and "Tom &amp; Jerry: 3 &lt; 4 &gt; 2" in vtt_raw
    assert "‹script›" in srt_raw and "Tom & Jerry: 3 ‹ 4 › 2" in srt_raw
    assert "00:09:59" not in srt_raw + vtt_raw and "On top second third fourth" in srt_raw
    assert RTL in srt_raw and RTL in vtt_raw and COMBINING in srt_raw
    assert all(e.text.count("\\N") <= RULES.max_lines - 1 for e in srt_events + vtt_events)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(SNIPPETS), min_size=1, max_size=8).map(" ".join),
                min_size=1, max_size=6))
def test_any_hostile_text_gives_files_with_exactly_the_built_cues(texts: list[str]) -> None:
    segments = timed(texts)
    cues = build_cues(segments, RULES)
    assert all(count == 0 for count in check_cues(cues, RULES).values())
    assert [w for c in cues for ln in c.lines for w in ln.split()] == [
        w for s in segments for w in plain_text(s.text).split()]
    with tempfile.TemporaryDirectory() as folder:
        assert_files_hold_exactly(cues, Path(folder))


def test_word_timestamps_survive_cleaning() -> None:
    words = (Word(1.0, 1.4, " {\\an8}Hello"), Word(9.0, 9.5, " there\x00."))
    cues = build_cues([Segment(0, 1.0, 9.5, "{\\an8}Hello there\x00.", words)], RULES)
    assert [c.lines for c in cues] == [("Hello",), ("there.",)]
    assert cues[1].start >= 9.0 - 1.0  # on its word (spread over the segment: about 5 s)


def test_bilingual_source_lines_are_cleaned_too(tmp_path: Path) -> None:
    target = build_cues(timed(["Hello, my friend."]), RULES)
    source = [Segment(0, 1.0, 2.5, f"{TIMING_LINE}\n<i>नमस्ते</i> {{\\an8}}दोस्त")]
    cues = bilingual_cues(target, source, RULES)
    # Cleaned, and split over two cues rather than cut: every source word is shown.
    assert cues[0].lines[0] == "00∶00∶00.000 → 00∶09∶59.000 <i>नमस्ते</i>"
    assert cues[1].lines[0] == "दोस्त"
    assert_files_hold_exactly(cues, tmp_path)


def test_cues_given_directly_are_cleaned_when_written(tmp_path: Path) -> None:
    cues = [Cue(1.0, 3.0, (f"{TIMING_LINE}\r\nx", "\x00")), Cue(4.0, 5.0, ("\u2028", "{\\an8}")),
            Cue(6.0, 7.0, ("<b>a & b</b>",))]
    _, _, srt_events, vtt_events = write_and_load(cues, tmp_path)
    for events in (srt_events, vtt_events):
        assert [(e.start, e.end) for e in events] == [(1000, 3000), (6000, 7000)]
    assert srt_events[0].text == "00∶00∶00.000 → 00∶09∶59.000 x"
    assert html.unescape(vtt_events[1].text) == "<b>a & b</b>"


# --------------------------------------------------------------------------- model replies

KEY = "sk-test-hostile-0123456789abcdef"
MINI = Pricing.load().price("openai", "gpt-4o-mini")


@pytest.fixture
def server():
    with fake_service() as service:
        yield service


def _provider(server, tmp_path: Path) -> OpenAIProvider:
    rel = Reliability(tmp_path / "breakers", Policy(fail_max=50), sleep=lambda s: None)
    return OpenAIProvider("gpt-4o-mini", rel, base_url=server.url + "/v1", api_key=KEY,
                          read_timeout_s=2, price=MINI)


def _sizes(server, field: str = "segments") -> list[int]:
    return [len(json.loads(json.loads(r["body"])["messages"][1]["content"])[field])
            for r in server.requests]


def test_an_edit_ten_times_the_mt_is_refused_and_the_mt_kept(server, tmp_path: Path) -> None:
    """The issue's case: 7 lines, one answered with 10x its MT, would have become 40 cues."""
    lines = [Line(i, i * 4.0, i * 4.0 + 3.0, f"यह पंक्ति {i} है", f"This is line {i}.")
             for i in range(7)]

    def padding(segment: dict, glossary: list) -> str:
        text = segment["translation"]
        return " ".join([text.upper()] * 10) if segment["id"] == 3 else text.upper()

    server.chooser = lambda path: openai_reply(json.loads(server.requests[-1]["body"]),
                                               editor=padding)
    enhancer = Enhancer([(_provider(server, tmp_path), MINI)],
                        ReplyCache(tmp_path / "cache.sqlite"), None, "hi", "en", batch_size=8)
    out = enhancer.run(lines, {ln.id: ["all"] for ln in lines}, [])
    # 7 twice, then halves: 3 ok; 4 twice → 2 twice → line 3 alone twice, line 4 ok; 2 ok.
    assert _sizes(server) == [7, 7, 3, 4, 4, 2, 2, 1, 1, 1, 2]
    assert out.status[3] == "rejected" and out.text[3] == lines[3].translation
    assert all(out.text[i] == lines[i].translation.upper() for i in range(7) if i != 3)
    padded, widest = len(padding({"id": 3, "translation": lines[3].translation}, [])), max(
        len(lines[3].translation), len(lines[3].source))
    assert padded > 3 * widest > 42
    assert any(f"id 3 is {padded} columns wide where at most {3 * widest}" in e
               for e in out.errors)
    segments = [Segment(ln.id, ln.start, ln.end, out.text[ln.id]) for ln in lines]
    assert len(build_cues(segments, RULES)) == 7


@pytest.mark.parametrize(("answer", "accepted"), [
    (lambda s: f"{TIMING_LINE}\nEN[{s['text']}]", False),  # a timing line of its own
    (lambda s: f"EN[{s['text']}] 00:01:02,500", False),
    (lambda s: f"EN[{s['text']}]\nsecond line\r\nthird", True),  # breaks: only layout
    (lambda s: f"EN[{s['text']}] " * 2, True),  # twice as long: plausible
])
def test_a_translation_with_timing_text_of_its_own_is_refused(server, tmp_path: Path, answer,
                                                               accepted: bool) -> None:
    segments = [Segment(0, 0.0, 2.0, "आज रात हम चलेंगे और कल सुबह लौट आएंगे।"),
                Segment(1, 3.0, 5.0, f"समय {TIMING_LINE} था")]  # timing text in the source

    def reply(path: str):
        body = json.loads(server.requests[-1]["body"])
        data = json.loads(body["messages"][1]["content"])
        content = {"translations": [{"id": s["id"], "text": answer(s) if s["id"] == 0 else
                                     f"It was {TIMING_LINE}"} for s in data["segments"]]}
        return openai_reply(body, content=json.dumps(content, ensure_ascii=False))

    server.chooser = reply
    done = translate.run([(_provider(server, tmp_path), MINI)], segments, source="hi",
                         target="en")
    assert done.segments[1].text == f"It was {TIMING_LINE}"  # the source had it
    if accepted:
        assert done.failed_ids == [] and "\n" not in done.segments[0].text
        assert done.segments[0].text == " ".join(answer({"text": segments[0].text}).split())
    else:
        assert done.failed_ids == [0] and done.segments[0] == segments[0]
        assert any("adds timing-like text" in e for e in done.errors)


def test_a_cached_answer_that_is_now_implausible_is_asked_again(server, tmp_path: Path) -> None:
    cache = ReplyCache(tmp_path / "cache.sqlite")
    segment = Segment(0, 0.0, 2.0, "नमस्ते")
    task = translate.TranslateTask("hi", "en", [])
    key = ReplyCache.key(task.name, task.prompt.version, "openai", "gpt-4o-mini",
                         json.dumps(task.cache_content(segment), ensure_ascii=False,
                                    sort_keys=True))
    cache.put_many([(key, "Hello " * 40, "openai:gpt-4o-mini")])  # stored before the check
    server.chooser = lambda path: openai_reply(
        json.loads(server.requests[-1]["body"]),
        content=json.dumps({"translations": [{"id": 0, "text": "Hello"}]}))
    done = translate.run([(_provider(server, tmp_path), MINI)], [segment], source="hi",
                         target="en", cache=cache)
    assert done.cache_hits == 0 and len(server.requests) == 1
    assert done.segments[0].text == "Hello" and cache.get_many([key]) == {key: "Hello"}
