"""What the stage monitor costs: one title end to end with its sampling thread on and off.

    python benchmarks/bench_monitor.py [--model base] [--repeat 3] [--audio FILE]

Default audio: the ≈ 5-minute English Asterisk recording of bench_end_to_end.py. Each run is
`cpw run` on a fresh home (no cache), in a fresh process, with ``CPW_STAGE_MONITOR`` true or
false; the two alternate so drift on the machine falls on both. Prints every run, the best and
the median of each side and their ratio. Target: the monitor adds ≤ 2 % to a title's wall time.
It also prints the per-stage rows the monitor wrote (CPU %, own peak RSS, I/O) for the last
run with it on.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from bench_end_to_end import recording  # noqa: E402  (benchmarks/ is the script's folder)


def _run(audio: Path, home: Path, model: str, monitor: bool) -> float:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CPW_")
              and k != "DAGSTER_HOME"},
           "CPW_HOME": str(home), "CPW_WHISPER_MODEL": model,
           "CPW_STAGE_MONITOR": "true" if monitor else "false"}
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "cpw"), "run", str(audio)], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"cpw run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="base")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--audio", type=Path)
    args = parser.parse_args()
    audio = recording(args.audio)

    walls: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="cpw-monitor-") as tmp:
        for k in range(args.repeat):
            for monitor in (True, False) if k % 2 == 0 else (False, True):
                home = Path(tmp) / f"{'on' if monitor else 'off'}{k}"
                wall = _run(audio, home, args.model, monitor)
                walls[monitor].append(wall)
                print(f"run {k + 1} monitor {'on ' if monitor else 'off'}: {wall:7.2f} s",
                      flush=True)
        from cpw_resources.store.events import EventStore

        last_on = Path(tmp) / f"on{args.repeat - 1}"
        rows = EventStore(last_on / "events", last_on / "cpw.duckdb").read("stage_metrics")
        print("\nstage metrics of the last monitored run:")
        print(rows.select("asset", "wall_seconds", "cpu_percent_mean", "cpu_percent_max",
                          "peak_rss_mb", "read_bytes", "write_bytes"))

    on, off = walls[True], walls[False]
    print(f"\nbest   on {min(on):.2f} s, off {min(off):.2f} s: ratio {min(on) / min(off):.3f}")
    print(f"median on {statistics.median(on):.2f} s, off {statistics.median(off):.2f} s: "
          f"ratio {statistics.median(on) / statistics.median(off):.3f} (target ≤ 1.02)")


if __name__ == "__main__":
    main()
