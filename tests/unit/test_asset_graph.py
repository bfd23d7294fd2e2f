"""Snapshots of the Dagster seam, so an accidental change to it shows up in review.

``seam_snapshot.json`` holds the asset graph (groups, inputs, pools, kinds, checks), each
asset's run config (fields, types, defaults) and the resource set (keys, classes, fields).
After an intended change, refresh it with ``UPDATE_SEAM_SNAPSHOT=1 pytest tests/unit`` and
review the diff.
"""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path

from dagster import AssetKey

from cpw_assets.definitions import defs
from cpw_resources.orchestration.config import ASSET_CONFIGS

SNAPSHOT = Path(__file__).with_name("seam_snapshot.json")


def _type(annotation: object) -> str:
    return str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _fields(model: type) -> dict[str, dict[str, object]]:
    out = {}
    for name, info in model.model_fields.items():
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if hasattr(default, "model_fields"):  # a nested resource
            default = type(default).__name__
        out[name] = {"type": _type(info.annotation), "default": default}
    return out


def seam() -> dict[str, object]:
    graph = defs.resolve_asset_graph()
    assets: dict[str, object] = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        if not node.is_materializable:
            assets[key.to_user_string()] = {"external": True}
            continue
        name = key.to_user_string()
        config = ASSET_CONFIGS.get(name)
        assets[name] = {
            "group": node.group_name,
            "partitioned": node.partitions_def is not None,
            "inputs": sorted(p.to_user_string() for p in node.parent_keys),
            "pools": sorted(node.pools or ()),
            "kinds": sorted(node.kinds),
            "checks": sorted(c.name for c in node.check_keys),
            "config": _fields(config) if config else None,
        }
    resources = {key: {"class": type(r).__name__,
                       "fields": _fields(type(r)) if hasattr(r, "model_fields") else None}
                 for key, r in sorted(defs.resources.items())}
    return {"assets": assets, "resources": resources,
            "jobs": sorted(j.name for j in defs.jobs),
            "sensors": sorted(s.name for s in defs.sensors),
            "schedules": sorted(s.name for s in defs.schedules)}


def test_seam_matches_the_snapshot() -> None:
    current = json.loads(json.dumps(seam(), default=str))
    if os.environ.get("UPDATE_SEAM_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(current, indent=1, ensure_ascii=False) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected, (
        "the Dagster seam changed; if intended, refresh seam_snapshot.json with "
        "UPDATE_SEAM_SNAPSHOT=1 and review the diff")


PER_TITLE = {
    "media": set(),
    "audio": {"media"},
    # The glossary comes before the transcript: its names are Whisper's hotwords.
    "transcript": {"audio", "glossary"},
    "glossary": {"media", "context_memory"},
    "translation": {"transcript", "glossary", "audio"},
    "enhanced_translation": {"translation", "transcript", "glossary"},
    "subtitles": {"enhanced_translation", "transcript", "audio"},  # audio: the preview
}


def test_graph_shape_and_partitions() -> None:
    graph = defs.resolve_asset_graph()
    for name, parents in PER_TITLE.items():
        node = graph.get(AssetKey(name))
        assert {p.to_user_string() for p in node.parent_keys} == parents
        assert node.partitions_def is not None and node.partitions_def.name == "titles"
    # Whisper steps take machine-wide flock slots instead of a Dagster pool: a step waiting
    # for a pool slot spins and ignores SIGTERM, and a killed run keeps its pool slot.
    assert not graph.get(AssetKey("transcript")).pools
    assert not graph.get(AssetKey("translation")).pools
    job = defs.resolve_job_def("subtitle_job")
    assert job.executor_def.name == "in_process"
    checks = {key.name for key in graph.asset_check_keys
              if key.asset_key.to_user_string() in PER_TITLE}
    assert checks == {"follows_subtitle_rules", "tmdb_names", "translation_complete",
                      "enhancement_complete", "not_worse_than_baseline", "names_intact"}


def test_secrets_are_environment_variable_names() -> None:
    """A set key reaches its resource as an EnvVar (the UI shows the name, never the value);
    an unset one leaves the field empty."""
    from dagster import EnvVar

    from cpw_resources.orchestration.resources import SECRETS, resources_for
    from cpw_resources.settings import Settings

    environ = {var: f"secret-value-{i}" for i, var in enumerate(SECRETS.values())}
    resources = resources_for(Settings(), environ)
    for (owner, field), var in SECRETS.items():
        raw = getattr(resources[owner], field)
        assert isinstance(raw, EnvVar) and raw.env_var_name == var, (owner, field)
    shown = json.dumps({k: r.model_dump() for k, r in resources.items()
                        if hasattr(r, "model_dump")}, default=repr)
    assert "secret-value" not in shown
    empty = resources_for(Settings(), {})
    assert all(getattr(empty[owner], field) is None for owner, field in SECRETS)


def test_config_fields_mirror_settings() -> None:
    """Every run-config field names the setting it defaults from, and the types agree."""
    from cpw_resources.settings import Settings

    for cls in ASSET_CONFIGS.values():
        for name, info in cls.model_fields.items():
            setting = info.json_schema_extra["setting"]
            assert setting in Settings.model_fields, (cls.__name__, name)
            hints = typing.get_type_hints(cls)
            assert _type(hints[name]) == _type(Settings.model_fields[setting].annotation), name
