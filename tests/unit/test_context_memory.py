"""The context learner's memory, suggestions and name repairs, on event rows built here."""

from __future__ import annotations

import datetime as dt

import polars as pl

from cpw_resources.language.glossary import repair_segments
from cpw_resources.language.matching import repair_words
from cpw_resources.language.memory import (
    MEMORY_SCHEMA,
    TitleContext,
    build_memory,
    context_rows,
    suggest,
)
from cpw_resources.records import Segment, Word

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _rows(title: str, ctx: TitleContext, confirmed: list[str], *, days: float = 0,
          rejected: tuple[str, ...] = (), run: str | None = None, asset: str = "glossary",
          source: str = "sidecar_json") -> list[dict]:
    rows = context_rows(ctx, [{"term": t, "kind": "character", "source": source}
                              for t in confirmed],
                        [(r, "sidecar_reject", "") for r in rejected])
    ts = T0 + dt.timedelta(days=days)
    return [{**r, "title": title, "run_id": run or f"run-{title}", "ts": ts, "asset": asset}
            for r in rows]


def _frame(rows: list[dict]) -> pl.DataFrame:
    schema = {**MEMORY_SCHEMA, "run_id": pl.String(), "asset": pl.String()}
    return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)


def _runs(*titles: str, status: str = "success") -> pl.DataFrame:
    return pl.DataFrame({"title": list(titles), "status": [status] * len(titles)})


SERIES = TitleContext(series="Lonavala Diaries", season=1, episode=1, director="R. Mehra",
                      genres=("drama",))


def test_only_finished_titles_count_and_a_rerun_replaces_a_titles_rows() -> None:
    rows = (_rows("ep1", SERIES, ["Puja", "Raghuveer"], run="a")
            + _rows("ep1", SERIES, ["Pooja", "Raghuveer"], days=1, run="b")  # corrected rerun
            + _rows("ep2", SERIES, ["Khandala"], days=2))
    memory = build_memory(_frame(rows), _runs("ep1"))  # ep2 never finished
    assert sorted(memory["term"].to_list()) == ["Pooja", "Raghuveer"]
    assert build_memory(_frame(rows), _runs()).is_empty()
    # What the enhancement confirmed in a later run (the glossary was cached) adds to it.
    rows += _rows("ep1", SERIES, ["Meenakshi"], days=3, run="c", asset="enhanced_translation",
                  source="enhancement")
    memory = build_memory(_frame(rows), _runs("ep1"))
    assert sorted(memory.select("term", "source").iter_rows()) == [
        ("Meenakshi", "enhancement"), ("Pooja", "sidecar_json"), ("Raghuveer", "sidecar_json")]


def test_same_series_first_then_director_then_genre_by_frequency_and_recency() -> None:
    other_series = TitleContext(series="Another Show", director="R. Mehra", genres=("drama",))
    genre_only = TitleContext(series="Third", director="Someone", genres=("Drama", "crime"))
    rows = (_rows("s1", SERIES, ["Raghuveer", "Pooja"], days=10)
            + _rows("s2", SERIES, ["Raghuveer"], days=20)
            + _rows("d1", other_series, ["Inspector Kale"], days=30)
            + _rows("g1", genre_only, ["Chhota Don"], days=40)
            + _rows("x1", TitleContext(series="Unrelated", genres=("comedy",)), ["Bunty"]))
    memory = build_memory(_frame(rows), _runs("s1", "s2", "d1", "g1", "x1"))
    new = TitleContext(series="lonavala diaries", episode=3, director="R. Mehra",
                       genres=("drama",))
    found, corrections = suggest(memory, new, [])
    assert [s.term for s in found] == ["Raghuveer", "Pooja", "Inspector Kale", "Chhota Don"]
    assert [s.level for s in found] == ["series", "series", "director", "genre"]
    assert found[0].titles == 2 and found[0].score > found[1].score
    assert corrections == []
    entry = found[0].as_term()
    assert entry["suggested"] is True and entry["source"] == "memory"
    assert "same series" in entry["note"] and "2 titles" in entry["note"]
    # The same memory gives the same scores whenever it is asked: no clock inside.
    assert [s.score for s in suggest(memory, new, [])[0]] == [s.score for s in found]
    # Nothing in common: nothing suggested.
    assert suggest(memory, TitleContext(series="New", genres=("horror",)), [])[0] == []
    assert suggest(memory, TitleContext(), [])[0] == []


def test_recent_confirmations_weigh_more() -> None:
    rows = (_rows("old", SERIES, ["Samir"], days=0)
            + _rows("new", SERIES, ["Anjali"], days=400))
    memory = build_memory(_frame(rows), _runs("old", "new"))
    found, _ = suggest(memory, SERIES, [])
    assert [s.term for s in found] == ["Anjali", "Samir"]
    assert found[1].score < found[0].score / 2  # 400 days older: past two half-lives


def test_user_spellings_win_and_are_recorded_as_corrections() -> None:
    rows = _rows("ep1", SERIES, ["Puja", "Raghuveer", "Khandala"])
    memory = build_memory(_frame(rows), _runs("ep1"))
    found, corrections = suggest(memory, SERIES, ["Pooja", "Khandala"], title="ep2")
    assert [s.term for s in found] == ["Raghuveer"]  # Khandala: written; Puja: spelled Pooja
    assert corrections == [("Puja", "Pooja")]


def test_a_rejection_hides_a_term_until_confirmed_again_and_the_title_itself_is_skipped(
        ) -> None:
    rows = (_rows("ep1", SERIES, ["Raghuveer", "Ganpat"], days=0)
            + _rows("ep2", SERIES, [], days=1, rejected=("Ganpat",)))
    memory = build_memory(_frame(rows), _runs("ep1", "ep2"))
    assert [s.term for s in suggest(memory, SERIES, [])[0]] == ["Raghuveer"]
    # This title's own rejection list, too.
    assert suggest(memory, SERIES, [], rejected=["raghuveer"])[0] == []
    # Confirmed again later: suggested again.
    rows += _rows("ep3", SERIES, ["Ganpat"], days=2)
    memory = build_memory(_frame(rows), _runs("ep1", "ep2", "ep3"))
    assert {s.term for s in suggest(memory, SERIES, [])[0]} == {"Raghuveer", "Ganpat"}
    # A title never suggests to itself what only it confirmed.
    only = build_memory(_frame(_rows("ep1", SERIES, ["Solo"])), _runs("ep1"))
    assert suggest(only, SERIES, [], title="ep1")[0] == []


def test_two_spellings_of_one_name_give_one_suggestion_the_better_scored() -> None:
    rows = (_rows("ep1", SERIES, ["Akash"], days=0) + _rows("ep2", SERIES, ["Aakash"], days=5)
            + _rows("ep3", SERIES, ["Aakash"], days=6))
    memory = build_memory(_frame(rows), _runs("ep1", "ep2", "ep3"))
    assert [s.term for s in suggest(memory, SERIES, [])[0]] == ["Aakash"]


def test_near_misses_are_repaired_and_ordinary_words_are_not() -> None:
    names = ["Raghuveer", "Khandala", "Samir", "Sameer", "Sita", "Pooja", "Ravi Kumaar"]
    words = [" I", " met", " Ragu", " Veer,", " in", " Kandala.", " Samir", " and", " sameer",
             " sit", " a", " while", " with", " Puja", " and", " Ravi", " Kumar", " 42"]
    fixed, repairs = repair_words(words, names)
    assert "".join(fixed) == (" I met Raghuveer, in Khandala. Samir and Sameer sit a while "
                              "with Pooja and Ravi Kumaar 42")
    assert [(r["heard"], r["name"]) for r in repairs] == [
        ("Ragu Veer,", "Raghuveer"), ("Kandala.", "Khandala"), ("sameer", "Sameer"),
        ("Puja", "Pooja"), ("Ravi Kumar", "Ravi Kumaar")]
    # A word that is a listed name stays that name (Samir is not Sameer's near miss).
    assert repair_words([" Samir"], ["Sameer", "Samir"]) == ([" Samir"], [])
    assert repair_words([" the", " same", " here"], ["Sameer"])[1] == []


def test_repaired_segments_keep_word_times() -> None:
    words = (Word(1.0, 1.3, " Ragu"), Word(1.3, 1.8, " Veer"), Word(1.9, 2.2, " came."))
    seg = Segment(0, 1.0, 2.2, " Ragu Veer came.", words)
    [fixed], repairs = repair_segments([seg], ["Raghuveer"])
    assert fixed.text == "Raghuveer came."
    assert [(w.word, w.start, w.end) for w in fixed.words] == [(" Raghuveer", 1.0, 1.8),
                                                                (" came.", 1.9, 2.2)]
    assert repairs == [{"start": 1.0, "heard": "Ragu Veer", "name": "Raghuveer",
                        "score": 100.0}]
    untouched = Segment(1, 3.0, 4.0, "Nothing to see.")
    assert repair_segments([untouched], ["Raghuveer"]) == ([untouched], [])
