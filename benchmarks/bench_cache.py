"""A full re-run of an already processed title versus its first run, side by side.

    python benchmarks/bench_cache.py [--model base] [--audio FILE]

Runs `cpw register` + `dagster job execute` twice on the same title in a fresh CPW_HOME and
prints both wall times (whole command, including Python and Dagster start-up) and the time
inside the run (Dagster's run start to end). Target: re-run ≥ 10× faster than the first run.
Default audio: the ≈ 9-minute English recording built by build_recordings.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="base")
    parser.add_argument("--audio", type=Path, default=HERE / "out" / "asterisk_en.wav")
    args = parser.parse_args()
    if not args.audio.exists():
        subprocess.run([sys.executable, str(HERE / "build_recordings.py"), "long",
                        str(args.audio), "--lang", "en"], check=True)

    with tempfile.TemporaryDirectory(prefix="cpw-cache-bench-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "CPW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
               "CPW_WHISPER_MODEL": args.model}
        key = subprocess.run([str(BIN / "cpw"), "register", str(args.audio)], env=env,
                             check=True, capture_output=True, text=True).stdout.strip()
        walls = []
        for _ in range(2):
            started = time.perf_counter()
            subprocess.run(
                [str(BIN / "dagster"), "job", "execute", "-m", "cpw_assets.definitions", "-j",
                 "subtitle_job", "--tags", json.dumps({"dagster/partition": key})],
                env=env, check=True, capture_output=True)
            walls.append(time.perf_counter() - started)
        os.environ["DAGSTER_HOME"] = str(home / "dagster")
        from dagster import DagsterInstance

        with DagsterInstance.get() as instance:
            stats = [instance.get_run_stats(r.run_id) for r in instance.get_runs()][::-1]
        inside = [s.end_time - s.start_time for s in stats]

    print(f"title {key} ({args.audio.name}), model {args.model}, {os.cpu_count()} cores")
    print(f"first run : {walls[0]:7.2f} s command, {inside[0]:7.2f} s inside the run")
    print(f"re-run    : {walls[1]:7.2f} s command, {inside[1]:7.2f} s inside the run")
    print(f"speed-up  : {walls[0] / walls[1]:6.1f}× command, {inside[0] / inside[1]:6.1f}× "
          "inside the run (target ≥ 10×)")


if __name__ == "__main__":
    main()
