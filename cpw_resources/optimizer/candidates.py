"""The configs the optimizer chooses among, kept explicit.

A candidate is a Whisper model and the decoding options that trade time for accuracy:

- ``model``: every model the registry can load (``tiny.en`` and ``base`` install from PyPI;
  any other CTranslate2 model in ``whisper_models_dir`` joins the space). English-only models
  are candidates for English audio only.
- ``beam_size``: 1 (greedy), 2 or 5 (plain Whisper's default).
- ``vad_threshold``: Silero VAD's speech probability threshold, 0.5 (its default) or 0.35
  (keeps quieter speech under music and noise, at the price of decoding more audio).
- ``temperature_fallback``: Whisper's retries at higher temperatures when a window's text
  fails its checks (on, the default), or one greedy/beam pass only (off: faster, no rescue).

Not in the space, and why: the translation route, which is chosen per spoken language from
the corpus measurements instead (``CPW_TRANSLATION_BACKEND=auto``: the local model where
``bench_local_llm.py`` measured its English better than Whisper's translate task; see
:mod:`cpw_resources.language.targets`), since a per-title choice would need a BLEU label per
route for every title and only the corpus films have English references; and source separation
(the `vocals` stage does not exist yet). Batched decoding stays out until the corpus shows it
does not hurt (it measured 48 % WER against 19 % sequential on real long-form speech).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

BEAMS = (1, 2, 5)
VAD_THRESHOLDS = (0.5, 0.35)
TEMPERATURE_FALLBACK = (True, False)

#: Parameters (millions) of the Whisper sizes, a numeric feature that orders models the
#: optimizer has not seen among the ones it has.
_SIZES_M = {"tiny": 39, "base": 74, "small": 244, "medium": 769, "large": 1550,
            "distil-large": 756, "large-v3-turbo": 809}


@dataclass(frozen=True, order=True)
class Candidate:
    model: str
    beam_size: int = 5
    vad_threshold: float = 0.5
    temperature_fallback: bool = True

    @property
    def key(self) -> str:
        return (f"{self.model}/beam{self.beam_size}/vad{self.vad_threshold:g}/"
                f"{'fallback' if self.temperature_fallback else 'nofallback'}")

    def as_dict(self) -> dict:
        return asdict(self)


def model_size_m(model: str) -> float:
    """Millions of parameters for a Whisper model name (or directory named after one); the
    size of ``base`` when the name says nothing."""
    name = re.sub(r"^(faster-whisper-|whisper-)", "", model.rsplit("/", 1)[-1].lower())
    name = name.removesuffix(".en")
    for prefix in sorted(_SIZES_M, key=len, reverse=True):
        if name.startswith(prefix):
            return float(_SIZES_M[prefix])
    return float(_SIZES_M["base"])


def candidates(models: Iterable[str], *, english: bool) -> list[Candidate]:
    """Every candidate for audio that is (``english``) or is not English, over ``models``
    (English-only models, :func:`~cpw_resources.speech.models.is_english_only`, need the
    former)."""
    from cpw_resources.speech.models import is_english_only

    usable = [m for m in dict.fromkeys(models) if english or not is_english_only(m)]
    return sorted(Candidate(m, beam, vad, fallback)
                  for m in usable for beam in BEAMS for vad in VAD_THRESHOLDS
                  for fallback in TEMPERATURE_FALLBACK)
