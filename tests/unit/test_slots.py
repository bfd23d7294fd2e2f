import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cpw_resources.speech.slots import machine_slot

HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from cpw_resources.speech.slots import machine_slot\n"
    "with machine_slot(Path(sys.argv[1]), 'asr', int(sys.argv[2])) as waited:\n"
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
