"""Accuracy on the evaluation corpus: the pipeline against plain faster-whisper, film by film.

    python benchmarks/corpus/build.py                   # once: the corpus (git-ignored)
    python benchmarks/bench_quality.py [--films en_asterisk,fr_asterisk] [--conditions clean]
                                       [--model base] [--beam 5] [--store DIR] [--keep DIR]

Every chosen corpus film goes through both systems, each in fresh processes, one after the
other (never at the same time), with the same model, beam size, int8 and VAD:
- project: ``cpw register FILM`` then ``dagster job execute -j subtitle_job`` on a fresh home
  (no cache from earlier runs), English subtitles (the default target);
- plain: faster-whisper's ``transcribe`` on the whole file, its segments written straight to
  SRT — the ``transcribe`` task for films in English, the whole-file ``translate`` task for
  the others (and, with ``--source-wer``, also ``transcribe`` for their own-language WER).
  Its sampler is seeded once per process (the project seeds it per window), so both systems
  give one text per film and a rerun of the bench reproduces its table.

Scores (cpw_resources/subtitles/evaluation.py, one normaliser for both): WER on films in
English, BLEU and chrF into English on the others, the share of cues that follow the subtitle
rules, invented cues (no reference speech under them; and how many in the film's music-only
or silent stretches), real-time factor (wall seconds per audio second, process start to SRT).
It prints a table per film and the totals with each target, and appends one ``evaluations``
row per film and system, and one labelled ``training_examples`` row per film (fingerprint,
full config, measured WER / BLEU / time) to the event store (``--store``, default CPW_HOME),
so ``select * from quality_by_condition`` (dbt) compares versions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
CORPUS = HERE / "corpus" / "out"
sys.path.insert(0, str(ROOT))

from bench_end_to_end import run as _run  # noqa: E402  (benchmarks/ is the script's folder)

from cpw_resources.settings import Settings  # noqa: E402
from cpw_resources.speech.models import ModelRegistry  # noqa: E402
from cpw_resources.store.events import EventStore  # noqa: E402
from cpw_resources.subtitles import evaluation as ev  # noqa: E402

PLAIN = """
import json, sys
import ctranslate2
import pysubs2
from faster_whisper import WhisperModel
a = json.loads(sys.argv[1])
ctranslate2.set_random_seed(0)  # its temperature fallback samples: one text per run, as ours
model = WhisperModel(a["model_path"], device="cpu", compute_type="int8", local_files_only=True)
segments, info = model.transcribe(a["media"], task=a["task"], beam_size=a["beam"],
                                  vad_filter=True)
subs = pysubs2.SSAFile()
for s in segments:
    subs.append(pysubs2.SSAEvent(start=round(s.start * 1000), end=round(s.end * 1000),
                                 text=s.text.strip()))
subs.save(a["out"], format_="srt")
print(json.dumps({"language": info.language}))
"""

#: Targets of the accuracy issue, checked on the totals.
MAX_WER_LOSS = 0.005  # no film's WER above plain's by more than half a point
MIN_COMPLIANCE = 0.98


@dataclass
class Result:
    system: str
    srt: Path
    wall_s: float
    wer: float | None = None
    bleu: float | None = None
    chrf: float | None = None
    compliance: float = 0.0
    cues: int = 0
    invented: int = 0
    invented_nonspeech: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _score(result: Result, film: dict, corpus: Path) -> Result:
    cues = ev.read_cues(result.srt)
    refs = {lang: ev.reference_lines(corpus / path) for lang, path in film["refs"].items()}
    english = refs["en"]
    if film["language"] == "en":
        result.wer = ev.wer(english, cues)
    else:
        result.bleu, result.chrf = ev.bleu_chrf(english, cues)
    result.compliance = ev.compliance(cues)
    result.cues = len(cues)
    spans = [tuple(s) for s in film.get("nonspeech_spans", ())]
    result.invented, result.invented_nonspeech = ev.invented_cues(english, cues, spans)
    return result


def _plain(film: dict, corpus: Path, model_path: Path, beam: int, out: Path,
           task: str) -> Result:
    srt = out / f"{film['id']}.plain.{task}.srt"
    args = {"model_path": str(model_path), "media": str(corpus / film["media"]),
            "task": task, "beam": beam, "out": str(srt)}
    wall, _ = _run([sys.executable, "-c", PLAIN, json.dumps(args)], dict(os.environ))
    return Result("plain", srt, wall)


def _project(film: dict, corpus: Path, env: dict[str, str]) -> tuple[Result, Path]:
    media = corpus / film["media"]
    started = time.perf_counter()
    _, key = _run([str(BIN / "cpw"), "register", str(media)], env)
    key = key.strip()
    _run([str(BIN / "dagster"), "job", "execute", "-m", "cpw_assets.definitions",
          "-j", "subtitle_job", "--tags", json.dumps({"dagster/partition": key})], env)
    wall = time.perf_counter() - started
    title_dir = Path(env["CPW_HOME"]) / "titles" / key
    return Result("project", title_dir / f"{key}.en.srt", wall), title_dir


def _source_wer(film: dict, corpus: Path, title_dir: Path) -> float | None:
    """The project's transcript (spoken language) against the spoken-language reference."""
    document = json.loads((title_dir / "transcript.json").read_text())
    from cpw_resources.records import Cue

    cues = [Cue(s["start"], s["end"], (s["text"],)) for s in document["segments"]]
    return ev.wer(ev.reference_lines(corpus / film["refs"][film["language"]]), cues)


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _pct(value: float | None) -> str:
    return "    -" if value is None else f"{100 * value:5.1f}"


def _num(value: float | None) -> str:
    return "    -" if value is None else f"{value:5.1f}"


def main() -> None:  # noqa: C901 - one linear script: run, score, print, record
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--films", help="comma-separated base film ids (default: all)")
    parser.add_argument("--conditions", help="comma-separated conditions (default: all)")
    parser.add_argument("--model", default="base")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--source-wer", action="store_true",
                        help="also plain transcribe of non-English films, for their WER")
    parser.add_argument("--store", type=Path, help="event store home (default: CPW_HOME)")
    parser.add_argument("--keep", type=Path, help="keep the runs' home and SRTs here")
    args = parser.parse_args()

    manifest_path = args.corpus / "manifest.json"
    if not manifest_path.exists():
        sys.exit(f"{manifest_path} not found: build the corpus first "
                 "(python benchmarks/corpus/build.py)")
    films = json.loads(manifest_path.read_text())["films"]
    if args.films:
        wanted = set(args.films.split(","))
        films = [f for f in films if f["base"] in wanted or f["id"] in wanted]
    if args.conditions:
        wanted = set(args.conditions.split(","))
        films = [f for f in films if f["condition"] in wanted]
    if not films:
        sys.exit("no corpus film matches --films / --conditions")

    work = Path(args.keep or tempfile.mkdtemp(prefix="cpw-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    warm = Settings(home=work / "warm")
    model_path = ModelRegistry.from_settings(warm).resolve(args.model)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CPW_")},
           "CPW_HOME": str(work / "home"), "DAGSTER_HOME": str(work / "home" / "dagster"),
           "CPW_WHISPER_MODEL": args.model, "CPW_BEAM_SIZE": str(args.beam),
           "CPW_COMPUTE_TYPE": "int8", "CPW_DEVICE": "cpu", "CPW_TARGET_LANGUAGE": "en",
           "CPW_WHISPER_MODELS_DIR": str(model_path.parent)}
    evaluation_id, commit = uuid.uuid4().hex[:12], _commit()
    print(f"evaluation {evaluation_id} at {commit}: {len(films)} films, model {args.model}, "
          f"beam {args.beam}, int8, VAD, {os.cpu_count()} cores; work in {work}", flush=True)

    rows: list[tuple[dict, Result, Result]] = []
    examples: list[dict] = []
    for n, film in enumerate(films, 1):
        task = "transcribe" if film["language"] == "en" else "translate"
        plain = _score(_plain(film, args.corpus, model_path, args.beam, work, task), film,
                       args.corpus)
        project, title_dir = _project(film, args.corpus, env)
        project = _score(project, film, args.corpus)
        if film["language"] != "en":
            project.extra["source_wer"] = _source_wer(film, args.corpus, title_dir)
            if args.source_wer:
                own = _plain(film, args.corpus, model_path, args.beam, work, "transcribe")
                plain.extra["source_wer"] = ev.wer(
                    ev.reference_lines(args.corpus / film["refs"][film["language"]]),
                    ev.read_cues(own.srt))
        rows.append((film, project, plain))
        # The run's own example (features, the config it chose, ASR time), labelled here.
        home = Path(env["CPW_HOME"])
        ran = [r for r in EventStore(home / "events", home / "cpw.duckdb")
               .read("training_examples").to_dicts()
               if r["title"] == title_dir.name and r.get("source") == "pipeline"][-1]
        examples.append({
            **{k: v for k, v in ran.items()
               if k not in ("schema_version", "ts", "run_id", "title", "asset")},
            "wer": project.wer if project.wer is not None else project.extra.get("source_wer"),
            "bleu": project.bleu, "chrf": project.chrf, "target_language": "en",
            "recording": film["base"],
            "source": "corpus", "condition": film["condition"],
        })
        metric = "WER" if project.wer is not None else "BLEU"
        shown = ((_pct(project.wer), _pct(plain.wer)) if metric == "WER"
                 else (_num(project.bleu), _num(plain.bleu)))
        print(f"[{n}/{len(films)}] {film['id']}: {metric} {shown[0].strip()} vs plain "
              f"{shown[1].strip()}; compliance {_pct(project.compliance).strip()} % vs "
              f"{_pct(plain.compliance).strip()} %; {project.wall_s:.0f} s vs "
              f"{plain.wall_s:.0f} s", flush=True)

    _print_table(rows)
    verdicts = _verdicts(rows, args.corpus)
    for line in verdicts:
        print(line)

    store_home = args.store or Settings().home_dir
    store = EventStore(store_home / "events", store_home / "cpw.duckdb")
    config = json.dumps({"model": args.model, "beam_size": args.beam, "compute_type": "int8",
                         "vad_filter": True, "device": "cpu", "target_language": "en",
                         "plain": "faster-whisper transcribe/translate, whole file"})
    store.append("evaluations", [
        {"evaluation_id": evaluation_id, "commit": commit, "film": film["id"],
         "condition": film["condition"], "language": film["language"], "system": r.system,
         "model": args.model, "beam_size": args.beam, "config": config,
         "audio_seconds": film["duration_s"], "wall_seconds": r.wall_s,
         "realtime_factor": r.wall_s / film["duration_s"],
         "wer": r.wer if r.wer is not None else r.extra.get("source_wer"),
         "bleu": r.bleu, "chrf": r.chrf, "compliance": r.compliance, "cues": r.cues,
         "invented_cues": r.invented, "invented_in_nonspeech": r.invented_nonspeech}
        for film, project, plain in rows for r in (project, plain)
    ], run_id=evaluation_id, title="", asset="bench_quality")
    store.append("training_examples", examples, run_id=evaluation_id, title="",
                 asset="bench_quality")
    print(f"recorded {2 * len(rows)} evaluations rows and {len(examples)} training examples "
          f"in {store_home / 'events'} (evaluation_id {evaluation_id})")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def _print_table(rows: list[tuple[dict, Result, Result]]) -> None:
    print()
    print(f"{'film':<26} {'metric':<6} {'project':>7} {'plain':>7} {'Δ':>6}  "
          f"{'compliance %':>13}  {'invented (in gaps)':>18}  {'RTF proj/plain':>15}")
    for film, p, q in rows:
        if p.wer is not None:
            metric, a, b = "WER %", 100 * p.wer, 100 * (q.wer or 0.0)
        else:
            metric, a, b = "BLEU", p.bleu or 0.0, q.bleu or 0.0
        rtf_p, rtf_q = p.wall_s / film["duration_s"], q.wall_s / film["duration_s"]
        print(f"{film['id']:<26} {metric:<6} {a:7.1f} {b:7.1f} {a - b:+6.1f}  "
              f"{100 * p.compliance:5.1f} / {100 * q.compliance:5.1f}  "
              f"{p.invented:3d}({p.invented_nonspeech:2d}) / "
              f"{q.invented:3d}({q.invented_nonspeech:2d})"
              f"  {rtf_p:.3f}/{rtf_q:.3f} ({rtf_p / rtf_q:.2f}×)")
        if "source_wer" in p.extra:
            own = q.extra.get("source_wer")
            print(f"{'':<26} {'srcWER':<6} {_pct(p.extra['source_wer']):>7} "
                  f"{_pct(own):>7}  (spoken-language transcript)")


def _verdicts(rows: list[tuple[dict, Result, Result]], corpus: Path) -> list[str]:
    import jiwer

    lines = ["", "totals and targets:"]
    english = [(f, p, q) for f, p, q in rows if p.wer is not None]
    if english:
        refs, hyp_p, hyp_q = [], [], []
        for film, p, q in english:
            ref = ev.normalise(" ".join(
                r.text for r in ev.reference_lines(corpus / film["refs"]["en"])))
            refs.append(ref)
            hyp_p.append(ev.normalise(" ".join(" ".join(c.lines) for c in ev.read_cues(p.srt))))
            hyp_q.append(ev.normalise(" ".join(" ".join(c.lines) for c in ev.read_cues(q.srt))))
        total_p, total_q = jiwer.wer(refs, hyp_p), jiwer.wer(refs, hyp_q)
        worst = max(english, key=lambda r: (r[1].wer or 0) - (r[2].wer or 0))
        loss = (worst[1].wer or 0) - (worst[2].wer or 0)
        lines.append(f"  total WER (English films): project {100 * total_p:.2f} %, plain "
                     f"{100 * total_q:.2f} % — {'met' if total_p <= total_q else 'NOT met'}")
        lines.append(f"  worst film vs plain: {worst[0]['id']} {100 * loss:+.2f} points — "
                     f"{'met' if loss <= MAX_WER_LOSS else 'NOT met'} (≤ +0.5)")
    by_language: dict[str, list[tuple[float, float]]] = {}
    for film, p, q in rows:
        if p.bleu is not None:
            by_language.setdefault(film["language"], []).append((p.bleu, q.bleu or 0.0))
    for language, pairs in sorted(by_language.items()):
        mine = sum(a for a, _ in pairs) / len(pairs)
        theirs = sum(b for _, b in pairs) / len(pairs)
        lines.append(f"  BLEU {language}→en (mean of {len(pairs)} films): project {mine:.1f}, "
                     f"plain {theirs:.1f} — {'met' if mine >= theirs else 'NOT met'}")
    cues = sum(p.cues for _, p, _ in rows)
    good = sum(p.cues * p.compliance for _, p, _ in rows)
    share = good / cues if cues else 1.0
    lines.append(f"  compliance (all project cues): {100 * share:.1f} % — "
                 f"{'met' if share >= MIN_COMPLIANCE else 'NOT met'} (≥ 98 %)")
    gaps = sum(p.invented_nonspeech for _, p, _ in rows)
    lines.append(f"  invented cues in music-only / silent stretches: {gaps} — "
                 f"{'met' if gaps == 0 else 'NOT met'} (0); plain: "
                 f"{sum(q.invented_nonspeech for _, _, q in rows)}")
    return lines


if __name__ == "__main__":
    main()
