"""The context learner end to end: what episode 1 confirmed, episode 2 is given; rejections
and corrections in later sidecars are learned; the sensor asks for rebuilds."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import polars as pl
from dagster import RunRequest, SkipReason, build_sensor_context, materialize

from cpw_assets.context import context_memory
from cpw_resources.orchestration.resources import resources_for
from cpw_resources.settings import Settings
from cpw_sensors.context import context_memory_sensor
from tests.conftest import JFK


def _episode(media_dir: Path, n: int, **sidecar: object) -> Path:
    """An episode: the JFK clip with n tenths of a second of silence after it (a copy of
    the same bytes would be the same title to the registry)."""
    media = media_dir / f"Ask Not S01E0{n}.wav"
    with wave.open(str(JFK)) as src:
        params, frames = src.getparams(), src.readframes(src.getnframes())
    with wave.open(str(media), "wb") as out:
        out.setparams(params)
        out.writeframes(frames + b"\0" * (params.sampwidth * params.framerate * n // 10))
    media.with_suffix(".json").write_text(json.dumps(
        {"title": f"Ask Not {n}", "series": "Ask Not", "season": 1, "episode": n, **sidecar}))
    return media


def _glossary(run) -> dict[str, dict]:
    return {t["term"]: t for t in json.loads((run.dir / "glossary.json").read_text())["terms"]}


def test_names_carry_over_episodes_and_the_user_has_the_last_word(
        run_title, media_dir, store, home: Path, instance) -> None:
    settings = Settings(home=home)
    resources = resources_for(settings)

    def sensor():
        with build_sensor_context(instance=instance, resources=resources) as context:
            return context_memory_sensor(context)

    def rebuild() -> dict:
        done = materialize([context_memory], resources=resources)
        assert done.success
        return done.asset_materializations_for_node("context_memory")[0].metadata

    assert isinstance(sensor(), SkipReason)  # nothing learned yet
    ep1 = _episode(media_dir, 1, characters=["Kennedy", "Jacqueline"])
    ep1.with_name("Ask Not S01E01.glossary.tsv").write_text("Americans\t\tthe people\n")
    first = run_title(ep1)
    assert first.success and not any(t["suggested"] for t in _glossary(first).values())
    asked = sensor()
    assert isinstance(asked, RunRequest) and asked.run_key
    meta = rebuild()
    assert meta["titles"].value == 1 and meta["terms"].value == 3
    assert isinstance(sensor(), SkipReason)  # built from what there is

    # Episode 2 has no names of its own: it is given episode 1's, flagged as suggestions,
    # and Whisper hears them before it transcribes.
    second = run_title(_episode(media_dir, 2))
    assert second.success
    given = _glossary(second)
    assert set(given) == {"Kennedy", "Jacqueline", "Americans"}
    assert all(t["suggested"] and t["source"] == "memory" and t["score"] > 0
               for t in given.values()), given
    assert "same series" in given["Kennedy"]["note"]
    names = json.loads((second.dir / "transcript.json").read_text())["names"]
    assert names["given_as"] == "hotwords" and "Americans" in names["given"]
    assert names["occurrences"]["Americans"] == 1
    # A suggestion is never recorded as confirmed by the title it was suggested to.
    rows = store.read("context_terms")
    assert rows.filter(pl.col("title") == second.key).is_empty()

    # Episode 3's user rejects one name and spells another differently.
    third = run_title(_episode(media_dir, 3, characters=["Jaqueline"], reject=["Kennedy"]))
    assert third.success
    given = _glossary(third)
    assert set(given) == {"Jaqueline", "Americans"} and not given["Jaqueline"]["suggested"]
    mine = store.read("context_terms").filter(pl.col("title") == third.key)
    assert sorted(mine.select("term", "status", "source").iter_rows()) == [
        ("Jacqueline", "rejected", "correction"), ("Jaqueline", "confirmed", "sidecar_json"),
        ("Kennedy", "rejected", "sidecar_reject")]
    assert isinstance(sensor(), RunRequest)
    meta = rebuild()
    assert meta["titles"].value == 2 and meta["rejections"].value == 2

    # Episode 4 gets the names as the series now spells them, and not the rejected one.
    fourth = run_title(_episode(media_dir, 4), only=["glossary"])
    assert fourth.success
    assert set(_glossary(fourth)) == {"Jaqueline", "Americans"}
    # With the learner off, a title starts from its own sidecar only.
    off = run_title(_episode(media_dir, 5), only=["glossary"], context_learner="off")
    assert off.success and _glossary(off) == {}
