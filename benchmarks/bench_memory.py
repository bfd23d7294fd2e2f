"""Peak memory of the `audio` and `transcript` stages for a 10-minute and a 3-hour title.

    python benchmarks/bench_memory.py [--model tiny.en] [--hours 3] [--keep DIR]

What it builds (from the English Asterisk prompts in ../shared/data, ≈ 5 min of real speech):
- a 10-minute title: that speech twice over, back to back (speech from start to end);
- a long title (3 h by default): faint noise (about -66 dBFS) with a one-minute excerpt of the
  speech every 30 minutes, so about 6 minutes of speech in all.
Both are Opus in Matroska (48 kHz mono, as a film's dialogue track is decoded), encoded here in
blocks so building them needs little memory.

What it measures: each stage of each title runs through the real asset (Dagster `materialize`,
the real resources) in a fresh process, so `ru_maxrss` is that stage's own peak. It prints the
peak RSS and, beside it, the RSS the process had just before the stage (Python, Dagster and,
for `transcript`, the Whisper model already loaded): their difference is what the stage itself
holds, which is what must not grow with the film.

Honest limits: the long title is mostly quiet so that Whisper (VAD on, as by default) has 6
minutes to decode instead of 3 hours, which would take about an hour on 2 CPU cores. Its
`transcript` stage still reads, runs the VAD over and windows all 3 hours of audio; only the
decoding work is smaller. The worst case for one window (10 minutes of continuous speech, all
of it decoded) is the 10-minute title. Wall seconds are printed for context only; they depend
on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from build_recordings import _prompts, join  # noqa: E402

RATE = 48000
BLOCK_S = 10
NOISE_LEVEL = 0.0005  # ≈ -66 dBFS: room tone far below speech, no speech for the VAD
SPEECH_EVERY_S = 1800
SPEECH_EXCERPT_S = 60


# --- building the titles --------------------------------------------------------------------


def english_speech() -> np.ndarray:
    """Every English prompt joined with short pauses, int16 mono at 48 kHz (≈ 5 min)."""
    ids = [row["id"] for row in _prompts() if row["audio_en"]]
    samples, _ = join(ids, "en")
    return samples


def write_opus(dest: Path, blocks) -> float:
    """Encode int16 mono ``blocks`` (an iterable) as Opus in Matroska; returns seconds."""
    total = 0
    with av.open(str(dest), "w") as out:
        stream = out.add_stream("libopus", rate=RATE, layout="mono")
        stream.bit_rate = 32000
        for block in blocks:
            for start in range(0, block.size, 960):
                chunk = block[start:start + 960]
                if chunk.size < 960:
                    chunk = np.pad(chunk, (0, 960 - chunk.size))
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
                frame.sample_rate, frame.pts = RATE, total
                frame.time_base = Fraction(1, RATE)
                total += chunk.size
                out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return total / RATE


def speech_blocks(speech: np.ndarray, seconds: float):
    """``speech`` repeated for ``seconds``, in blocks."""
    size, done = BLOCK_S * RATE, 0
    while done < seconds * RATE:
        at = done % speech.size
        n = min(size, speech.size - at, int(seconds * RATE) - done)
        yield speech[at:at + n]
        done += n


def long_blocks(speech: np.ndarray, seconds: float):
    """Faint noise with a SPEECH_EXCERPT_S excerpt of ``speech`` every SPEECH_EVERY_S."""
    rng = np.random.default_rng(0)
    excerpt = speech[:SPEECH_EXCERPT_S * RATE]
    for start_s in range(0, int(seconds), BLOCK_S):
        block = (rng.standard_normal(BLOCK_S * RATE) * NOISE_LEVEL * 32767).astype(np.int16)
        offset_s = start_s % SPEECH_EVERY_S
        if offset_s < SPEECH_EXCERPT_S:
            piece = excerpt[offset_s * RATE:(offset_s + BLOCK_S) * RATE]
            block[:piece.size] += piece
        yield block


# --- one stage in a fresh process -----------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(stage: str, home: Path, media: Path, model: str) -> None:
    """Materialise ``stage`` of ``media``'s title in this process; print its memory as JSON."""
    from dagster import DagsterInstance, RunConfig, materialize

    from cpw_assets.definitions import defs
    from cpw_resources.orchestration.config import run_config
    from cpw_resources.orchestration.partitions import titles
    from cpw_resources.orchestration.resources import resources_for
    from cpw_resources.settings import Settings
    from cpw_resources.store.titles import TitleRegistry

    settings = Settings(home=home, whisper_model=model)
    resources = resources_for(settings)
    if stage == "transcript":  # the model belongs to the baseline, not to the stage
        whisper = resources["whisper"]
        whisper.load(whisper.asr_config(model))
    selection = ["media", "audio"] if stage == "audio" else ["transcript"]
    key = TitleRegistry(home / "titles").register(media).key
    assets = [a for a in defs.assets if getattr(a, "partitions_def", None) is not None]
    config = RunConfig(ops={k: v for k, v in run_config(settings).ops.items()
                            if k in selection})
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(titles.name, [key])
    before = _rss_mb()
    started = time.perf_counter()
    result = materialize(assets, instance=instance, partition_key=key, resources=resources,
                         run_config=config, selection=selection, raise_on_error=False)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"ok": result.success, "before_mb": before, "peak_mb": peak,
                      "seconds": seconds}))


def measure(stage: str, home: Path, media: Path, model: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", stage, str(home), str(media), "--model", model],
        capture_output=True, text=True, cwd=ROOT, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines or not json.loads(lines[-1])["ok"]:
        sys.exit(f"{stage} of {media.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--keep", type=Path, help="build the titles here and keep them")
    parser.add_argument("--child", nargs=3, metavar=("STAGE", "HOME", "MEDIA"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stage, home, media = args.child
        child(stage, Path(home), Path(media), args.model)
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_memory_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        speech = english_speech()
        titles = {"10 min": (work / "Ten Minutes.mka", speech_blocks(speech, 600)),
                  f"{args.hours:g} h": (work / "Long Film.mka",
                                        long_blocks(speech, args.hours * 3600))}
        rows = {}
        for label, (media, blocks) in titles.items():
            if not media.exists():
                print(f"building {label}: {write_opus(media, blocks):.0f} s", flush=True)
            home = work / f"home {media.stem}"
            shutil.rmtree(home, ignore_errors=True)  # a fresh home: no stage reuses a cache
            rows[label] = {s: measure(s, home, media, args.model) for s in ("audio", "transcript")}
            print(f"measured {label}", flush=True)
        report(rows, args.model)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def report(rows: dict[str, dict[str, dict]], model: str) -> None:
    labels = list(rows)
    print(f"\npeak RSS per stage, MB (held = peak minus the RSS just before the stage; "
          f"Whisper model {model}; wall seconds for context)")
    print(f"{'stage':<12}" + "".join(f"{label + ': peak / held / s':>30}" for label in labels))
    for stage in ("audio", "transcript"):
        cells = []
        for label in labels:
            m = rows[label][stage]
            cells.append(f"{m['peak_mb']:.0f} / {m['peak_mb'] - m['before_mb']:.0f} / "
                         f"{m['seconds']:.0f}")
        print(f"{stage:<12}" + "".join(f"{cell:>30}" for cell in cells))


if __name__ == "__main__":
    main()
