"""Enhanced lines still fit the screen: the French sample through the real graph, every line
sent (``CPW_ENHANCE_ALL``) to the loopback post-editor of ``benchmarks/`` as a ``compatible``
provider on 127.0.0.1, which lengthens every line. Edits within their character budget are
taken, the rest keep the MT after one more ask, and the subtitles stay compliant."""

from __future__ import annotations

import importlib.util
import json

import pytest

from cpw_resources.llm.engine import implausible
from cpw_resources.records import Segment, read_segments
from cpw_resources.subtitles.quality import rule_compliance
from tests.conftest import REPO, SAMPLE, copy_to

_spec = importlib.util.spec_from_file_location(
    "loopback_post_editor", REPO / "benchmarks" / "loopback_post_editor.py")
loopback_post_editor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(loopback_post_editor)


@pytest.fixture
def post_editor(monkeypatch):
    with loopback_post_editor.loopback() as url:
        monkeypatch.setenv("CPW_COMPATIBLE_BASE_URL", url)
        monkeypatch.setenv("CPW_ENHANCE_PROVIDER", "compatible:loopback")
        monkeypatch.setenv("CPW_ENHANCE_ALL", "true")
        monkeypatch.setenv("CPW_ENHANCE_BATCH_SIZE", "4")
        yield url


def _meta(run, asset):
    return {k: v.value for e in run.result.get_asset_materialization_events()
            if e.asset_key.path == [asset] for k, v in e.materialization.metadata.items()}


def test_a_lengthening_post_editor_keeps_subtitles_compliant(run_title, media_dir, store,
                                                             post_editor):
    media = copy_to(SAMPLE, media_dir, "Voicemail (2009).mka")
    run = run_title(media, whisper_model="base")
    assert run.success
    mt = read_segments(json.loads((run.dir / "translation.en.json").read_text()))
    enhanced = json.loads((run.dir / "enhanced.en.json").read_text())
    decisions = {d["id"]: d for d in enhanced["decisions"]}
    texts = {s["id"]: s["text"] for s in enhanced["segments"]}

    # Every line lengthened, as the post-editor answers, would break the reading speed.
    longer = [Segment(s.id, s.start, s.end, loopback_post_editor.lengthen(s.text, s.id))
              for s in mt]
    assert rule_compliance(mt) >= 0.98 > rule_compliance(longer)

    # Edits that fit are taken, longer ones keep the MT; an answer many times its line's
    # width (a one-word line given a whole clause) is not even plausible and keeps it too.
    statuses = {d["status"] for d in decisions.values()}
    assert {"enhanced", "over_char_budget"} <= statuses <= {"enhanced", "over_char_budget",
                                                             "rejected"}
    for segment, long in zip(mt, longer, strict=True):
        decision = decisions[segment.id]
        assert decision["max_chars"] >= len(segment.text)
        if decision["status"] == "enhanced":
            assert texts[segment.id] == long.text and len(long.text) <= decision["max_chars"]
        elif decision["status"] == "rejected":
            assert texts[segment.id] == segment.text
            assert implausible(long.text, [segment.text]) is not None
        else:
            assert texts[segment.id] == segment.text and len(long.text) > decision["max_chars"]

    meta = _meta(run, "enhanced_translation")
    assert meta["enhanced_rule_compliance"] >= 0.98
    assert meta["over_char_budget"] == sum(d["status"] == "over_char_budget"
                                           for d in decisions.values())
    subtitles = _meta(run, "subtitles")
    assert subtitles["cues"] > 0 and subtitles["rule_violations"] / subtitles["cues"] <= 0.02
    degradations = store.read("degradations")
    assert sorted(set(degradations["kind"].to_list())) == sorted(
        {"enhance_over_char_budget"} | ({"enhance_rejected"} if "rejected" in statuses else set()))
    assert any("(over_char_budget)" in message for message in degradations["message"])
    assert not run.check("enhancement_complete").passed  # it warns: MT kept for some lines
    assert run.check("not_worse_than_baseline").passed
