"""Translation routes into English on the corpus films, side by side in one run: Whisper's
translate task, the transcript translated by the local model, and that plus the local model's
selective enhancement.

    python benchmarks/corpus/build.py --conditions clean        # once (git-ignored)
    python benchmarks/bench_local_llm.py [--films fr_asterisk,es_asterisk,it_asterisk]
                                         [--model base] [--llm qwen2.5-coder-1.5b]

Every film goes through ``cpw register`` + ``dagster job execute`` three times on one fresh
home, so the transcript is made once and each route differs only in what makes the English:
1. ``whisper``: CPW_TRANSLATION_BACKEND=whisper (the default), no enhancement;
2. ``local``: CPW_TRANSLATION_BACKEND=llm, CPW_TRANSLATION_LLM=local:MODEL;
3. ``local+enhance``: route 2 plus CPW_ENHANCE_PROVIDER=local:MODEL (time budget
   CPW_ENHANCE_LOCAL_TIME_SHARE, default 0.15 of the film).
BLEU and chrF of the English subtitles against the film's English script (the normaliser of
cpw_resources/subtitles/evaluation.py), rule compliance, and the seconds the translation and
enhancement stages took (stage_metrics) as a share of the film's duration. Targets (the local
LLM issue): BLEU ≥ whisper's + 3 for fr, es, it; translation ≤ 0.5× and enhancement ≤ 0.15×
the film's duration on 2 cores. The local server is started by the first LLM run (its load
time is in that stage's seconds) and stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_quality import CORPUS, Result, _project, _score  # noqa: E402

from cpw_resources.llm.local import LocalServer  # noqa: E402
from cpw_resources.store.events import EventStore  # noqa: E402

ROUTES = ("whisper", "local", "local+enhance")


def _route_env(route: str, llm: str) -> dict[str, str]:
    if route == "whisper":
        return {"CPW_TRANSLATION_BACKEND": "whisper"}
    env = {"CPW_TRANSLATION_BACKEND": "llm", "CPW_TRANSLATION_LLM": f"local:{llm}"}
    if route == "local+enhance":
        env["CPW_ENHANCE_PROVIDER"] = f"local:{llm}"
    return env


def _stage_seconds(home: Path, asset: str) -> float:
    rows = EventStore(home / "events", home / "cpw.duckdb").read("stage_metrics")
    rows = rows.filter((rows["asset"] == asset) & (rows["status"] == "success"))
    return float(rows["wall_seconds"][-1]) if rows.height else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--films", default="fr_asterisk,es_asterisk,it_asterisk")
    parser.add_argument("--model", default="base")
    parser.add_argument("--llm", default="qwen2.5-coder-1.5b")
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--keep", type=Path, help="keep each route's SRT here")
    args = parser.parse_args()

    manifest = json.loads((args.corpus / "manifest.json").read_text())
    films = [f for f in manifest["films"] if f["id"] in args.films.split(",")]
    if not films:
        sys.exit(f"no such films in {args.corpus}: {args.films}")
    routes = args.routes.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="cpw-local-llm-") as tmp:
        for film in films:
            home = Path(tmp) / film["id"]
            base = {**os.environ, "CPW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
                    "CPW_WHISPER_MODEL": args.model, "CPW_BEAM_SIZE": "5",
                    "CPW_COMPUTE_TYPE": "int8", "CPW_OPTIMIZER": "off",
                    "CPW_CONTEXT_LEARNER": "off"}
            for route in routes:
                env = {**base, **_route_env(route, args.llm)}
                result, title_dir = _project(film, args.corpus, env)
                _score(result, film, args.corpus)
                translate_s = _stage_seconds(home, "translation")
                enhance_s = _stage_seconds(home, "enhanced_translation") \
                    if route == "local+enhance" else 0.0
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    target = args.keep / f"{film['id']}.{route}.srt"
                    target.write_bytes(result.srt.read_bytes())
                enhanced = {}
                if route == "local+enhance":
                    enhanced = json.loads((title_dir / "enhanced.en.json").read_text())
                rows.append((film, route, result, translate_s, enhance_s, enhanced))
                print(f"{film['id']:14s} {route:14s} BLEU {result.bleu:5.1f}  chrF "
                      f"{result.chrf:5.1f}  compliance {100 * result.compliance:5.1f} %  "
                      f"translation {translate_s:6.1f} s ({translate_s / film['duration_s']:.2f}"
                      f"× film)  enhancement {enhance_s:5.1f} s "
                      f"({enhance_s / film['duration_s']:.2f}× film)", flush=True)
            LocalServer(home / "llm", home / "models" / "llm").stop(args.llm)
    _table(rows)


def _table(rows: list[tuple[dict, str, Result, float, float, dict]]) -> None:
    print(f"\n{'film':14s} {'route':14s} {'BLEU':>5s} {'chrF':>5s} {'Δ BLEU':>7s} "
          f"{'compl %':>7s} {'transl ×':>8s} {'enh ×':>6s}")
    whisper = {f["id"]: r.bleu for f, route, r, *_ in rows if route == "whisper"}
    for film, route, result, translate_s, enhance_s, _ in rows:
        duration = film["duration_s"]
        delta = result.bleu - whisper[film["id"]] if film["id"] in whisper else float("nan")
        print(f"{film['id']:14s} {route:14s} {result.bleu:5.1f} {result.chrf:5.1f} "
              f"{delta:+7.1f} {100 * result.compliance:7.1f} {translate_s / duration:8.2f} "
              f"{enhance_s / duration:6.2f}")


if __name__ == "__main__":
    main()
