"""The optimizer's learning: candidates, XGBoost training and choice, versions, rules.

The examples here follow a known law (error grows as SNR falls and more so for the small
model; time grows with model size and beam), so the test can say what the right choice is;
the corpus benchmark (benchmarks/bench_optimizer.py) measures the same code on real labels.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from cpw_resources.optimizer.candidates import Candidate, candidates, model_size_m
from cpw_resources.optimizer.decide import decide
from cpw_resources.optimizer.model import (
    Example,
    ModelStore,
    audio_vector,
    examples_from_rows,
    is_holdout,
    train,
)


def law(snr: float, c: Candidate) -> tuple[float, float]:
    """(WER, seconds per audio second) of a candidate on audio at ``snr`` dB."""
    small = c.model.startswith("tiny")
    error = 0.05 + max(0.0, 25 - snr) * (0.012 if small else 0.004) - 0.004 * (c.beam_size > 1)
    seconds = (0.03 if small else 0.09) * (1 + 0.15 * (c.beam_size - 1))
    return error, seconds * (1.1 if c.temperature_fallback else 1.0)


SPACE = candidates(["tiny.en", "base"], english=True)


def audio(snr: float) -> dict:
    return audio_vector({"duration_s": 60.0, "loudness_dbfs": -22.0, "speech_ratio": 0.6,
                         "music_ratio": 0.4 if snr < 10 else 0.02, "silence_ratio": 0.1,
                         "snr_db": snr, "highband_ratio": 0.05, "spectral_flatness": 0.2,
                         "speech_rate": 4.0, "language_probability": 1.0, "language": "en"})


def examples(n_recordings: int, seed: int = 0) -> list[Example]:
    rng = np.random.default_rng(seed)
    out = []
    for r in range(n_recordings):
        snr = float(rng.uniform(0, 40))
        for c in SPACE:
            error, seconds = law(snr, c)
            out.append(Example(f"rec{r}", audio(snr), c, error + rng.normal(0, 0.003),
                               seconds * math.exp(rng.normal(0, 0.03))))
    return out


def test_the_space_is_explicit() -> None:
    assert len(SPACE) == 2 * 3 * 2 * 2
    assert not any(c.model == "tiny.en" for c in candidates(["tiny.en", "base"], english=False))
    assert model_size_m("tiny.en") < model_size_m("base") < model_size_m("faster-whisper-small")
    assert model_size_m("/models/large-v3") == 1550


def test_it_learns_cheap_for_clean_and_strong_for_hard(tmp_path: Path) -> None:
    model = train(examples(40))
    assert model.info["holdout"]["error_mae"] < 0.02
    assert model.info["cross_validated"]["error_mae"] < 0.02
    assert model.info["importance"]  # what mattered, for the asset's metadata
    default = Candidate("base", 5)
    clean = decide(audio(35.0), SPACE, default, model=model, min_examples=100, tolerance=0.01)
    hard = decide(audio(2.0), SPACE, default, model=model, min_examples=100, tolerance=0.01)
    assert clean.candidate.model == "tiny.en", clean
    assert hard.candidate.model == "base", hard
    truth_clean = law(35.0, clean.candidate)
    assert truth_clean[0] <= min(law(35.0, c)[0] for c in SPACE) + 0.015
    assert clean.source == model.version and clean.predicted_error is not None


def test_versions_are_kept_and_current_is_a_pointer(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "optimizer")
    assert store.current() is None
    first = train(examples(20))
    v1 = store.save(first, make_current=True)
    second = train(examples(20, seed=1))
    v2 = store.save(second, make_current=False)
    assert (v1, v2) == ("v0001", "v0002")
    loaded = store.current()
    assert loaded is not None and loaded.version == "v0001"
    probe = [Candidate("base", 5), Candidate("tiny.en", 1)]
    assert [p.error for p in loaded.predict(audio(20.0), probe)] == pytest.approx(
        [p.error for p in first.predict(audio(20.0), probe)], abs=1e-6)


def test_rules_below_the_minimum_say_so() -> None:
    small = train(examples(4))
    default = Candidate("base", 5)
    for model in (None, small):
        clean = decide(audio(35.0), SPACE, default, model=model, min_examples=10_000,
                       tolerance=0.01)
        hard = decide(audio(3.0), SPACE, default, model=model, min_examples=10_000,
                      tolerance=0.01)
        assert clean.source == hard.source == "rules"
        assert "no optimizer model" in clean.reason or "fewer than" in clean.reason
        assert clean.candidate == default
        assert hard.candidate.model == "base" and hard.candidate.beam_size == 5
    pinned = Candidate("tiny.en", 1)
    assert decide(audio(3.0), SPACE, default, model=small, min_examples=1, tolerance=0.01,
                  pinned=pinned).candidate == pinned
    off = decide(audio(3.0), SPACE, default, model=small, min_examples=1, tolerance=0.01,
                 enabled=False)
    assert (off.candidate, off.source) == (default, "off")


def test_rows_become_examples() -> None:
    rows = [{"title": "a", "model": "base", "beam_size": 2, "wer": 0.1, "realtime_factor": 0.1,
             "snr_db": 20.0, "language": "en"},
            {"title": "b", "model": "base", "beam_size": 5, "wer": None,
             "realtime_factor": 0.1},
            {"title": "c", "recording": "film", "model": "tiny.en", "wer": 3.0,
             "realtime_factor": 0.05, "vad_threshold": 0.35, "temperature_fallback": False}]
    got = examples_from_rows(rows)
    assert [e.recording for e in got] == ["a", "film"]
    assert got[0].candidate == Candidate("base", 2, 0.5, True)
    assert got[1].candidate == Candidate("tiny.en", 5, 0.35, False) and got[1].error == 1.5
    assert got[0].audio["is_english"] == 1.0


def test_a_thousand_examples_train_quickly() -> None:
    many = examples(84)  # 84 recordings x 24 candidates ≈ 2,000 rows
    started = time.perf_counter()
    train(many[:1000])
    assert time.perf_counter() - started < 60  # the benchmark holds it to 30 s, quietly
    assert 0.05 < sum(is_holdout(f"rec{r}") for r in range(1000)) / 1000 < 0.35


def test_a_model_never_guesses_a_config_it_has_no_labels_for() -> None:
    beams_only = [e for e in examples(30) if e.candidate.vad_threshold == 0.5
                  and e.candidate.temperature_fallback]
    model = train(beams_only)
    default = Candidate("base", 5)
    for snr in (2.0, 20.0, 35.0):
        chosen = decide(audio(snr), SPACE, default, model=model, min_examples=1,
                        tolerance=0.01).candidate
        assert chosen.vad_threshold == 0.5 and chosen.temperature_fallback, chosen


def test_exploring_is_a_stable_share_one_step_away_on_a_slice() -> None:
    from cpw_resources.optimizer.explore import explores, neighbour, slice_span

    keys = [f"title{k}" for k in range(2000)]
    share = sum(explores(k, 0.05) for k in keys) / len(keys)
    assert 0.03 < share < 0.07 and explores("title7", 0.05) == explores("title7", 0.05)
    assert not any(explores(k, 0.0) for k in keys) and all(explores(k, 1.0) for k in keys)
    chosen = Candidate("base", 5)
    labels = {Candidate("base", 2).key: 40, Candidate("tiny.en", 5).key: 3}
    other = neighbour(chosen, SPACE, labels)
    assert other is not None and other != chosen and other.key not in labels  # unlabelled first
    assert sum(a != b for a, b in zip(vars(other).values(), vars(chosen).values(),
                                      strict=True)) == 1
    assert slice_span(3600.0, 60.0) == (1770.0, 1830.0)
    assert slice_span(100.0, 60.0) == (45.0, 55.0)  # never more than a tenth of the film
    assert slice_span(30.0, 60.0) is None
