"""The optimizer on real labels: every candidate config on corpus clips, then choices judged.

    python benchmarks/corpus/build.py --conditions clean,music5,music0,noise0,telephone,quiet
    python benchmarks/bench_optimizer.py sweep [--films en_asterisk,en_readings]
                                               [--conditions clean,music5] [--clip-s 60]
                                               [--space full|beams]
    python benchmarks/bench_optimizer.py evaluate [--folds 5]

``sweep`` cuts each corpus film into clips of about ``--clip-s`` seconds (cut in the pause
between two reference lines, each clip with its own reference), fingerprints each clip and
decodes it with every candidate (cpw_resources/optimizer/candidates.py: every installed model,
beam 1/2/5, VAD threshold 0.5/0.35, temperature fallback on/off) through the project's own
``transcribe``, timing the decoding and scoring WER with the project's normaliser. Each
(clip, condition, config) becomes a labelled ``training_examples`` row (source ``sweep``,
``recording`` = film and clip, so one clip's conditions are one recording) in ``--store``
(default benchmarks/out/optimizer_home). It resumes: rows already there are not decoded again.

``evaluate`` splits the recordings into ``--folds`` folds (train and test never share a
recording), trains the optimizer on the others for each fold and lets it choose for every test
clip and condition, against the fixed default (base, beam 5) and the best config found by
trying every candidate. It prints, with each target of the optimizer issue:
- the right-config rate (chosen config's measured WER within the tolerance of the best);
- on clean audio, ASR time and WER of the chosen configs against the default's;
- on hard audio (music or noise at 5 dB or less), WER against the default's;
- the optimizer's own cost (features + prediction) against the clips' decoding time;
- the time to train on 1,000 examples.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import wave
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = HERE / "corpus" / "out"
sys.path.insert(0, str(ROOT))

from cpw_resources.optimizer.candidates import Candidate, candidates  # noqa: E402
from cpw_resources.optimizer.decide import decide  # noqa: E402
from cpw_resources.optimizer.features import title_features  # noqa: E402
from cpw_resources.optimizer.model import (  # noqa: E402
    examples_from_rows,
    train,
)
from cpw_resources.settings import Settings  # noqa: E402
from cpw_resources.speech import asr  # noqa: E402
from cpw_resources.speech.media import SAMPLE_RATE, WavReader, fingerprint  # noqa: E402
from cpw_resources.speech.models import ModelRegistry  # noqa: E402
from cpw_resources.store.events import EventStore  # noqa: E402
from cpw_resources.subtitles import evaluation as ev  # noqa: E402

DEFAULT = Candidate("base", 5)
CLEAN = {"clean", "quiet", "telephone", "gaps", "music20", "music10", "noise10"}
HARD = {"music5", "music0", "noise0"}
TOLERANCE = 0.01


def clips(film: dict, corpus: Path, clip_s: float) -> list[tuple[int, np.ndarray, str]]:
    """(index, 16 kHz samples, reference text) per clip of ``film``, cut between lines."""
    from faster_whisper.audio import decode_audio

    samples = decode_audio(str(corpus / film["media"]), sampling_rate=SAMPLE_RATE)
    lang = film["language"]
    lines = ev.reference_lines(corpus / film["refs"][lang])
    out, start, text = [], 0.0, []
    for k, line in enumerate(lines):
        text.append(line.text)
        following = lines[k + 1].start if k + 1 < len(lines) else None
        if following is not None and following - start < clip_s:
            continue
        cut = (line.end + following) / 2 if following is not None else len(samples) / SAMPLE_RATE
        piece = samples[int(start * SAMPLE_RATE):int(cut * SAMPLE_RATE)]
        if piece.size > SAMPLE_RATE * 5:
            out.append((len(out), piece, " ".join(text)))
        start, text = cut, []
    return out


def write_wav(path: Path, samples: np.ndarray) -> WavReader:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return WavReader(path)


def sweep(args: argparse.Namespace) -> None:
    corpus = args.corpus
    films = json.loads((corpus / "manifest.json").read_text())["films"]
    wanted_films = set(args.films.split(",")) if args.films else None
    wanted_conditions = set(args.conditions.split(",")) if args.conditions else None
    films = [f for f in films if (wanted_films is None or f["base"] in wanted_films)
             and (wanted_conditions is None or f["condition"] in wanted_conditions)]
    store = EventStore(args.store / "events", args.store / "cpw.duckdb")
    done = {(r["recording"], r["condition"], r["model"], r["beam_size"], r["vad_threshold"],
             r["temperature_fallback"])
            for r in store.read("training_examples").to_dicts() if r.get("source") == "sweep"}
    registry = ModelRegistry.from_settings(Settings(home=args.store))
    models = registry.available()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cpw-sweep-") as tmp:
        for film in films:
            english = film["language"] == "en"
            space = candidates(models, english=english)
            if args.space == "beams":
                space = [c for c in space if c.vad_threshold == 0.5 and c.temperature_fallback]
            for index, samples, reference in clips(film, corpus, args.clip_s):
                recording = f"{film['base']}#{index}"
                todo = [c for c in space if (recording, film["condition"], c.model, c.beam_size,
                                             c.vad_threshold, c.temperature_fallback) not in done]
                if not todo:
                    continue
                reader = write_wav(Path(tmp) / "clip.wav", samples)
                t0 = time.perf_counter()
                prints = fingerprint(samples)
                features_s = time.perf_counter() - t0
                features = title_features(prints, film["language"], 1.0)
                rows = []
                for c in todo:
                    config = asr.AsrConfig.build(
                        c.model, device="cpu", compute_type="int8", beam_size=c.beam_size,
                        batch_size=1, vad_filter=True, cpu_threads=0,
                        vad_threshold=c.vad_threshold, temperature_fallback=c.temperature_fallback)
                    model = asr.load_model(config, registry)
                    t0 = time.perf_counter()
                    result = asr.transcribe(model, reader, config, language=film["language"])
                    seconds = time.perf_counter() - t0
                    hypothesis = ev.normalise(" ".join(s.text for s in result.segments))
                    import jiwer

                    wer = float(jiwer.wer(ev.normalise(reference), hypothesis or "<none>"))
                    rows.append({**features, "model": c.model, "device": "cpu",
                                 "compute_type": "int8", "beam_size": c.beam_size,
                                 "batch_size": 1, "vad_filter": True,
                                 "vad_threshold": c.vad_threshold,
                                 "temperature_fallback": c.temperature_fallback,
                                 "wall_seconds": seconds,
                                 "realtime_factor": seconds / reader.duration_s,
                                 "segments": len(result.segments), "wer": wer,
                                 "source": "sweep", "condition": film["condition"],
                                 "recording": recording})
                store.append("training_examples", rows, run_id="bench_optimizer",
                             title=film["id"], asset="sweep")
                best = min(rows, key=lambda r: r["wer"])
                print(f"{film['id']} clip {index} ({reader.duration_s:.0f} s, features "
                      f"{features_s * 1000:.0f} ms): {len(rows)} configs, best WER "
                      f"{best['wer']:.3f} ({best['model']} beam {best['beam_size']}); "
                      f"{(time.perf_counter() - started) / 60:.1f} min so far", flush=True)


def evaluate(args: argparse.Namespace) -> None:
    store = EventStore(args.store / "events", args.store / "cpw.duckdb")
    rows = [r for r in store.read("training_examples").to_dicts() if r.get("source") == "sweep"]
    examples, by_case = [], defaultdict(list)
    for row in rows:
        for example in examples_from_rows([row]):
            examples.append(example)
            by_case[(example.recording, row["condition"])].append(example)
    recordings = sorted({e.recording for e in examples})
    print(f"{len(examples)} labelled examples, {len(recordings)} recordings, "
          f"{len(by_case)} clip-conditions")
    folds = [set(recordings[k::args.folds]) for k in range(args.folds)]
    right = total = 0
    clean_time = {"chosen": 0.0, "default": 0.0}
    clean_wer = {"chosen": [], "default": []}
    hard_wer = {"chosen": [], "default": [], "best": []}
    choose_s = []
    for fold in folds:
        model = train([e for e in examples if e.recording not in fold])
        for (recording, condition), tried in by_case.items():
            if recording not in fold:
                continue
            options = [e.candidate for e in tried]
            measured = {e.candidate: e for e in tried}
            if DEFAULT not in measured:
                continue
            t0 = time.perf_counter()
            decision = decide(tried[0].audio, options, DEFAULT, model=model, min_examples=1,
                              tolerance=TOLERANCE)
            choose_s.append(time.perf_counter() - t0)
            chosen, default = measured[decision.candidate], measured[DEFAULT]
            best = min(e.error for e in tried)
            total += 1
            right += chosen.error <= best + TOLERANCE
            if condition in CLEAN:
                clean_time["chosen"] += chosen.seconds_per_audio_s
                clean_time["default"] += default.seconds_per_audio_s
                clean_wer["chosen"].append(chosen.error)
                clean_wer["default"].append(default.error)
            elif condition in HARD:
                hard_wer["chosen"].append(chosen.error)
                hard_wer["default"].append(default.error)
                hard_wer["best"].append(best)

    def mean(values: list[float]) -> float:
        return 100 * float(np.mean(values)) if values else math.nan

    rate = right / total if total else math.nan
    print(f"right-config rate: {rate:.1%} of {total} ({'met' if rate >= 0.85 else 'NOT met'}: "
          "target >= 85 %)")
    if clean_wer["chosen"]:
        saving = 1 - clean_time["chosen"] / clean_time["default"]
        delta = mean(clean_wer["chosen"]) - mean(clean_wer["default"])
        print(f"clean audio: ASR time {saving:+.1%} saved vs default, WER "
              f"{mean(clean_wer['chosen']):.2f} vs {mean(clean_wer['default']):.2f} "
              f"({'met' if saving >= 0.30 and delta <= 1.0 else 'NOT met'}: target -30 % time, "
              "WER within +1 point)")
    if hard_wer["chosen"]:
        print(f"hard audio: WER {mean(hard_wer['chosen']):.2f} vs default "
              f"{mean(hard_wer['default']):.2f} (best possible {mean(hard_wer['best']):.2f}) "
              f"({'met' if mean(hard_wer['chosen']) <= mean(hard_wer['default']) else 'NOT met'}"
              ": target no worse than default)")
    print(f"choice: {1000 * float(np.mean(choose_s)):.1f} ms per title (prediction over "
          f"{len(by_case and next(iter(by_case.values())))} candidates)")
    _features_cost(args, examples)
    sample = (examples * (1000 // max(len(examples), 1) + 1))[:1000]
    t0 = time.perf_counter()
    trained = train(sample)
    print(f"retrain on {len(sample)} examples: {time.perf_counter() - t0:.1f} s "
          f"(target <= 30 s); held-out WER error {trained.info['holdout']['error_mae']:.4f}")
    print("importance:", json.dumps(dict(list(trained.info["importance"].items())[:6])))


def _features_cost(args: argparse.Namespace, examples: list) -> None:
    """The optimizer's own cost on one corpus film: the fingerprint's features and language
    detection, against the default config's decoding time (from the sweep's labels)."""
    from faster_whisper.audio import decode_audio

    from cpw_resources.optimizer.features import detect_language

    films = json.loads((args.corpus / "manifest.json").read_text())["films"]
    film = next(f for f in films if f["condition"] == "clean")
    samples = decode_audio(str(args.corpus / film["media"]), sampling_rate=SAMPLE_RATE)
    minutes = samples.size / SAMPLE_RATE / 60
    t0 = time.perf_counter()
    fingerprint(samples)
    features_s = time.perf_counter() - t0
    registry = ModelRegistry.from_settings(Settings(home=args.store))
    config = asr.AsrConfig.build("base", device="cpu", compute_type="int8", beam_size=5,
                                 batch_size=1, vad_filter=True, cpu_threads=0)
    model = asr.load_model(config, registry)
    with tempfile.TemporaryDirectory() as tmp:
        reader = write_wav(Path(tmp) / "film.wav", samples)
        t0 = time.perf_counter()
        detect_language(model, reader)
        detect_s = time.perf_counter() - t0
    default = [e.seconds_per_audio_s for e in examples if e.candidate == DEFAULT]
    decode_s = float(np.mean(default)) * samples.size / SAMPLE_RATE if default else math.nan
    share = (features_s + detect_s) / decode_s
    print(f"optimizer's own cost on {film['id']} ({minutes:.1f} min): features "
          f"{features_s:.2f} s, language detection {detect_s:.2f} s, against {decode_s:.0f} s "
          f"of decoding with the default: {share:.1%} ({'met' if share <= 0.03 else 'NOT met'}"
          ": target <= 3 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("sweep", "evaluate"))
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--store", type=Path, default=HERE / "out" / "optimizer_home")
    parser.add_argument("--films")
    parser.add_argument("--conditions")
    parser.add_argument("--clip-s", type=float, default=60.0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--space", choices=("full", "beams"), default="full",
                        help="beams: only models x beams (VAD 0.5, fallback on), a quarter "
                             "of the decoding; a later full sweep adds the rest")
    args = parser.parse_args()
    (sweep if args.mode == "sweep" else evaluate)(args)


if __name__ == "__main__":
    main()
