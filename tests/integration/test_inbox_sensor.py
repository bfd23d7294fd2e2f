"""The inbox sensor on real temporary folders, a real Dagster instance and the real registry.

Each evaluation builds a fresh sensor context from the previous result's cursor, as the daemon
does after a restart, and applies the partition additions the daemon would apply.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from dagster import AddDynamicPartitionsRequest, DagsterInstance, SensorResult, build_sensor_context

from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import resources_for
from cpw_resources.settings import Settings
from cpw_resources.store.events import EventStore
from cpw_resources.store.titles import TitleRegistry
from cpw_sensors.inbox import Cursor, evaluate_inbox, inbox_sensor
from tests.media_fixtures import wav_bytes


def bump_mtime(path: Path, seconds: float = 10.0) -> None:
    """A new mtime for sure (file timestamps are coarser than a fast test's rewrites)."""
    ns = path.stat().st_mtime_ns + int(seconds * 1e9)
    os.utime(path, ns=(ns, ns))


@dataclass
class Inbox:
    folder: Path
    home: Path
    instance: DagsterInstance
    cursor: str | None = None
    last: SensorResult | None = None

    def evaluate(self) -> SensorResult:
        with build_sensor_context(
            cursor=self.cursor, instance=self.instance,
            resources=resources_for(Settings(home=self.home)),
        ) as context:
            result = inbox_sensor(context)
        assert isinstance(result, SensorResult)
        for request in result.dynamic_partitions_requests or []:
            assert isinstance(request, AddDynamicPartitionsRequest)
            assert request.partitions_def_name == titles.name
            self.instance.add_dynamic_partitions(titles.name, list(request.partition_keys))
        self.cursor, self.last = result.cursor, result
        return result

    def settle(self) -> SensorResult:
        """Two evaluations with nothing changing in between: files are taken on the second."""
        self.evaluate()
        return self.evaluate()

    @property
    def runs(self) -> list:
        return list(self.last.run_requests or []) if self.last else []

    @property
    def added(self) -> list[str]:
        return [k for r in (self.last.dynamic_partitions_requests or [])
                for k in r.partition_keys]

    @property
    def pending(self) -> dict[str, list[int]]:
        return Cursor.parse(self.cursor).pending

    def events(self, action: str | None = None) -> list[dict]:
        rows = EventStore(self.home / "events", self.home / "cpw.duckdb").read("inbox_events")
        rows = rows.sort("ts").to_dicts()
        return [r for r in rows if action is None or r["action"] == action]


@pytest.fixture
def inbox(tmp_path: Path, home: Path, instance: DagsterInstance, monkeypatch) -> Inbox:
    folder = tmp_path / "inbox"
    folder.mkdir()
    monkeypatch.setenv("CPW_INBOX", str(folder))
    return Inbox(folder, home, instance)


def test_partial_copy_is_taken_only_once_it_has_settled(inbox: Inbox) -> None:
    data = wav_bytes(1, seconds=2.0)
    film = inbox.folder / "Dil Chahta Hai (2001).wav"
    film.write_bytes(data[: len(data) // 2])
    (inbox.folder / "Next Film.mkv.part").write_bytes(b"\x1a\x45\xdf\xa3" + b"0" * 100)
    placeholder = inbox.folder / "Next Film.mkv"  # a browser's empty placeholder
    placeholder.write_bytes(b"")

    assert inbox.evaluate().run_requests == [] and inbox.added == []
    assert set(inbox.pending) == {"Dil Chahta Hai (2001).wav", "Next Film.mkv"}

    with open(film, "ab") as out:  # the copy goes on
        out.write(data[len(data) // 2:])
    bump_mtime(film)
    assert inbox.evaluate().run_requests == []
    assert not (inbox.home / "titles" / "dil_chahta_hai_2001").exists()

    inbox.evaluate()  # unchanged since the last evaluation: taken
    [run] = inbox.runs
    assert run.partition_key == "dil_chahta_hai_2001"
    cid = TitleRegistry(inbox.home / "titles").get("dil_chahta_hai_2001").content_id
    assert run.run_key == f"dil_chahta_hai_2001:{cid}:-"
    assert inbox.added == ["dil_chahta_hai_2001"]
    # The placeholder waits for its download and is not rejected; the .part is never touched.
    assert set(inbox.pending) == {"Next Film.mkv"}
    assert placeholder.exists() and not (inbox.folder / "rejected").exists()

    assert inbox.evaluate().run_requests == [] and inbox.added == []
    [event] = inbox.events()
    assert event["action"] == "registered" and event["title"] == "dil_chahta_hai_2001"
    assert event["run_key"] == run.run_key and event["asset"] == "inbox"


def test_redropped_or_copied_content_starts_nothing(inbox: Inbox) -> None:
    film = inbox.folder / "Sholay.wav"
    film.write_bytes(wav_bytes(2))
    inbox.settle()
    [run] = inbox.runs

    film.unlink()
    assert inbox.evaluate().run_requests == []
    film.write_bytes(wav_bytes(2))  # the same film dropped again: new mtime, same content
    bump_mtime(film)
    assert inbox.settle().run_requests == []
    assert inbox.events("unchanged")[0]["title"] == run.partition_key

    copy = inbox.folder / "season 1" / "Sholay (copy).wav"
    copy.parent.mkdir()
    copy.write_bytes(wav_bytes(2))
    assert inbox.settle().run_requests == [] and inbox.added == []
    [dup] = inbox.events("duplicate")
    assert dup["title"] == run.partition_key and dup["path"] == str(copy)
    assert [t.key for t in TitleRegistry(inbox.home / "titles").all()] == [run.partition_key]
    # Later evaluations skip both files without hashing: nothing pending, nothing new.
    assert inbox.evaluate().run_requests == [] and inbox.pending == {}
    assert len(inbox.events()) == 3


def test_changed_file_under_the_same_name_runs_again_with_the_same_key(inbox: Inbox) -> None:
    film = inbox.folder / "Lagaan.wav"
    film.write_bytes(wav_bytes(3))
    inbox.settle()
    [first] = inbox.runs

    film.write_bytes(wav_bytes(4, seconds=0.7))  # a better copy replaces the old one
    bump_mtime(film)
    assert inbox.evaluate().run_requests == []
    inbox.evaluate()
    [second] = inbox.runs
    assert second.partition_key == first.partition_key == "lagaan"
    assert second.run_key != first.run_key
    assert inbox.added == []  # the partition exists already
    assert inbox.events("changed")[0]["message"].startswith("content changed")


def test_sidecars_are_taken_with_their_media_and_rerun_when_edited(inbox: Inbox) -> None:
    film = inbox.folder / "Swades.wav"
    sidecar = inbox.folder / "Swades.json"
    film.write_bytes(wav_bytes(5))
    sidecar.write_text('{"language": "hi"', encoding="utf-8")
    inbox.evaluate()
    sidecar.write_text('{"language": "hi", "characters": ["Mohan"]}', encoding="utf-8")
    bump_mtime(sidecar)
    assert inbox.evaluate().run_requests == []  # the media waits for its sidecar
    inbox.evaluate()
    [first] = inbox.runs
    assert first.partition_key == "swades" and not first.run_key.endswith(":-")

    bump_mtime(sidecar)  # touched, same content: nothing to do
    assert inbox.settle().run_requests == []
    (inbox.folder / "Swades.en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nHi\n")
    assert inbox.settle().run_requests != []
    [second] = inbox.runs
    sidecar.write_text('{"language": "hi", "characters": ["Mohan", "Gita"]}', encoding="utf-8")
    bump_mtime(sidecar)
    assert inbox.evaluate().run_requests == []
    inbox.evaluate()
    [third] = inbox.runs
    assert {first.partition_key, second.partition_key, third.partition_key} == {"swades"}
    assert len({first.run_key, second.run_key, third.run_key}) == 3
    assert inbox.evaluate().run_requests == []


def test_unusable_files_are_rejected_and_media_is_recognised_by_content(inbox: Inbox) -> None:
    text = inbox.folder / "Film.mkv"
    text.write_text("Shopping list\n- milk\n- rice\n" * 40, encoding="utf-8")
    (inbox.folder / "Film.json").write_text('{"title": "Film"}', encoding="utf-8")
    noise = inbox.folder / "sub" / "x.mp4"
    noise.parent.mkdir()
    noise.write_bytes(np.random.default_rng(1).bytes(64 * 1024))
    clip = inbox.folder / "clip.bin"
    clip.write_bytes(wav_bytes(6))

    inbox.settle()
    [run] = inbox.runs
    assert run.partition_key == "clip"
    rejected = inbox.folder / "rejected"
    assert not text.exists() and not noise.exists()
    assert (rejected / "Film.mkv").read_bytes().startswith(b"Shopping list")
    assert (rejected / "Film.json").exists() and not (inbox.folder / "Film.json").exists()
    note = (rejected / "Film.error.txt").read_text()
    assert "NotMediaError" in note and "not an audio or video file" in note and str(text) in note
    assert "NotMediaError" in (rejected / "sub" / "x.error.txt").read_text()
    assert (rejected / "sub" / "x.mp4").exists()

    store = EventStore(inbox.home / "events", inbox.home / "cpw.duckdb")
    errors = store.read("input_errors").sort("path").to_dicts()
    assert [(e["path"], e["error_class"], e["asset"]) for e in errors] == [
        (str(text), "NotMediaError", "inbox"), (str(noise), "NotMediaError", "inbox")]
    assert {e["path"] for e in inbox.events("rejected")} == {str(text), str(noise)}

    # The same mistake again: kept beside the first, nothing overwritten.
    text.write_text("still not a film\n", encoding="utf-8")
    assert inbox.settle().run_requests == []
    assert (rejected / "Film (2).mkv").read_text() == "still not a film\n"
    assert "NotMediaError" in (rejected / "Film (2).error.txt").read_text()
    assert inbox.pending == {} and inbox.evaluate().run_requests == []


def test_a_garbled_cursor_only_delays(inbox: Inbox) -> None:
    (inbox.folder / "a.wav").write_bytes(wav_bytes(7))
    inbox.evaluate()
    inbox.cursor = "{not json"
    assert inbox.evaluate().run_requests == []
    assert json.loads(inbox.cursor)["pending"] == {"a.wav": [
        (inbox.folder / "a.wav").stat().st_size, (inbox.folder / "a.wav").stat().st_mtime_ns]}
    assert len(inbox.evaluate().run_requests) == 1


def test_thousand_files(inbox: Inbox, monkeypatch) -> None:
    monkeypatch.setenv("CPW_INBOX_MAX_NEW_PER_TICK", "1000")
    for i in range(1000):
        folder = inbox.folder / f"season {i // 100:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"episode {i:04d}.wav").write_bytes(wav_bytes(i, seconds=0.5))

    started = time.perf_counter()
    assert inbox.evaluate().run_requests == []
    first = time.perf_counter() - started
    assert len(inbox.pending) == 1000

    started = time.perf_counter()
    inbox.evaluate()
    second = time.perf_counter() - started
    assert len(inbox.runs) == 1000 and len(set(inbox.added)) == 1000
    assert len({r.run_key for r in inbox.runs}) == 1000 and inbox.pending == {}

    started = time.perf_counter()
    assert inbox.evaluate().run_requests == []
    third = time.perf_counter() - started
    print(f"\n1,000 files: observe {first:.2f} s, take all {second:.2f} s, "
          f"steady state {third:.2f} s")
    assert second < 45, "one evaluation must stay well inside Dagster's 60 s sensor limit"
    assert third < 5


def test_budget_leaves_the_rest_for_the_next_tick(inbox: Inbox, monkeypatch) -> None:
    monkeypatch.setenv("CPW_INBOX_MAX_NEW_PER_TICK", "3")
    for i in range(5):
        (inbox.folder / f"f{i}.wav").write_bytes(wav_bytes(100 + i))
    inbox.settle()
    assert len(inbox.runs) == 3 and len(inbox.pending) == 2
    inbox.evaluate()  # the deferred ones kept their observation: taken at once
    assert len(inbox.runs) == 2 and inbox.pending == {}


def test_time_budget_defers_but_always_makes_progress(inbox: Inbox) -> None:
    for i in range(4):
        (inbox.folder / f"g{i}.wav").write_bytes(wav_bytes(200 + i))
    (inbox.folder / ".DS_Store").write_bytes(b"\0" * 10)  # hidden: never looked at
    registry = TitleRegistry(inbox.home / "titles")
    now = [0.0]

    def clock() -> float:  # every look at the clock costs a second
        now[0] += 1.0
        return now[0]

    observed = evaluate_inbox(inbox.folder, registry, Cursor(), max_new=100, time_budget_s=0.0)
    assert set(observed.cursor.pending) == {f"g{i}.wav" for i in range(4)}
    tick = evaluate_inbox(inbox.folder, registry, observed.cursor, max_new=100,
                          time_budget_s=0.0, clock=clock)
    assert len(tick.runs) == 1 and tick.counts["deferred"] == 3
    tick = evaluate_inbox(inbox.folder, registry, tick.cursor, max_new=100,
                          time_budget_s=1.5, clock=clock)
    assert len(tick.runs) == 2 and len(tick.cursor.pending) == 1


def test_names_too_long_for_their_sidecars_are_rejected_with_a_note_and_an_event(
        inbox: Inbox) -> None:
    long_stem = "L" * 250  # NAME.glossary.tsv and NAME.error.txt cannot exist beside it
    film = inbox.folder / f"{long_stem}.wav"
    film.write_bytes(wav_bytes(300))  # good audio: the name alone is the problem
    hindi = inbox.folder / ("दिल" * 27 + ".wav")  # 81 letters, 247 bytes
    hindi.write_bytes(wav_bytes(301))
    edge = inbox.folder / ("E" * 242 + ".mkv")  # fits, but not media; its note's temp name
    edge.write_text("not a film\n")  # (.NAME.error.txt.XXXXXXXX.tmp) is over 255 bytes

    assert inbox.settle().run_requests == [] and inbox.added == []
    rejected = inbox.folder / "rejected"
    assert not film.exists() and (rejected / film.name).read_bytes() == wav_bytes(300)
    assert (rejected / hindi.name).exists()
    notes = {p.name: p.read_text() for p in rejected.glob("*.error.txt")}
    assert len(notes) == 3 and all(len(os.fsencode(n)) <= 255 for n in notes)
    long_note = next(text for name, text in notes.items() if name.startswith("L" * 200))
    assert "file name too long" in long_note and str(film) in long_note
    assert "E" * 242 + ".error.txt" in notes  # fits exactly: not shortened
    assert "NotMediaError" in notes["E" * 242 + ".error.txt"]

    events = inbox.events("rejected")
    assert {e["path"] for e in events} == {str(film), str(hindi), str(edge)}
    assert all("rename the file to at most 246 bytes" in e["message"]
               for e in events if e["path"] != str(edge))
    store = EventStore(inbox.home / "events", inbox.home / "cpw.duckdb")
    assert set(store.read("input_errors")["path"]) == {str(film), str(hindi), str(edge)}

    film.write_bytes(wav_bytes(300))  # dropped again: ' (2)' would not fit, so cut short
    assert inbox.settle().run_requests == []
    assert len(list(rejected.glob("*.wav"))) == 3 and len(list(rejected.glob("*.txt"))) == 4
    assert all(len(os.fsencode(p.name)) <= 255 for p in rejected.iterdir())
    assert not [p for p in rejected.iterdir() if p.name.endswith(".tmp")]
    assert len(inbox.events("rejected")) == 4 and inbox.pending == {}


def test_a_language_no_backend_can_make_queues_nothing(inbox: Inbox, monkeypatch) -> None:
    """German with only Whisper's translate task configured: the sensor refuses before any
    run, saying which backend could; the file waits in the inbox until the setting is fixed."""
    (inbox.folder / "film.wav").write_bytes(wav_bytes(1))
    monkeypatch.setenv("CPW_TARGET_LANGUAGES", "en,de")
    result = inbox.settle()
    assert not inbox.runs
    assert "CPW_TRANSLATION_BACKEND=llm" in result.skip_reason.skip_message
    assert (inbox.folder / "film.wav").exists()
    monkeypatch.delenv("CPW_TARGET_LANGUAGES")
    inbox.settle()
    assert len(inbox.runs) == 1
