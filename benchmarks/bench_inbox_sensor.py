"""Time the inbox sensor with 10,000 files in the inbox (run by hand; prints the figures).

    python benchmarks/bench_inbox_sensor.py [--files 10000] [--new 200] [--dir DIR]

Builds a temporary inbox of small distinct WAV files in sub-folders of 100, then times, each
through the real sensor (``build_sensor_context`` on an ephemeral Dagster instance):

1. the first sight of all files, none registered (everything goes into the cursor);
2. the steady state: all but ``--new`` registered (directly, with ``register_many``), the
   rest hidden, nothing to do (best and median of 5);
3. ``--new`` new files dropped: the evaluation that observes them and the one that takes
   them (hash, probe, register, events, run requests);
4. rebuilding the registry index from the ``title.json`` files.

Dagster cancels a sensor evaluation after 60 s by default; the sensor stops taking new files
after 20 s, so the figures that matter are (2) and (3) against those limits.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.media_fixtures import wav_bytes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        run(Path(tmp), args.files, args.new)


def run(tmp: Path, n_files: int, n_new: int) -> None:
    inbox, home = tmp / "inbox", tmp / "cpw"
    os.environ["CPW_INBOX"] = str(inbox)
    os.environ["CPW_CONFIG"] = str(tmp / "absent.yaml")
    os.environ.pop("CPW_INBOX_MAX_NEW_PER_TICK", None)

    from dagster import build_sensor_context, instance_for_test

    from cpw_resources.orchestration.partitions import titles
    from cpw_resources.orchestration.resources import resources_for
    from cpw_resources.settings import Settings
    from cpw_resources.store.titles import TitleRegistry
    from cpw_sensors.inbox import Cursor, inbox_sensor

    files = []
    for i in range(n_files):
        folder = inbox / f"show {i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"episode {i:05d}.wav"
        path.write_bytes(wav_bytes(i))
        files.append(path)
    print(f"{n_files} files of {files[0].stat().st_size} bytes in {n_files // 100 + 1} folders "
          f"under {inbox}")

    with instance_for_test() as instance:
        cursor: str | None = None

        def evaluate() -> tuple[float, object]:
            nonlocal cursor
            with build_sensor_context(cursor=cursor, instance=instance,
                                      resources=resources_for(Settings(home=home))) as context:
                started = time.perf_counter()
                result = inbox_sensor(context)
                seconds = time.perf_counter() - started
            for request in result.dynamic_partitions_requests or []:
                instance.add_dynamic_partitions(titles.name, list(request.partition_keys))
            cursor = result.cursor
            return seconds, result

        seconds, _ = evaluate()
        print(f"first sight of {n_files} unregistered files: {seconds:.2f} s "
              f"(cursor {len(cursor or '') / 1024:.0f} KiB, "
              f"{len(Cursor.parse(cursor).pending)} pending)")

        # Register all but n_new directly, and hide the n_new for later.
        new, old = files[:n_new], files[n_new:]
        hidden = []
        for path in new:
            moved = path.with_name("." + path.name)
            path.rename(moved)
            hidden.append((moved, path))
        registry = TitleRegistry(home / "titles")
        started = time.perf_counter()
        keys = [t.key for t in registry.register_many(old).values()]
        print(f"register_many of {len(old)} files (setup): {time.perf_counter() - started:.2f} s")
        instance.add_dynamic_partitions(titles.name, keys)
        cursor = None

        steady = []
        for _ in range(5):
            seconds, result = evaluate()
            assert not result.run_requests
            steady.append(seconds)
        print(f"steady state, {len(old)} registered files: best {min(steady):.3f} s, "
              f"median {statistics.median(steady):.3f} s")

        for moved, path in hidden:
            moved.rename(path)
            os.utime(path)
        observe, result = evaluate()
        assert not result.run_requests
        take, result = evaluate()
        print(f"{n_new} new files among {n_files}: observe {observe:.3f} s, "
              f"take {take:.2f} s ({len(result.run_requests)} run requests, "
              f"{sum(len(r.partition_keys) for r in result.dynamic_partitions_requests)} "
              f"partitions added)")
        seconds, result = evaluate()
        assert not result.run_requests
        print(f"steady state again, {n_files} registered: {seconds:.3f} s")

        registry.index_path.unlink()
        started = time.perf_counter()
        registry.index()
        print(f"index rebuild from {n_files} title.json files: "
              f"{time.perf_counter() - started:.2f} s "
              f"(index {registry.index_path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
