"""Learning which config a title needs: XGBoost on the labelled ``training_examples``.

Two regressors over (audio features, candidate config): the *error* (WER, 0–1) and the *time*
(log of ASR seconds per audio second). For a new title every candidate is scored, and the
cheapest one whose predicted error is within ``tolerance`` of the best candidate's wins.

Evaluation is honest about leakage: rows are grouped by ``recording`` (corpus film, or title),
and a fixed share of recordings (by hash, so the same ones every time) is held out of every
training; a retrain replaces the current model only when it scores no worse on them.

A model is a versioned directory under ``$CPW_HOME/optimizer``: ``vNNNN/error.ubj``,
``time.ubj`` (XGBoost's own format) and ``model.json`` (features, rows, held-out and
cross-validated error, feature importances); ``current`` names the version in use.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cpw_resources.atomic import write_json, write_text
from cpw_resources.optimizer.candidates import Candidate, model_size_m

#: What the optimizer knows of a title's audio (cpw_resources.speech.media.fingerprint, plus
#: the language and how sure Whisper is of it).
AUDIO_FEATURES = (
    "duration_s", "loudness_dbfs", "speech_ratio", "music_ratio", "silence_ratio", "snr_db",
    "highband_ratio", "spectral_flatness", "speech_rate", "language_probability",
    "is_english",
)
CONFIG_FEATURES = ("model_size_m", "english_only", "beam_size", "vad_threshold",
                   "temperature_fallback")
FEATURES = AUDIO_FEATURES + CONFIG_FEATURES
#: Share of recordings never trained on, to judge a model and compare a retrain with it.
HOLDOUT_SHARE = 0.2
_PARAMS = {"objective": "reg:squarederror", "max_depth": 4, "eta": 0.1, "subsample": 0.9,
           "min_child_weight": 2, "nthread": 2, "seed": 0, "verbosity": 0}
_ROUNDS = 150
_FOLDS = 4


def audio_vector(features: Mapping[str, Any]) -> dict[str, float]:
    """The audio half of a row, with ``is_english`` from ``language``."""
    out = {k: _number(features.get(k)) for k in AUDIO_FEATURES if k != "is_english"}
    language = features.get("language")
    out["is_english"] = float(language == "en") if language else math.nan
    return out


def config_vector(candidate: Candidate) -> dict[str, float]:
    return {"model_size_m": model_size_m(candidate.model),
            "english_only": float(candidate.model.endswith(".en")),
            "beam_size": float(candidate.beam_size),
            "vad_threshold": float(candidate.vad_threshold),
            "temperature_fallback": float(candidate.temperature_fallback)}


def _number(value: Any) -> float:
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def is_holdout(recording: str) -> bool:
    digest = hashlib.sha256(recording.encode("utf-8")).digest()
    return digest[0] / 256 < HOLDOUT_SHARE


@dataclass(frozen=True)
class Example:
    """One labelled run: a recording's audio features, the config, and what it measured."""

    recording: str
    audio: Mapping[str, float]
    candidate: Candidate
    error: float  # WER, 0..1
    seconds_per_audio_s: float

    def vector(self) -> list[float]:
        row = {**self.audio, **config_vector(self.candidate)}
        return [row[k] for k in FEATURES]


def candidate_of(row: Mapping[str, Any]) -> Candidate:
    """The config a ``training_examples`` row was decoded with (rows from before the VAD
    threshold and fallback were recorded used their defaults)."""
    return Candidate(
        str(row["model"]), int(row.get("beam_size") or 5),
        float(row["vad_threshold"]) if row.get("vad_threshold") is not None else 0.5,
        bool(row["temperature_fallback"]) if row.get("temperature_fallback") is not None
        else True)


def examples_from_rows(rows: Sequence[Mapping[str, Any]], *,
                       timed_only: bool = False) -> list[Example]:
    """``training_examples`` rows that carry a WER and a time, as examples (others skipped);
    with ``timed_only``, also those with a time and no WER (their ``error`` is NaN: they teach
    the time model only, e.g. explorations of titles without a reference)."""
    out = []
    for row in rows:
        wer, rtf = _number(row.get("wer")), _number(row.get("realtime_factor"))
        if (math.isnan(wer) and not timed_only) or math.isnan(rtf) or rtf <= 0 \
                or not row.get("model"):
            continue
        candidate = candidate_of(row)
        recording = str(row.get("recording") or row.get("title") or "")
        out.append(Example(recording, audio_vector(row), candidate,
                           min(wer, 1.5) if not math.isnan(wer) else math.nan, rtf))
    return out


@dataclass(frozen=True)
class Prediction:
    candidate: Candidate
    error: float
    seconds_per_audio_s: float


@dataclass
class OptimizerModel:
    """The two boosters and what is known of how well they do."""

    error: Any
    time: Any
    info: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.info.get("version", "unsaved"))

    def predict(self, audio: Mapping[str, float],
                candidates: Sequence[Candidate]) -> list[Prediction]:
        import xgboost as xgb

        rows = [[{**audio, **config_vector(c)}[k] for k in FEATURES] for c in candidates]
        matrix = xgb.DMatrix(np.array(rows, dtype=np.float32), feature_names=list(FEATURES),
                             missing=np.nan)
        errors = self.error.predict(matrix)
        times = np.exp(self.time.predict(matrix))
        return [Prediction(c, float(max(e, 0.0)), float(t))
                for c, e, t in zip(candidates, errors, times, strict=True)]

    def score(self, examples: Sequence[Example]) -> dict[str, float]:
        """Mean absolute error of both predictions on ``examples`` (WER, 0–1; log of time)."""
        if not examples:
            return {"error_mae": math.nan, "time_ratio_mae": math.nan, "rows": 0}
        got = [self.predict(e.audio, [e.candidate])[0] for e in examples]
        errors = [abs(p.error - e.error) for p, e in zip(got, examples, strict=True)
                  if not math.isnan(e.error)]
        return {
            "error_mae": float(np.mean(errors)) if errors else math.nan,
            "time_ratio_mae": float(np.mean([abs(math.log(p.seconds_per_audio_s /
                                                          e.seconds_per_audio_s))
                                             for p, e in zip(got, examples, strict=True)])),
            "rows": len(examples),
        }


def _matrices(examples: Sequence[Example]) -> tuple[Any, Any]:
    """The error model's rows (those with a WER) and the time model's (all)."""
    import xgboost as xgb

    scored = [e for e in examples if not math.isnan(e.error)]
    error = xgb.DMatrix(np.array([e.vector() for e in scored], dtype=np.float32),
                        label=[e.error for e in scored], feature_names=list(FEATURES),
                        missing=np.nan)
    timed = xgb.DMatrix(np.array([e.vector() for e in examples], dtype=np.float32),
                        label=[math.log(e.seconds_per_audio_s) for e in examples],
                        feature_names=list(FEATURES), missing=np.nan)
    return error, timed


def fit(examples: Sequence[Example]) -> OptimizerModel:
    import xgboost as xgb

    error, timed = _matrices(examples)
    return OptimizerModel(xgb.train(_PARAMS, error, _ROUNDS), xgb.train(_PARAMS, timed, _ROUNDS))


def train(examples: Sequence[Example]) -> OptimizerModel:
    """A model on the examples of recordings not held out, with its held-out score,
    cross-validated score (folds by recording) and feature importances in ``info``."""
    started = time.perf_counter()
    training = [e for e in examples if not is_holdout(e.recording)]
    held = [e for e in examples if is_holdout(e.recording)]
    if not any(not math.isnan(e.error) for e in training):
        raise ValueError("no training examples with a WER outside the held-out recordings")
    model = fit(training)
    recordings = sorted({e.recording for e in training})
    folds = [set(recordings[k::_FOLDS]) for k in range(min(_FOLDS, len(recordings)))]
    cv = []
    for fold in folds if len(folds) > 1 else []:
        inner = [e for e in training if e.recording not in fold]
        if any(not math.isnan(e.error) for e in inner):
            cv.append(fit(inner).score([e for e in training if e.recording in fold]))
    importance = model.error.get_score(importance_type="gain")
    model.info = {
        "rows": sum(not math.isnan(e.error) for e in training),
        "timed_rows": len(training),
        "recordings": len(recordings),
        "holdout": model.score(held),
        "cross_validated": {k: _finite(float(np.nanmean([c[k] for c in cv]))) for k in
                            ("error_mae", "time_ratio_mae")} if cv else None,
        "importance": {k: round(v, 4) for k, v in
                       sorted(importance.items(), key=lambda kv: -kv[1])},
        "features": list(FEATURES),
        # The model chooses only among configs it has labels for (cpw_resources/optimizer/
        # decide.py); exploration and corpus runs bring in new ones.
        "configs": sorted({e.candidate.key for e in training if not math.isnan(e.error)}),
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    return model


def choose(predictions: Sequence[Prediction], tolerance: float) -> Prediction:
    """The fastest candidate whose predicted error is within ``tolerance`` of the best."""
    best = min(p.error for p in predictions)
    fine = [p for p in predictions if p.error <= best + tolerance]
    return min(fine, key=lambda p: (p.seconds_per_audio_s, p.error))


class ModelStore:
    """Versioned optimizer models under one directory, and which one is current."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def current(self) -> OptimizerModel | None:
        pointer = self.root / "current"
        if not pointer.is_file():
            return None
        return self.load(pointer.read_text().strip())

    def load(self, version: str) -> OptimizerModel:
        import xgboost as xgb

        where = self.root / version
        error, timed = xgb.Booster(), xgb.Booster()
        error.load_model(str(where / "error.ubj"))
        timed.load_model(str(where / "time.ubj"))
        return OptimizerModel(error, timed, json.loads((where / "model.json").read_text()))

    def save(self, model: OptimizerModel, *, make_current: bool) -> str:
        """Write ``model`` as the next version; point ``current`` at it when asked."""
        self.root.mkdir(parents=True, exist_ok=True)
        taken = [int(p.name[1:]) for p in self.root.glob("v[0-9]*") if p.name[1:].isdigit()]
        version = f"v{max(taken, default=0) + 1:04d}"
        staging = self.root / f".{version}.partial"
        staging.mkdir(parents=True, exist_ok=True)
        model.info["version"] = version
        model.error.save_model(str(staging / "error.ubj"))
        model.time.save_model(str(staging / "time.ubj"))
        write_json(staging / "model.json", model.info)
        staging.rename(self.root / version)
        if make_current:
            write_text(self.root / "current", version + "\n")
        return version


@dataclass(frozen=True)
class Retrain:
    """What one retrain did: the candidate model, whether it became current, and why."""

    model: OptimizerModel | None
    version: str | None
    became_current: bool
    reason: str
    current_holdout_mae: float | None = None

    def as_row(self) -> dict[str, Any]:
        info = self.model.info if self.model is not None else {}
        holdout = info.get("holdout") or {}
        cv = info.get("cross_validated") or {}
        return {"version": self.version, "rows": info.get("rows"),
                "recordings": info.get("recordings"),
                "holdout_wer_mae": _finite(holdout.get("error_mae")),
                "current_holdout_wer_mae": _finite(self.current_holdout_mae),
                "cv_wer_mae": _finite(cv.get("error_mae")),
                "train_seconds": info.get("train_seconds"),
                "became_current": self.became_current, "reason": self.reason}


def _finite(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def retrain(store: ModelStore, examples: Sequence[Example], *, min_examples: int) -> Retrain:
    """Train on ``examples``; the new version becomes current unless the current model scores
    better on the held-out recordings (then it is kept, as a version, and the reason said)."""
    labelled = sum(not math.isnan(e.error) for e in examples)
    if labelled < min_examples:
        return Retrain(None, None, False, f"{labelled} labelled examples, fewer than "
                       f"{min_examples} (CPW_OPTIMIZER_MIN_EXAMPLES): rules decide")
    model = train(examples)
    model.info["examples_seen"] = labelled
    held = [e for e in examples if is_holdout(e.recording)]
    current = store.current()
    new_mae = model.info["holdout"]["error_mae"]
    if current is None:
        version = store.save(model, make_current=True)
        return Retrain(model, version, True, "first model")
    old_mae = current.score(held)["error_mae"] if held else math.nan
    if held and new_mae > old_mae:
        version = store.save(model, make_current=False)
        return Retrain(model, version, False,
                       f"held-out WER error {new_mae:.4f} is worse than the current "
                       f"{current.version}'s {old_mae:.4f}: {current.version} stays", old_mae)
    version = store.save(model, make_current=True)
    why = (f"held-out WER error {new_mae:.4f} vs {old_mae:.4f} ({current.version})" if held
           else "no held-out recordings to compare on: the newer data wins")
    return Retrain(model, version, True, why, old_mae)
