import json
from pathlib import Path

import pytest

from cpw_resources.errors import MediaError
from cpw_resources.language.glossary import build_glossary, prompt_names, sidecar_language
from cpw_resources.records import Segment


def _film(tmp_path: Path) -> Path:
    media = tmp_path / "Dil Chahta Hai (2001).mkv"
    media.write_bytes(b"")
    return media


SEGMENTS = [
    Segment(0, 0.0, 2.0, "Akash, where is Sameer?"),
    Segment(1, 2.5, 4.0, "I told Sameer about Goa."),
    Segment(2, 4.5, 6.0, "Then Shalini came, and Shalini left."),
]


def test_sidecars_and_occurrences(tmp_path: Path) -> None:
    media = _film(tmp_path)
    media.with_name("Dil Chahta Hai (2001).json").write_text(json.dumps({
        "title": "Dil Chahta Hai", "year": 2001, "language": "Hindi", "genre": "drama",
        "characters": ["Aakash", {"name": "Sameer", "actor": "Saif Ali Khan"}, "Sid"],
    }))
    media.with_name("Dil Chahta Hai (2001).glossary.tsv").write_text(
        "term\ttranslation\tnote\n# places\nGoa\t\tstate\nyaar\tbuddy\n")
    glossary = build_glossary(media, SEGMENTS)
    counts = {t["term"]: t["occurrences"] for t in glossary["terms"]}
    assert counts["Sameer"] == 2
    assert counts["Aakash"] == 1  # fuzzy: Whisper wrote "Akash"
    assert counts["Goa"] == 1 and counts["Sid"] == 0 and counts["yaar"] == 0
    assert glossary["metadata"] == {"title": "Dil Chahta Hai", "year": 2001,
                                    "genre": "drama", "language": "Hindi"}
    assert glossary["sources"] == ["glossary_tsv", "sidecar_json"]
    assert [c["term"] for c in glossary["candidate_names"]] == ["Shalini"]
    assert sidecar_language(media) == "hi"
    assert prompt_names(glossary).startswith("Names: Aakash, Sameer, Sid, Goa")


def test_no_sidecars_is_fine(tmp_path: Path) -> None:
    glossary = build_glossary(_film(tmp_path), SEGMENTS)
    assert glossary["terms"] == [] and glossary["sources"] == []
    assert prompt_names(glossary) is None


@pytest.mark.parametrize(
    ("suffix", "content", "problem"),
    [
        (".json", "{not json", "not valid UTF-8 JSON"),
        (".json", "[1, 2]", "must be a JSON object"),
        (".json", '{"characters": [42]}', "'characters' entries"),
        (".glossary.tsv", "a\tb\tc\td\n", "line 1"),
        (".glossary.tsv", b"\xff\xfe\x00bad", "not UTF-8"),
    ],
)
def test_malformed_sidecar_names_file_and_problem(tmp_path, suffix, content, problem) -> None:
    media = _film(tmp_path)
    path = media.with_name(media.stem + suffix)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(MediaError, match=problem) as info:
        build_glossary(media, SEGMENTS)
    assert info.value.path == path
