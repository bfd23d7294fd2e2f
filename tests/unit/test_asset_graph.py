"""A snapshot of the asset graph, so an accidental change to it shows up in review."""

from dagster import AssetKey

from cpw_assets.definitions import defs

EXPECTED = {
    "media": set(),
    "audio": {"media"},
    "transcript": {"audio"},
    "glossary": {"transcript"},
    "translation": {"glossary"},
    "enhanced_translation": {"translation"},
    "subtitles": {"enhanced_translation"},
}
UNPARTITIONED = {"metrics_models"}


def test_graph_shape_and_partitions() -> None:
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == set(EXPECTED) | UNPARTITIONED
    for name, parents in EXPECTED.items():
        node = graph.get(AssetKey(name))
        assert {p.to_user_string() for p in node.parent_keys} == parents
        assert node.partitions_def is not None and node.partitions_def.name == "titles"
    assert graph.get(AssetKey("transcript")).pools == {"asr"}
    assert graph.get(AssetKey("translation")).pools == {"asr"}
    assert graph.get(AssetKey("metrics_models")).pools == {"duckdb"}
    job = defs.resolve_job_def("subtitle_job")
    assert job.executor_def.name == "in_process"
    checks = {key.name for key in graph.asset_check_keys}
    assert checks == {"follows_subtitle_rules", "tmdb_names", "translation_complete",
                      "enhancement_complete", "not_worse_than_baseline", "names_intact"}
