"""20 short titles dropped into the inbox at once, versus plain faster-whisper one after another.

    python benchmarks/bench_many_titles.py [--model base] [--titles 20]

Builds N titles from the English Asterisk prompts in ../shared/data (≈ 26 s each), then, in
one run of this script:
1. plain faster-whisper: one process, the model loaded once, the files transcribed one after
   another with the pipeline's options (beam 5, VAD, word timestamps, int8 on CPU);
2. the platform: a fresh CPW_HOME, `dagster-daemon run` (the inbox sensor, the run queue with
   CPW_MAX_CONCURRENT_RUNS runs at once, the one-slot asr pool), all files copied into the
   inbox at once; timed from the drop until the last run succeeded.
Prints audio-hours per wall-hour for both and the orchestration overhead per title.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))

from build_recordings import _prompts, join, write  # noqa: E402


def build_titles(folder: Path, count: int) -> list[Path]:
    ids = [row["id"] for row in _prompts() if row["audio_en"]]
    paths = []
    for i in range(count):
        samples, _ = join(ids[i::count], "en")
        path = folder / f"Prompts Episode {i + 1:02d}.wav"
        write(samples, path, "pcm_s16le")
        paths.append(path)
    return paths


def audio_seconds(paths: list[Path]) -> float:
    import wave

    total = 0.0
    for path in paths:
        with wave.open(str(path)) as w:
            total += w.getnframes() / w.getframerate()
    return total


def plain(paths: list[Path], model_name: str, env: dict[str, str]) -> float:
    code = (
        "import sys, time\n"
        "from faster_whisper import WhisperModel\n"
        "from cpw_resources.speech.models import ModelRegistry\n"
        "from cpw_resources.settings import Settings\n"
        "t = time.perf_counter()\n"
        f"model_dir = ModelRegistry.from_settings(Settings()).resolve({model_name!r})\n"
        "model = WhisperModel(str(model_dir), device='cpu',"
        " compute_type='int8', local_files_only=True)\n"
        "for path in sys.argv[1:]:\n"
        "    segments, _ = model.transcribe(path, beam_size=5, vad_filter=True,"
        " word_timestamps=True)\n"
        "    list(segments)\n"
        "print(time.perf_counter() - t)\n"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *map(str, paths)], env=env, check=True,
                   cwd=ROOT, capture_output=True)
    return time.perf_counter() - started


def platform(paths: list[Path], home: Path, env: dict[str, str], timeout: float) -> dict:
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    subprocess.run([str(BIN / "cpw"), "env"], env=env, check=True, capture_output=True)
    log = open(home / "daemon.log", "w")  # noqa: SIM115 - open for the daemon's lifetime
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        time.sleep(8)  # let the daemon load the code location before the drop
        inbox = home / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        dropped = time.perf_counter()
        for path in paths:
            shutil.copyfile(path, inbox / path.name)
        os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
        first_run = None
        with DagsterInstance.get() as instance:
            while time.perf_counter() - dropped < timeout:
                runs = instance.get_runs(RunsFilter(job_name="subtitle_job"))
                if runs and first_run is None:
                    first_run = time.perf_counter() - dropped
                done = [r for r in runs if r.status == DagsterRunStatus.SUCCESS]
                failed = [r for r in runs if r.status == DagsterRunStatus.FAILURE]
                if failed:
                    sys.exit(f"{len(failed)} run(s) failed; see {home / 'daemon.log'}")
                if len(done) == len(paths):
                    break
                time.sleep(1)
            else:
                sys.exit(f"timed out with {len(done)} of {len(paths)} runs done")
            total = time.perf_counter() - dropped
            stats = [instance.get_run_stats(r.run_id) for r in done]
        inside = sum(s.end_time - s.start_time for s in stats)
        return {"total": total, "first_run": first_run, "inside": inside}
    finally:
        os.killpg(daemon.pid, signal.SIGKILL)  # dagster's daemon ignores SIGINT when scripted
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="base")
    parser.add_argument("--titles", type=int, default=20)
    parser.add_argument("--concurrent-runs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cpw-many-") as tmp:
        tmp = Path(tmp)
        (tmp / "media").mkdir()
        paths = build_titles(tmp / "media", args.titles)
        seconds = audio_seconds(paths)
        home = tmp / "home"
        env = {**os.environ, "CPW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
               "CPW_WHISPER_MODEL": args.model,
               "CPW_MAX_CONCURRENT_RUNS": str(args.concurrent_runs),
               "CPW_INBOX_MAX_NEW_PER_TICK": str(args.titles)}
        plain_s = plain(paths, args.model, env)
        result = platform(paths, home, env, args.timeout)

    hours = seconds / 3600
    print(f"{args.titles} titles, {seconds:.0f} s of audio ({seconds / args.titles:.1f} s each), "
          f"model {args.model}, {os.cpu_count()} cores, {args.concurrent_runs} runs at once, "
          f"asr pool 1")
    print(f"plain faster-whisper, one after another : {plain_s:7.1f} s  "
          f"{hours / (plain_s / 3600):5.2f} audio-hours per wall-hour")
    print(f"inbox → sensor → queued runs            : {result['total']:7.1f} s  "
          f"{hours / (result['total'] / 3600):5.2f} audio-hours per wall-hour")
    print(f"  first run started {result['first_run']:.1f} s after the drop "
          f"(two sensor evaluations: the file must be stable)")
    print(f"  ratio platform/plain {result['total'] / plain_s:.2f}; orchestration overhead "
          f"{(result['total'] - plain_s) / args.titles:.1f} s per title")
    print(f"  sum of time inside runs {result['inside']:.1f} s "
          f"({result['inside'] / args.titles:.1f} s per run)")


if __name__ == "__main__":
    main()
