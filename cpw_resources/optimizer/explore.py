"""Exploration: a few titles also try a neighbouring config on a slice of their audio.

The optimizer learns only from configs it has labels for, so it would never learn about the
ones next to what it picks. A share of titles (``CPW_OPTIMIZER_EXPLORE_SHARE``, chosen by a
hash of the title's key, so a re-run explores the same way) decode one slice from the middle
of the film, at most ``CPW_OPTIMIZER_EXPLORE_SECONDS`` and never more than a tenth of the film,
with the chosen config and with its least-labelled neighbour (one field changed: the model,
the beam, the VAD threshold or the fallback). Both are timed; with a reference subtitle beside
the film both get a WER too. The title's own subtitles never use what the slice produced.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields

from cpw_resources.optimizer.candidates import Candidate

#: The slice is at most this share of the film, so exploring never costs the whole title.
MAX_SHARE_OF_FILM = 0.1


def explores(key: str, share: float) -> bool:
    """Whether title ``key`` explores (a fixed share of titles, the same ones every run)."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"explore:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def neighbour(chosen: Candidate, space: Sequence[Candidate],
              labels: Mapping[str, int]) -> Candidate | None:
    """The candidate one field away from ``chosen`` with the fewest labels so far."""
    names = [f.name for f in fields(Candidate)]
    near = [c for c in space
            if sum(getattr(c, n) != getattr(chosen, n) for n in names) == 1]
    return min(near, key=lambda c: (labels.get(c.key, 0), c.key)) if near else None


def slice_span(duration_s: float, seconds: float) -> tuple[float, float] | None:
    """(start, end) of the middle slice, or None when the film is too short to spare one."""
    length = min(seconds, duration_s * MAX_SHARE_OF_FILM)
    if length < 5.0:
        return None
    start = (duration_s - length) / 2
    return start, start + length


@dataclass(frozen=True)
class Trial:
    candidate: Candidate
    seconds: float
    audio_seconds: float
    wer: float | None


def run_trials(configs: Sequence[Candidate],
               decode: Callable[[Candidate], tuple[str, float]],
               score: Callable[[str], float | None]) -> list[Trial]:
    """Decode the slice with each config (``decode`` returns its text and audio seconds),
    timed, and score each text (``score``: WER against the reference, or None)."""
    trials = []
    for candidate in configs:
        started = time.perf_counter()
        text, audio_seconds = decode(candidate)
        trials.append(Trial(candidate, time.perf_counter() - started, audio_seconds,
                            score(text)))
    return trials
