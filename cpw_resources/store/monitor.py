"""Stage measurement: wall seconds, CPU seconds (all threads), peak RSS, bytes in and out."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def total_bytes(paths: Iterable[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


@dataclass
class StageTimer:
    inputs: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    _wall0: float = field(default_factory=time.perf_counter)
    _cpu0: float = field(default_factory=_cpu_seconds)

    def stop(self) -> dict[str, float | int]:
        return {
            "wall_seconds": round(time.perf_counter() - self._wall0, 3),
            "cpu_seconds": round(_cpu_seconds() - self._cpu0, 3),
            "peak_rss_mb": round(_peak_rss_mb(), 1),
            "input_bytes": total_bytes(self.inputs),
            "output_bytes": total_bytes(self.outputs),
        }
