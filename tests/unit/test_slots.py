"""Machine-wide slots (who holds them, bounded cheap waits) and the temporary files that killed
writers leave behind."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cpw_resources.atomic import remove_dead_temps, write_with
from cpw_resources.speech.slots import SlotTimeoutError, holders, machine_slot

HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from cpw_resources.speech.slots import machine_slot\n"
    "with machine_slot(Path(sys.argv[1]), 'asr', int(sys.argv[2]), label='run r1 (t/x)')"
    " as waited:\n"
    "    start = time.time(); print('in', flush=True); time.sleep(float(sys.argv[3]))\n"
    "    print(start, time.time(), waited, flush=True)\n"
)


def _holders(folder: Path, size: int, n: int, hold: float) -> list[tuple[float, float]]:
    procs = [subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(size), str(hold)],
                              stdout=subprocess.PIPE, text=True) for _ in range(n)]
    spans = []
    for proc in procs:
        lines = proc.communicate()[0].split("\n")
        start, end, _ = map(float, lines[1].split())
        spans.append((start, end))
    return sorted(spans)


def test_one_slot_serialises_processes(tmp_path: Path) -> None:
    spans = _holders(tmp_path, 1, 3, 0.3)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end - 0.01


def test_two_slots_let_two_in(tmp_path: Path) -> None:
    spans = _holders(tmp_path, 2, 2, 0.6)
    assert spans[1][0] < spans[0][1]  # they overlapped


def test_a_killed_holder_frees_its_slot(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "1", "60"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "in"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    started = time.monotonic()
    with machine_slot(tmp_path, "asr", 1) as waited:
        assert waited < 1
    assert time.monotonic() - started < 1


def _live_holder(folder: Path, size: int = 1) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(size), "60"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "in"
    return holder


def test_a_bounded_wait_names_the_holder_and_costs_no_cpu(tmp_path: Path) -> None:
    holder = _live_holder(tmp_path)
    try:
        seen = []
        cpu, started = time.process_time(), time.monotonic()
        with pytest.raises(SlotTimeoutError) as failed, \
                machine_slot(tmp_path, "asr", 1, timeout_s=1.5, hint="Do X.", on_wait=seen.append):
            pytest.fail("a held slot was entered")
        elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    finally:
        holder.kill()
        holder.wait()
    message = str(failed.value)
    assert "\n" not in message
    assert f"run r1 (t/x) (pid {holder.pid}, for " in message
    assert re.match(r"no asr slot came free in [12] s \(1 on this machine, under ", message)
    assert message.endswith("Do X.")
    assert [h.pid for h in seen[0]] == [holder.pid]
    assert 1.5 <= elapsed < 3
    assert cpu < 0.2  # sleeps between tries: no busy loop


def test_every_slot_holder_is_named_and_a_released_slot_is_blank(tmp_path: Path) -> None:
    first, second = _live_holder(tmp_path, 2), _live_holder(tmp_path, 2)
    try:
        assert sorted(h.pid for h in holders(tmp_path, "asr", 2)) == sorted(
            [first.pid, second.pid])
    finally:
        for proc in (first, second):
            proc.kill()
            proc.wait()
    with machine_slot(tmp_path, "asr", 2, label="me"):
        assert [h.label for h in holders(tmp_path, "asr", 2)] == ["me"]
    assert holders(tmp_path, "asr", 2) == []
    assert (tmp_path / "asr.0.lock").read_text() == ""


def test_a_killed_holders_stale_note_does_not_block_or_confuse(tmp_path: Path) -> None:
    holder = _live_holder(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert holders(tmp_path, "asr", 1) == []  # the note names a pid that is gone
    with machine_slot(tmp_path, "asr", 1, timeout_s=1) as waited:
        assert waited < 0.5


def test_garbage_in_a_slot_file_is_ignored(tmp_path: Path) -> None:
    for text in ("", "{", "[1, 2]", '{"pid": "x"}', "\x00" * 10):
        (tmp_path / "asr.0.lock").write_text(text)
        assert holders(tmp_path, "asr", 1) == []
        with machine_slot(tmp_path, "asr", 1, timeout_s=1) as waited:
            assert waited < 0.5


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_temporary_files_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead, live = _dead_pid(), os.getpid()
    (tmp_path / ".cache").mkdir()
    stale = [tmp_path / f".audio.wav.{dead}.ab12cd34.tmp",
             tmp_path / ".cache" / f".transcript.json.{dead}.x_9k2m1q.tmp",
             tmp_path / f".KEY.en.vtt.{dead}.zz.tmp"]
    reused = tmp_path / f".translation.json.{live}.q1w2e3r4.tmp"  # written before we started
    kept = [tmp_path / f".audio.wav.{live}.ab12cd34.tmp",  # a write in progress
            tmp_path / ".audio.wav.ab12cd34.tmp",  # no pid: whose it is is unknown
            tmp_path / f"audio.wav.{dead}.ab12cd34.tmp",  # not a temporary name
            tmp_path / "transcript.json"]
    for path in [*stale, reused, *kept]:
        path.write_text("x")
    long_ago = time.time() - 10 * 86400
    os.utime(reused, (long_ago, long_ago))
    assert sorted(remove_dead_temps(tmp_path)) == sorted([*stale, reused])
    assert all(p.exists() for p in kept)
    assert remove_dead_temps(tmp_path / "missing") == []


def test_an_atomic_write_names_its_temporary_file_after_its_writer(tmp_path: Path) -> None:
    seen = []

    def spy(tmp: Path) -> None:
        seen.append(tmp.name)
        tmp.write_text("x")

    write_with(tmp_path / "a.json", spy)
    assert seen[0].startswith(f".a.json.{os.getpid()}.") and seen[0].endswith(".tmp")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
