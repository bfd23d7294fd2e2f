"""Sidecar naming: which files beside a film are its sidecars, its references, its fingerprint."""

import os
from pathlib import Path

import pytest

from cpw_resources.store.sidecars import (
    SUBTITLE_FORMATS,
    Sidecars,
    is_media_name,
    media_stem,
    sidecar_id,
    sidecar_stems,
)
from cpw_resources.store.titles import TitleRegistry


def _film(folder: Path, name: str = "Film (2001).mkv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    media = folder / name
    media.write_bytes(b"film" * 100)
    return media


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _id(media: Path) -> str:
    return sidecar_id(Sidecars(media).existing())


def test_metadata_and_glossary_names(tmp_path: Path) -> None:
    sidecars = Sidecars(tmp_path / "Dil Chahta Hai (2001).mkv")
    assert sidecars.metadata == tmp_path / "Dil Chahta Hai (2001).json"
    assert sidecars.glossary == tmp_path / "Dil Chahta Hai (2001).glossary.tsv"
    assert Sidecars(str(tmp_path / "A.b.mp4")).metadata == tmp_path / "A.b.json"  # str is fine
    assert sidecars.existing() == []  # nothing there yet


@pytest.mark.parametrize("fmt", SUBTITLE_FORMATS)
def test_every_reference_format_is_found_by_language(tmp_path: Path, fmt: str) -> None:
    media = _film(tmp_path)
    reference = _write(tmp_path / f"Film (2001).en{fmt}", "x")
    sidecars = Sidecars(media)
    assert sidecars.reference("en") == reference
    assert sidecars.reference("hi") is None  # none in that language
    assert reference in sidecars.existing()  # scored, so also part of the sidecar id
    assert not is_media_name(reference.name)


def test_no_reference_without_a_file_in_that_language(tmp_path: Path) -> None:
    media = _film(tmp_path)
    assert Sidecars(media).reference("en") is None
    # A subtitle without a language is a sidecar but no reference: its language is unknown.
    plain = _write(tmp_path / "Film (2001).srt", "x")
    assert Sidecars(media).reference("en") is None
    assert Sidecars(media).existing() == [plain]


def test_reference_prefers_srt_then_vtt_ass_ssa_and_ignores_case(tmp_path: Path) -> None:
    media = _film(tmp_path)
    sidecars = Sidecars(media)
    ssa = _write(tmp_path / "Film (2001).EN.SSA", "x")
    assert sidecars.reference("en") == ssa
    ass = _write(tmp_path / "Film (2001).en.ass", "x")
    assert sidecars.reference("en") == ass
    vtt = _write(tmp_path / "Film (2001).en.vtt", "x")
    assert sidecars.reference("en") == vtt
    srt = _write(tmp_path / "Film (2001).en.srt", "x")
    assert sidecars.reference("en") == srt
    pt = _write(tmp_path / "Film (2001).pt-BR.vtt", "x")
    assert sidecars.reference("pt-BR") == pt and sidecars.reference("pt") is None


@pytest.mark.parametrize(
    "name",
    ["Film (2001).json", "Film (2001).glossary.tsv", "Film (2001).srt", "Film (2001).en.srt",
     "Film (2001).hi.vtt", "Film (2001).en.ass", "Film (2001).fr.ssa", "Film (2001).EN.SRT"],
)
def test_editing_any_sidecar_changes_the_sidecar_id(tmp_path: Path, name: str) -> None:
    media = _film(tmp_path)
    _write(tmp_path / "Film (2001).json", '{"language": "hi"}')
    sidecar = _write(tmp_path / name, "first")
    before = _id(media)
    assert before != ""
    _write(sidecar, "second")
    assert _id(media) != before
    sidecar.unlink()
    assert _id(media) != before


def test_editing_an_ass_reference_reruns_the_registered_title(tmp_path: Path) -> None:
    media = _film(tmp_path / "in")
    ass = _write(tmp_path / "in" / "Film (2001).en.ass", "[Script Info]\n")
    registry = TitleRegistry(tmp_path / "titles")
    title = registry.register(media)
    assert title.sidecar_id == sidecar_id([ass]) != ""
    _write(ass, "[Script Info]\nTitle: edited\n")
    assert registry.register(media).sidecar_id != title.sidecar_id


@pytest.mark.parametrize(
    "name",
    ["Film 2.en.srt", "Film 2.json", "Film (2001) extras.en.ass", "film (2001).en.srt",
     "Film (2001).error.txt", "Film (2001).nfo", "Film (2001).en.txt", ".Film (2001).json",
     "Film (2001).english.srt", "Other.glossary.tsv"],
)
def test_files_that_are_not_its_sidecars_change_nothing(tmp_path: Path, name: str) -> None:
    media = _film(tmp_path)
    json_ = _write(tmp_path / "Film (2001).json", "{}")
    ass = _write(tmp_path / "Film (2001).en.ass", "x")
    before = _id(media)
    other = _write(tmp_path / name, "first")
    assert Sidecars(media).existing() == [ass, json_]
    assert Sidecars(media).reference("en") == ass
    assert _id(media) == before
    _write(other, "second")
    os.utime(other, ns=(1, 1))
    assert _id(media) == before


def test_names_of_another_stem_are_not_picked(tmp_path: Path) -> None:
    media = _film(tmp_path, "Film.mkv")
    other = _write(tmp_path / "Film 2.en.srt", "x")
    assert Sidecars(media).existing() == [] and Sidecars(media).reference("en") is None
    assert sidecar_stems(other.name) == ("Film 2.en", "Film 2")
    # A language-looking tail belongs to both stems it could: Film.en.mkv and Film.mkv.
    assert sidecar_stems("Film.en.srt") == ("Film.en", "Film")
    en_media = _film(tmp_path, "Film.en.mkv")
    srt = _write(tmp_path / "Film.en.srt", "x")
    assert Sidecars(en_media).existing() == [srt] == Sidecars(media).existing()
    assert Sidecars(media).reference("en") == srt and Sidecars(en_media).reference("en") is None


def test_error_notes_are_neither_sidecars_nor_media(tmp_path: Path) -> None:
    media = _film(tmp_path)
    _write(tmp_path / "Film (2001).error.txt", "rejected because ...")
    assert sidecar_stems("Film (2001).error.txt") == ()
    assert not is_media_name("Film (2001).error.txt") and not is_media_name("X.ERROR.TXT")
    assert Sidecars(media).existing() == [] and _id(media) == ""


@pytest.mark.parametrize(
    ("name", "media"),
    [("Film.mkv", True), ("Film.en.mkv", True), ("Film", True), ("Film.json", False),
     ("Film.glossary.tsv", False), ("Film.en.SRT", False), ("Film.vtt", False),
     ("Film.hi.ass", False), ("Film.ssa", False), ("Film.error.txt", False),
     (".Film.mkv", False)],
)
def test_media_names(name: str, media: bool) -> None:
    assert is_media_name(name) is media


@pytest.mark.parametrize("name", ["Film.mkv", "Film.en.mkv", "Film", "Film.", ".hidden",
                                  "a.b.c", "Dil Chahta Hai (2001).mkv"])
def test_media_stem_is_path_stem(name: str) -> None:
    assert media_stem(name) == Path(name).stem
