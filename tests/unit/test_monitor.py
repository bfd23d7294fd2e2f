"""The stage monitor measures the stage, not the process: a stage after a large one reports
its own peak RSS; CPU % is sampled over time; I/O bytes are the stage's."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from cpw_resources.store.monitor import StageTimer

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")


#: Two stages in a fresh process, as in a run's process: the suite's own process has held
#: gigabytes of models by the time this runs, which says nothing about a stage's peak.
TWO_STAGES = """
import json
import numpy as np
from cpw_resources.store.monitor import StageTimer
large = StageTimer(sample=False)
block = np.ones(400 * 2**20 // 8)  # 400 MiB, touched
assert block.sum() > 0
measured_large = large.stop()
del block
small = StageTimer(sample=False)
print(json.dumps([measured_large["peak_rss_mb"], small.stop()["peak_rss_mb"]]))
"""


@linux
def test_a_stage_after_a_larger_one_reports_its_own_peak():
    done = subprocess.run([sys.executable, "-c", TWO_STAGES], capture_output=True, text=True,
                          check=True)
    large, small = json.loads(done.stdout)
    assert large >= 400
    assert small < large - 300


def test_cpu_is_sampled_over_time_and_the_thread_can_be_off():
    timer = StageTimer(interval_s=0.1)
    until = time.perf_counter() + 0.6
    while time.perf_counter() < until:
        sum(range(1000))
    measured = timer.stop()
    assert measured["cpu_percent_max"] is not None and measured["cpu_percent_max"] > 50
    assert 50 < measured["cpu_percent_mean"] <= 100 * 2 + 1
    idle = StageTimer(sample=False)
    time.sleep(0.3)
    quiet = idle.stop()
    assert quiet["cpu_percent_max"] is None and quiet["cpu_percent_mean"] < 20
    assert quiet["gpu_util_mean"] is None or quiet["gpu_util_mean"] >= 0


@linux
def test_io_bytes_are_the_stages(tmp_path):
    timer = StageTimer(sample=False, outputs=[tmp_path / "out.bin"])
    (tmp_path / "out.bin").write_bytes(b"\0" * (5 << 20))
    measured = timer.stop()
    assert measured["write_bytes"] >= 5 << 20
    assert measured["output_bytes"] == 5 << 20
    later = StageTimer(sample=False).stop()
    assert later["write_bytes"] < 1 << 20
