from pathlib import Path

import pytest
from dagster import DynamicPartitionsDefinition, instance_for_test

from cpw_resources.errors import MediaError, UnknownTitleError
from cpw_resources.titles import TitleRegistry, slug_for


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Dil Chahta Hai (2001).mkv", "dil_chahta_hai_2001"),
        ("Lagaan, Once Upon a Time | India.mp4", "lagaan_once_upon_a_time_india"),
        ("Sholay/1975?.avi".replace("/", "_"), "sholay_1975"),
        ("दिल चाहता है.mkv", "dil_caahtaa_hai"),
        ("....mp4", "title"),
        ("ÉPISODE 01 — Pilote.webm", "episode_01_pilote"),
    ],
)
def test_slug_is_readable_and_partition_safe(name: str, key: str) -> None:
    slug = slug_for(Path(name))
    assert slug == key
    assert not set(slug) & set(",|/\\[]{}*?\"' ")


def test_same_file_twice_same_key_and_different_file_same_name_distinct(tmp_path: Path) -> None:
    registry = TitleRegistry(tmp_path / "titles")
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir(), b_dir.mkdir()
    first = a_dir / "Dil Chahta Hai (2001).mkv"
    first.write_bytes(b"first film" * 1000)
    other = b_dir / "Dil Chahta Hai (2001).mkv"
    other.write_bytes(b"another film" * 1000)

    key1 = registry.register(first).key
    assert registry.register(first).key == key1 == "dil_chahta_hai_2001"
    key2 = registry.register(other).key
    assert key2 != key1 and key2.startswith("dil_chahta_hai_2001_")
    assert registry.register(other).key == key2
    # A byte-identical copy elsewhere is the same title.
    copy = tmp_path / "Copy.mkv"
    copy.write_bytes(first.read_bytes())
    assert registry.register(copy).key == key1
    assert {t.key for t in registry.all()} == {key1, key2}


def test_keys_are_valid_dynamic_partitions(tmp_path: Path) -> None:
    registry = TitleRegistry(tmp_path / "titles")
    weird = tmp_path / "Kabhi Khushi, Kabhie Gham | 2001 [HD] — बॉलीवुड.mkv"
    weird.write_bytes(b"x" * 10)
    key = registry.register(weird).key
    partitions = DynamicPartitionsDefinition(name="titles")
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(partitions.name, [key])
        assert partitions.get_partition_keys(dynamic_partitions_store=instance) == [key]


def test_errors_name_the_problem(tmp_path: Path) -> None:
    registry = TitleRegistry(tmp_path / "titles")
    with pytest.raises(MediaError, match="no such file"):
        registry.register(tmp_path / "missing.mkv")
    with pytest.raises(UnknownTitleError, match="cpw register"):
        registry.get("nope")
