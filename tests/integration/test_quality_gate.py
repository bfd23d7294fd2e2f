"""The quality gate: a short slice of the evaluation corpus (≤ 2 minutes, English and French,
real speech from ../shared/data) through the whole pipeline, scored as bench_quality.py scores
the full corpus. Fails when WER rises above, or BLEU falls below, the floors recorded in
tests/quality_floors.json (measured values less a stated margin)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpw_resources.subtitles import evaluation as ev
from tests import media_fixtures as mf

FLOORS = json.loads((Path(__file__).resolve().parents[1] / "quality_floors.json").read_text())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    mf.shared_data("asterisk_dev/prompts.tsv")  # skips, saying why, without ../shared/data
    from benchmarks.corpus.build import build

    out = tmp_path_factory.mktemp("corpus")
    manifest = build(out, slice="ci")
    assert sum(f["duration_s"] for f in manifest["films"]) <= 120
    assert {f["language"] for f in manifest["films"]} == {"en", "fr"}
    return out, manifest


@pytest.mark.parametrize("film_id", ["en_ci", "fr_ci"])
def test_the_corpus_slice_keeps_its_accuracy(corpus, film_id: str, run_title) -> None:
    out, manifest = corpus
    film = next(f for f in manifest["films"] if f["id"] == film_id)
    floor = FLOORS[film_id]
    run = run_title(out / film["media"], whisper_model=floor["model"])
    assert run.success
    cues = ev.read_cues(run.srt())
    english = ev.reference_lines(out / film["refs"]["en"])
    if floor["metric"] == "wer":
        score = ev.wer(english, cues)
        print(f"{film_id}: WER {score:.4f} with {floor['model']}")
        assert floor["measured"] is not None, f"measure {film_id} and record it"
        assert score <= floor["measured"] + floor["margin"], (score, floor)
    else:
        score, chrf = ev.bleu_chrf(english, cues)
        print(f"{film_id}: BLEU {score:.2f} chrF {chrf:.2f} with {floor['model']}")
        assert floor["measured"] is not None, f"measure {film_id} and record it"
        assert score >= floor["measured"] - floor["margin"], (score, floor)
        assert chrf >= floor["chrf_measured"] - floor["chrf_margin"], (chrf, floor)
    assert ev.compliance(cues) >= 0.98
    assert ev.invented_cues(english, cues, film["nonspeech_spans"])[1] == 0
