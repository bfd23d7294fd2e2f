"""Lineage is the truth: a changed input re-runs the assets that read it and nothing upstream
or beside it, and an asset cannot read a file of an asset it does not declare."""

from __future__ import annotations

import json

import polars as pl
import pytest
from dagster import AssetKey

from cpw_assets.definitions import defs
from cpw_resources.store.files import PRODUCED_BY, LineageError, TitleFiles
from tests.conftest import JFK, copy_to

CHAIN = ["audio", "transcript", "glossary", "translation", "enhanced_translation", "subtitles"]


def _ran(store, run) -> set[str]:
    rows = store.read("stage_metrics").filter(pl.col("run_id") == run.result.run_id)
    return {a for a, hit in zip(rows["asset"], rows["cache_hit"], strict=True) if not hit}


def _descendants(name: str) -> set[str]:
    graph, found, todo = defs.resolve_asset_graph(), set(), [AssetKey(name)]
    while todo:
        for child in graph.get(todo.pop()).child_keys:
            if child.to_user_string() not in found:
                found.add(child.to_user_string())
                todo.append(child)
    return found


def test_a_changed_input_reruns_exactly_the_assets_downstream(run_title, media_dir, store):
    media = copy_to(JFK, media_dir, "Ask Not.wav")
    first = run_title(media)
    assert first.success
    graph = defs.resolve_asset_graph()
    for n, producer in enumerate(sorted({PRODUCED_BY[f] for f in PRODUCED_BY})):
        assert run_title(media).success  # back to a complete, unchanged title
        # Change what `producer` wrote, without running it: its readers must notice.
        files = TitleFiles(first.dir, first.key)
        for path in files.outputs_of(producer):
            if path.suffix == ".json":
                document = json.loads(path.read_text())
                document["changed_by_test"] = n
                path.write_text(json.dumps(document))
        rest = [a for a in CHAIN if a != producer]
        run = run_title(media, only=rest)
        assert run.success, producer
        ran = _ran(store, run)
        children = {k.to_user_string() for k in graph.get(AssetKey(producer)).child_keys}
        assert children <= ran, (producer, ran)
        assert ran <= _descendants(producer), (producer, ran)


def test_reading_an_undeclared_input_is_a_lineage_error(tmp_path):
    files = TitleFiles(tmp_path, "t").scoped({"transcript"})
    (tmp_path / "transcript.json").write_text('{"segments": []}')
    assert files.transcript() == {"segments": []}
    with pytest.raises(LineageError, match="translation.en.json is written by 'translation'"):
        files.translation("en")
