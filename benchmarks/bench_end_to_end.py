"""End to end through `dagster job execute` versus plain faster-whisper, side by side.

    python benchmarks/bench_end_to_end.py [--model base] [--repeat 2] [--audio FILE]

Default audio: every English Asterisk prompt joined into one ≈ 5-minute recording (built from
../shared/data by build_recordings.py). Both sides run in fresh processes, with the same
model, compute type, beam size, VAD and word timestamps, and both include model loading and
audio decoding. Each pipeline round uses a fresh CPW_HOME set up as the README says
(`cpw env` once, not timed), then times `cpw register` + `dagster job execute`. Runs
alternate; the best of each is compared. Target: pipeline wall time
≤ 1.10 × plain faster-whisper (English speech, so `translation` passes through).
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
ROOT = HERE.parent
BIN = Path(sys.executable).parent

PLAIN = """
import sys, time
from faster_whisper import WhisperModel
from cpw_resources.speech.models import ModelRegistry
from cpw_resources.settings import Settings
path, model_name, beam = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = WhisperModel(str(ModelRegistry.from_settings(Settings()).resolve(model_name)), device="cpu",
                     compute_type="int8", local_files_only=True)
segments, info = model.transcribe(path, beam_size=beam, vad_filter=True, word_timestamps=True)
n = sum(1 for _ in segments)
print(n)
"""


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall, done.stdout


def recording(audio: Path | None = None) -> Path:
    """``audio``, else the ≈ 5-minute English Asterisk recording, built on first use."""
    audio = audio or HERE / "out" / "asterisk_en.wav"
    if not audio.exists():
        subprocess.run([sys.executable, str(HERE / "build_recordings.py"), "long", str(audio),
                        "--lang", "en"], check=True)
    return audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="base")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--audio", type=Path)
    args = parser.parse_args()

    audio = recording(args.audio)
    import wave

    with wave.open(str(audio)) as w:
        audio_seconds = w.getnframes() / w.getframerate()

    plain, pipeline = [], []
    with tempfile.TemporaryDirectory(prefix="cpw-bench-") as tmp:
        base_env = {**os.environ, "CPW_WHISPER_MODEL": args.model,
                    "CPW_BEAM_SIZE": str(args.beam), "CPW_COMPUTE_TYPE": "int8",
                    "CPW_DEVICE": "cpu", "CPW_HOME": str(Path(tmp) / "warm")}
        # Join base's weights once so neither side pays for it.
        run([sys.executable, "-c", PLAIN, str(audio), args.model, str(args.beam)], base_env)
        for i in range(args.repeat):
            wall, _ = run([sys.executable, "-c", PLAIN, str(audio), args.model, str(args.beam)],
                          base_env)
            plain.append(wall)
            home = Path(tmp) / f"run{i}"
            env = {**base_env, "CPW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
                   "CPW_WHISPER_MODELS_DIR": str(Path(tmp) / "warm" / "models")}
            run([str(BIN / "cpw"), "env"], env)  # the README's one-time `eval "$(cpw env)"`
            started = time.perf_counter()
            _, key = run([str(BIN / "cpw"), "register", str(audio)], env)
            run([str(BIN / "dagster"), "job", "execute", "-m", "cpw_assets.definitions",
                 "-j", "subtitle_job", "--tags",
                 json.dumps({"dagster/partition": key.strip()})], env)
            pipeline.append(time.perf_counter() - started)
            print(f"round {i + 1}: plain {plain[-1]:.1f} s, pipeline {pipeline[-1]:.1f} s",
                  flush=True)

    best_plain, best_pipeline = min(plain), min(pipeline)
    print(f"audio: {audio.name}, {audio_seconds:.1f} s; model {args.model}, beam {args.beam}, "
          f"int8 on CPU, {os.cpu_count()} cores")
    print(f"plain faster-whisper : {best_plain:7.1f} s  "
          f"({audio_seconds / best_plain:.2f} audio s per wall s)")
    print(f"dagster job execute  : {best_pipeline:7.1f} s  "
          f"({audio_seconds / best_pipeline:.2f} audio s per wall s)")
    ratio = best_pipeline / best_plain
    verdict = "met" if ratio <= 1.10 else "NOT met"
    print(f"ratio pipeline/plain : {ratio:.3f}  (target ≤ 1.10: {verdict})")


if __name__ == "__main__":
    main()
