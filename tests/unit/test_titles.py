import json
from pathlib import Path

import pytest
from dagster import DynamicPartitionsDefinition, instance_for_test

from cpw_resources.errors import MediaError, UnknownTitleError
from cpw_resources.store.sidecars import Sidecars, is_media_name, sidecar_id, sidecar_stat
from cpw_resources.store.titles import TitleRegistry, content_id, slug_for


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


# --- the index, batches, aliases and sidecars --------------------------------------------------


def _film(folder: Path, name: str, body: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(body)
    return path


def test_register_many_writes_one_index_that_finds_paths_and_content(tmp_path: Path) -> None:
    registry = TitleRegistry(tmp_path / "titles")
    films = [_film(tmp_path / "in", f"Film {i}.mkv", b"film %d" % i * 100) for i in range(5)]
    titles = registry.register_many(films)
    assert [titles[f].key for f in films] == [f"film_{i}" for i in range(5)]
    assert registry.register(films[0]).key == "film_0"

    index = registry.index()
    assert set(index.titles) == {f"film_{i}" for i in range(5)}
    stat = films[2].stat()
    assert index.is_unchanged(str(films[2].resolve()), stat.st_size, stat.st_mtime_ns)
    assert not index.is_unchanged(str(films[2].resolve()), stat.st_size, stat.st_mtime_ns + 1)
    assert index.by_content[content_id(films[3])] == "film_3"
    record = json.loads((tmp_path / "titles" / "film_1" / "title.json").read_text())
    assert record["mtime_ns"] == films[1].stat().st_mtime_ns


def test_index_is_rebuilt_when_missing_corrupt_or_stale(tmp_path: Path) -> None:
    titles_dir = tmp_path / "titles"
    registry = TitleRegistry(titles_dir)
    a = _film(tmp_path / "in", "A.mkv", b"a" * 100)
    registry.register(a)
    index_path = titles_dir / "_index.json"
    expected = registry.index().to_json()

    index_path.unlink()
    assert registry.index().to_json() == expected and index_path.exists()
    index_path.write_text("{ torn")
    assert registry.index().to_json() == expected
    assert json.loads(index_path.read_text()) == expected

    # A title registered behind the index's back (older code, a restore) is noticed.
    b = _film(tmp_path / "in", "B.mkv", b"b" * 100)
    record = json.loads((titles_dir / "a" / "title.json").read_text())
    record.update(key="b", media_path=str(b.resolve()), content_id=content_id(b))
    (titles_dir / "b").mkdir()
    (titles_dir / "b" / "title.json").write_text(json.dumps(record))
    assert set(registry.index().titles) == {"a", "b"}
    assert registry.register(b).key == "b"

    # A folder that is not a title does not force a rebuild on every read.
    (titles_dir / "leftovers").mkdir()
    before = index_path.stat().st_mtime_ns
    assert set(registry.index().titles) == {"a", "b"}
    assert index_path.stat().st_mtime_ns == before


def test_changed_content_keeps_its_key_and_copies_are_aliases(tmp_path: Path) -> None:
    registry = TitleRegistry(tmp_path / "titles")
    film = _film(tmp_path / "in", "Sholay.mkv", b"old cut" * 100)
    first = registry.register(film)
    film.write_bytes(b"new cut" * 100)
    second = registry.register(film)
    assert second.key == first.key and second.content_id != first.content_id

    copy = _film(tmp_path / "elsewhere", "Sholay copy.mkv", film.read_bytes())
    third = registry.register(copy)
    assert third == second  # same title; the record keeps naming the original
    index = registry.index()
    assert index.path_entry(str(copy.resolve())).alias
    # The old cut elsewhere is a title of its own now.
    old = _film(tmp_path / "elsewhere", "Old.mkv", b"old cut" * 100)
    assert registry.register(old).key == "old"

    film.unlink()  # the original is gone: the copy becomes the title's file
    moved = registry.register(copy)
    assert moved.key == first.key and moved.media_path == str(copy.resolve())
    assert registry.forget_aliases([str(copy.resolve())]) == 0


def test_sidecars_are_found_and_fingerprinted(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    film = _film(folder, "Swades.mkv", b"film" * 100)
    for name in ("Swades.json", "Swades.glossary.tsv", "Swades.en.srt", "Swades.hi.vtt",
                 "Swades.srt", "Swades.error.txt", "Swades 2.json", ".Swades.json"):
        (folder / name).write_text(name)
    assert [p.name for p in Sidecars(film).existing()] == [
        "Swades.en.srt", "Swades.glossary.tsv", "Swades.hi.vtt", "Swades.json", "Swades.srt"]
    assert not is_media_name("X.en.srt") and not is_media_name("x.error.txt")
    assert is_media_name("X.mkv")

    registry = TitleRegistry(tmp_path / "titles")
    title = registry.register(film)
    assert title.sidecar_id == sidecar_id(Sidecars(film).existing()) != ""
    (folder / "Swades.json").write_text('{"language": "hi"}')
    assert registry.register(film).sidecar_id != title.sidecar_id
    assert sidecar_id([]) == "" and sidecar_stat([]) == ""


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("x" * 250 + ".mkv", 246),  # NAME.glossary.tsv would be 263 bytes
        ("दिल" * 27 + ".mkv", 246),  # 81 letters but 243 bytes: 3 bytes each in UTF-8
        ("é" * 122 + ".webm", 247),  # 244 bytes before the extension
        ("y" * 254, 242),  # no extension: the whole name is NAME
    ],
)
def test_a_name_too_long_for_its_sidecars_is_refused_up_front(tmp_path: Path, name: str,
                                                              allowed: int) -> None:
    registry = TitleRegistry(tmp_path / "titles")
    film = _film(tmp_path / "in", name, b"film" * 100)
    with pytest.raises(MediaError, match=rf"file name too long: .* limit of 255; rename the "
                                         rf"file to at most {allowed} bytes") as info:
        registry.register(film)
    assert info.value.path == film and "\n" not in str(info.value)
    assert registry.all() == [] and registry.index().titles == {}


def test_a_name_at_the_limit_registers_and_its_sidecars_can_exist(tmp_path: Path) -> None:
    film = _film(tmp_path / "in", "z" * 242 + ".mkv", b"film" * 100)
    for path in (Sidecars(film).glossary, Sidecars(film).metadata,
                 film.with_name("z" * 242 + ".error.txt")):
        path.write_text("")  # 255 bytes at most: these names exist
    assert TitleRegistry(tmp_path / "titles").register(film).key == "z" * 60
