"""The choice for one title: pinned, off, the learned model, or transparent rules.

- **pinned**: the user named the config (the title's sidecar ``<film>.cpw.yaml`` ``whisper:``
  block, or ``optimizer: off`` in the run config with the model and beam set there);
- **off**: the optimizer is switched off (setting ``CPW_OPTIMIZER=off``): the default config;
- **model**: a trained model exists with at least ``min_examples`` training rows: the cheapest
  candidate within ``tolerance`` of the best predicted WER (:func:`model.choose`), among the
  candidates it has labels for (and the default): a config never measured is never guessed;
- **rules** otherwise, said as such: hard audio (SNR under :data:`HARD_SNR_DB` or music over
  :data:`HARD_MUSIC_RATIO` of the film) gets the largest installed model that can transcribe
  the language, with beam 5 or more; any other audio keeps the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cpw_resources.optimizer.candidates import Candidate, model_size_m
from cpw_resources.optimizer.model import OptimizerModel, choose

HARD_SNR_DB = 10.0
HARD_MUSIC_RATIO = 0.3


@dataclass(frozen=True)
class Decision:
    candidate: Candidate
    source: str  # "pinned", "off", "rules" or the model's version
    reason: str
    predicted_error: float | None = None
    predicted_seconds_per_audio_s: float | None = None

    def as_metadata(self) -> dict[str, Any]:
        return {"config": self.candidate.key, "source": self.source, "reason": self.reason,
                "predicted_wer": _round(self.predicted_error),
                "predicted_seconds_per_audio_s": _round(self.predicted_seconds_per_audio_s)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def is_hard(audio: Mapping[str, float]) -> bool:
    snr, music = audio.get("snr_db"), audio.get("music_ratio")
    return bool((snr is not None and snr == snr and snr < HARD_SNR_DB)
                or (music is not None and music == music and music > HARD_MUSIC_RATIO))


def decide(audio: Mapping[str, float], candidates: Sequence[Candidate], default: Candidate, *,
           model: OptimizerModel | None, min_examples: int, tolerance: float,
           pinned: Candidate | None = None, enabled: bool = True) -> Decision:
    if pinned is not None:
        return Decision(pinned, "pinned", "the title's config is pinned")
    if not enabled:
        return Decision(default, "off", "optimizer off (CPW_OPTIMIZER=off): default config")
    options = list(dict.fromkeys([default, *candidates]))
    rows = int((model.info or {}).get("rows", 0)) if model is not None else 0
    known = set((model.info or {}).get("configs", ())) if model is not None else set()
    labelled = [c for c in options if c.key in known]
    if model is not None and rows >= min_examples and labelled:
        options = list(dict.fromkeys([default, *labelled]))
        predictions = model.predict(audio, options)
        chosen = choose(predictions, tolerance)
        best = min(p.error for p in predictions)
        return Decision(chosen.candidate, model.version,
                        f"fastest of {len(options)} candidates within {tolerance:.3f} WER of "
                        f"the best predicted ({best:.3f})",
                        chosen.error, chosen.seconds_per_audio_s)
    why = (f"{rows} training examples, fewer than {min_examples}" if model is not None
           else "no optimizer model trained yet")
    if is_hard(audio):
        model_name = max((c.model for c in options),
                         key=lambda m: (model_size_m(m), m == default.model))
        chosen = Candidate(model_name, max(default.beam_size, 5), default.vad_threshold,
                           default.temperature_fallback)
        return Decision(chosen, "rules", f"{why}; hard audio (SNR "
                        f"{audio.get('snr_db', float('nan')):.1f} dB, music "
                        f"{audio.get('music_ratio', float('nan')):.2f}): strongest config")
    return Decision(default, "rules", f"{why}; default config")
