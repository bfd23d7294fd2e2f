"""``preview.html`` through the real graph, opened in headless Chromium with no network: the
track's cues load, in order, and show as the audio goes by; the page asks nothing from the
network; the subtitles asset links it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.conftest import JFK, copy_to

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _selftest(page) -> dict:
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--autoplay-policy=no-user-gesture-required", "--virtual-time-budget=60000",
         # No network: every host resolves nowhere, so a fetch from outside would fail.
         "--host-resolver-rules=MAP * ~NOTFOUND", "--dump-dom",
         f"{page.as_uri()}#selftest"],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="selftest">([^<]*)</pre>', done.stdout)
    assert found and found.group(1), done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(found.group(1))


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                    "(.ci/run installs it): the page cannot be opened")
def test_the_preview_plays_its_cues_in_order(run_title, media_dir):
    run = run_title(copy_to(JFK, media_dir))
    assert run.success
    page = run.dir / "preview.en.html"
    assert page.is_file()
    meta = [e.materialization.metadata for e in run.result.get_asset_materialization_events()
            if e.asset_key.path == ["subtitles"]][0]
    assert meta["preview"].value == str(page)
    text = page.read_text()
    # Self-contained: no script, style or font from anywhere but the page itself.
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert 'src="audio.wav"' in text
    vtt_cues = (run.vtt().read_text().count("-->"))
    result = _selftest(page)
    assert result["errors"] == []
    assert result["loaded"] == result["expected"] == vtt_cues >= 2
    assert result["in_order"] and result["texts_match"] and result["plays"]
    shown = [c for c in json.loads(re.search(
        r'<script id="data" type="application/json">(.*?)</script>', text,
        re.S).group(1).replace("<\\/", "</"))["cues"]]
    assert result["played"] == [c["text"] for c in shown]
