"""Stage measurement: what one stage used, not what the process had used before it.

:class:`StageTimer` measures a stage from its start to :meth:`StageTimer.stop`:

- wall seconds, and CPU seconds of every thread of the process (and of child processes it
  waited for: Whisper, PyAV and ONNX threads are all in-process);
- **peak RSS within the stage**. On Linux the kernel's high-water mark is reset at the stage's
  start (``/proc/self/clear_refs``, value 5) and read at its end (``VmHWM``), so a stage after
  a larger one reports its own peak, exactly, with no sampling; elsewhere (macOS) the sampling
  thread's maximum is used. (``ru_maxrss``, used before, is the whole process's peak so far.)
- **CPU % over time**: a sampling thread reads the process's CPU time every
  ``interval_s`` (0.5 s) and keeps each interval's share of one core (100 % = one core busy);
  the stage records the mean and the highest interval;
- **I/O**: bytes the process read and wrote through the kernel during the stage (``read_chars``
  / ``write_chars`` of ``/proc/self/io``: files and pipes, page cache included), and the
  sizes of the stage's declared input and output files;
- **GPU**: on a machine with an NVIDIA GPU and ``nvidia-ml-py`` (``pynvml``) installed, the
  sampling thread also reads NVML's utilisation and memory in use of the GPUs this process
  can see; mean utilisation and peak memory are recorded (None elsewhere), and the stage's
  wall time as ``gpu_seconds`` when this process held memory on one of them (its GPU time,
  priced by ``gpu_hour`` of the pricing file's ``[compute]``).

The thread wakes twice a second and does a few system calls; ``benchmarks/bench_monitor.py``
measures its cost on a whole title (monitor on against off, ``CPW_STAGE_MONITOR``).
"""

from __future__ import annotations

import functools
import os
import re
import resource
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Seconds between samples of the sampling thread.
SAMPLE_INTERVAL_S = 0.5
_PROC = Path("/proc/self")


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _process_peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux ≥ 4.0); False where it can't."""
    try:
        (_PROC / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _status_mb(field_name: str) -> float | None:
    """``VmHWM`` / ``VmRSS`` of /proc/self/status in MiB, None where there is no /proc."""
    try:
        found = re.search(rf"^{field_name}:\s+(\d+) kB", (_PROC / "status").read_text(), re.M)
    except OSError:
        return None
    return int(found.group(1)) / 1024 if found else None


def _rss_mb() -> float | None:
    current = _status_mb("VmRSS")
    if current is not None:
        return current
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with Dagster
        return None
    return psutil.Process().memory_info().rss / (1 << 20)


def _io_chars() -> tuple[int, int] | None:
    """(read, written) bytes through the kernel so far, None where there is no /proc/self/io."""
    try:
        text = (_PROC / "io").read_text()
    except OSError:
        return None
    values = dict(re.findall(r"^(\w+):\s+(\d+)$", text, re.M))
    return int(values.get("rchar", 0)), int(values.get("wchar", 0))


class _Gpu:
    """NVML readings of the GPUs this process sees; absent without a GPU or ``pynvml``."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            count = pynvml.nvmlDeviceGetCount()
            indexes = ([int(i) for i in visible.split(",") if i.strip().isdigit()]
                       if visible else range(count))
            self.nvml = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in indexes if i < count]
        except Exception:  # no library, no driver, no device: no GPU readings
            self.handles = []

    def read(self) -> tuple[float, float, bool] | None:
        """(mean utilisation %, memory in use MiB, whether this process holds memory on one
        of them) over the GPUs, or None."""
        if not self.handles:
            return None
        pid = os.getpid()
        try:
            util = [self.nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self.handles]
            used = [self.nvml.nvmlDeviceGetMemoryInfo(h).used for h in self.handles]
            ours = any(p.pid == pid for h in self.handles
                       for p in self.nvml.nvmlDeviceGetComputeRunningProcesses(h))
        except Exception:
            return None
        return sum(util) / len(util), sum(used) / (1 << 20), ours


@functools.cache
def _gpu() -> _Gpu:
    """NVML, looked up once per process (not at every stage)."""
    return _Gpu()


def total_bytes(paths: Iterable[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


class _Sampler(threading.Thread):
    """Every ``interval_s``: the process's CPU share since the last sample, RSS and GPU."""

    def __init__(self, interval_s: float) -> None:
        super().__init__(name="cpw-stage-monitor", daemon=True)
        self.interval_s = interval_s
        self.stopping = threading.Event()
        self.cpu_percent: list[float] = []
        self.rss_peak_mb = 0.0
        self.gpu_util: list[float] = []
        self.gpu_memory_peak_mb: float | None = None
        self.on_gpu = False  # this process held GPU memory in some sample
        self.gpu = _gpu()
        self._sample_rss()

    def _sample_rss(self) -> None:
        rss = _rss_mb()
        if rss is not None:
            self.rss_peak_mb = max(self.rss_peak_mb, rss)

    def run(self) -> None:
        last_wall, last_cpu = time.perf_counter(), _cpu_seconds()
        while not self.stopping.wait(self.interval_s):
            wall, cpu = time.perf_counter(), _cpu_seconds()
            if wall > last_wall:
                self.cpu_percent.append(100.0 * (cpu - last_cpu) / (wall - last_wall))
            last_wall, last_cpu = wall, cpu
            self._sample_rss()
            reading = self.gpu.read()
            if reading is not None:
                self.gpu_util.append(reading[0])
                self.gpu_memory_peak_mb = max(self.gpu_memory_peak_mb or 0.0, reading[1])
                self.on_gpu |= reading[2]

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        self._sample_rss()


@dataclass
class StageTimer:
    """Measures one stage from construction to :meth:`stop` (see the module docstring).
    ``sample`` False: no sampling thread (wall, CPU, exact peak RSS and I/O only)."""

    inputs: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    sample: bool = True
    interval_s: float = SAMPLE_INTERVAL_S
    _wall0: float = field(default_factory=time.perf_counter)
    _cpu0: float = field(default_factory=_cpu_seconds)
    _io0: tuple[int, int] | None = field(default_factory=_io_chars)
    _exact_peak: bool = field(default_factory=_reset_peak)
    _sampler: _Sampler | None = None

    def __post_init__(self) -> None:
        if self.sample:
            self._sampler = _Sampler(self.interval_s)
            self._sampler.start()

    def stop(self) -> dict[str, Any]:
        wall = time.perf_counter() - self._wall0
        cpu = _cpu_seconds() - self._cpu0
        sampler = self._sampler
        if sampler is not None:
            sampler.stop()
        peak = _status_mb("VmHWM") if self._exact_peak else None
        if peak is None:
            peak = sampler.rss_peak_mb if sampler is not None else _process_peak_mb()
        io = _io_chars()
        read = written = None
        if io is not None and self._io0 is not None:
            read, written = io[0] - self._io0[0], io[1] - self._io0[1]
        samples = sampler.cpu_percent if sampler is not None else []
        gpu = sampler.gpu_util if sampler is not None else []
        return {
            "wall_seconds": round(wall, 3),
            "cpu_seconds": round(cpu, 3),
            "peak_rss_mb": round(peak, 1),
            "cpu_percent_mean": round(100.0 * cpu / wall, 1) if wall > 0 else None,
            "cpu_percent_max": round(max(samples), 1) if samples else None,
            "read_bytes": read,
            "write_bytes": written,
            "input_bytes": total_bytes(self.inputs),
            "output_bytes": total_bytes(self.outputs),
            "gpu_util_mean": round(sum(gpu) / len(gpu), 1) if gpu else None,
            "gpu_memory_peak_mb": (round(sampler.gpu_memory_peak_mb, 1)
                                   if sampler is not None and sampler.gpu_memory_peak_mb
                                   else None),
            # The stage held a GPU for its wall time when the process was on one (priced as
            # GPU time); None where no GPU could be read.
            "gpu_seconds": (None if sampler is None or not sampler.gpu.handles
                            else round(wall, 3) if sampler.on_gpu else 0.0),
        }
