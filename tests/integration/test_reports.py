"""The report pages from real runs: written beside their PNG charts, linked from the assets'
metadata, self-contained, and every chart drawn when opened in headless Chromium with the
network mapped to nowhere; recommendations carry the figures that triggered them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from dagster import materialize

from cpw_assets.reports import cost_report, performance_report
from cpw_resources.orchestration.resources import resources_for
from cpw_resources.settings import Settings
from tests.conftest import JFK, copy_to

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _selftest(page) -> dict:
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000", "--dump-dom",
         f"{page.as_uri()}#selftest"], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="selftest">([^<]*)</pre>', done.stdout)
    assert found and found.group(1), done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(found.group(1))


def test_reports_from_real_runs(run_title, media_dir, home, instance):
    media = copy_to(JFK, media_dir)
    assert run_title(media).success and run_title(media).success  # the second from the cache

    resources = resources_for(Settings(home=home))
    result = materialize([performance_report, cost_report], instance=instance,
                         resources={"store": resources["store"], "llm": resources["llm"]})
    assert result.success
    meta = {e.asset_key.path[-1]: e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    pages = {}
    for asset, name, charts in (("performance_report", "performance.html", 3),
                                ("cost_report", "costs.html", 2)):
        page = home / "reports" / name
        assert meta[asset]["report"].value == page.resolve().as_uri()
        pngs = meta[asset]["charts"].value
        assert len(pngs) == charts
        for png in pngs.values():
            with open(png, "rb") as handle:
                assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
        text = page.read_text()
        assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing from the network
        pages[asset] = (page, charts, text)

    perf_text = pages["performance_report"][2]
    # jfk.wav with tiny.en: Whisper is most of the time, and the advice says by how much.
    assert 'data-rule="transcript_dominates"' in perf_text
    assert re.search(r"transcript share \d+%", perf_text)
    assert "recommendations" in meta["performance_report"]
    # Compute is priced (the shipped [compute] prices), outside calls were none.
    assert float(meta["cost_report"]["compute"].value.lstrip("$")) > 0
    assert meta["cost_report"]["outside calls"].value == "0 · $0.00"

    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it): pages written "
                    "and checked, not opened")
    for page, charts, _ in pages.values():
        result = _selftest(page)
        assert result["errors"] == []
        assert result["charts"] == charts and len(result["drawn"]) == charts, result
        assert result["images"] == 0
