import json
from pathlib import Path

import pytest

from cpw_resources.errors import MediaError
from cpw_resources.language.glossary import (
    MAX_GLOSSARY_BYTES,
    MAX_METADATA_BYTES,
    MAX_TERMS,
    TranscriptIndex,
    build_glossary,
    heard_terms,
    prompt_names,
    read_glossary_tsv,
    read_title_metadata,
    sidecar_language,
)
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
    glossary = build_glossary(media)
    heard = heard_terms(glossary["terms"], SEGMENTS)
    counts = heard["occurrences"]
    assert counts["Sameer"] == 2
    assert counts["Aakash"] == 1  # fuzzy: Whisper wrote "Akash"
    assert counts["Goa"] == 1 and counts["Sid"] == 0 and counts["yaar"] == 0
    assert glossary["metadata"] == {"title": "Dil Chahta Hai", "year": 2001,
                                    "genre": "drama", "language": "Hindi"}
    assert glossary["sources"] == ["glossary_tsv", "sidecar_json"]
    assert [c["term"] for c in heard["candidate_names"]] == ["Shalini"]
    assert heard["found_terms"] == ["Aakash", "Sameer", "Goa"]
    assert not any(t["suggested"] for t in glossary["terms"])
    assert sidecar_language(media) == "hi"
    assert prompt_names(glossary).startswith("Names: Aakash, Sameer, Sid, Goa")


def test_no_sidecars_is_fine(tmp_path: Path) -> None:
    glossary = build_glossary(_film(tmp_path))
    assert glossary["terms"] == [] and glossary["sources"] == []
    assert prompt_names(glossary) is None


@pytest.mark.parametrize(
    ("suffix", "content", "problem"),
    [
        (".json", "{not json", "not valid UTF-8 JSON"),
        (".json", "[1, 2]", "must be a JSON object"),
        (".json", '{"characters": [42]}', "field 'characters': entry 1 must be a name"),
        (".glossary.tsv", "a\tb\tc\td\n", "line 1: expected 'term<TAB>translation<TAB>note'"),
        (".glossary.tsv", b"\xff\xfe\x00bad", "not UTF-8"),
        # Wrong types, each named by its field.
        (".json", '{"year": {"a": 1}}', r"field 'year': .*integer \(got \{'a': 1\}\)"),
        (".json", '{"year": 1e400}', "field 'year'"),
        (".json", '{"year": 12}', "field 'year': .*greater than or equal to 1800"),
        (".json", '{"characters": 5}', "field 'characters': .*valid list"),
        (".json", '{"characters": {"name": "Sameer"}}', "field 'characters': .*valid list"),
        (".json", '{"characters": [{"name": ""}]}', "field 'characters.0.name'"),
        (".json", '{"characters": [{"actor": "Saif"}]}', "field 'characters.0.name': .*required"),
        (".json", '{"characters": ["Sa\\u0000meer"]}', r"control character \(U\+0000\)"),
        (".json", '{"tmdb_id": -5}', "field 'tmdb_id'"),
        (".json", '{"title": ["a", "b"]}', "field 'title'"),
        (".json", '"just a string"', "must be a JSON object"),
        (".json", "null", "must be a JSON object"),
        # Unknown languages, by name or by code.
        (".json", '{"language": "klingon"}', "field 'language': unknown language 'klingon'"),
        (".json", '{"language": "xx-yy"}', "unknown language 'xx-yy'"),
        (".json", '{"language": 7}', "unknown language '7'"),
        # Parser limits: nesting and integers too long for Python.
        (".json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (".json", '{"x": ' + "[" * 5_000 + "]" * 5_000 + "}", "nested too deeply"),
        (".json", '{"year": 1' + "0" * 5_000 + "}", "not valid UTF-8 JSON"),
        # Odd glossary lines.
        (".glossary.tsv", "Goa\tGoa\n\tbuddy\n", "line 2: the term .* is empty"),
        (".glossary.tsv", "Goa\x07\tGoa\n", r"line 1: the term contains a control character"),
        (".glossary.tsv", "x" * 101 + "\tGoa\n", "line 1: the term is 101 characters, over"),
        (".glossary.tsv", "Goa\t" + "y" * 101 + "\n", "the translation is 101 characters"),
    ],
)
def test_malformed_sidecar_names_file_and_problem(tmp_path, suffix, content, problem) -> None:
    media = _film(tmp_path)
    path = media.with_name(media.stem + suffix)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(MediaError, match=problem) as info:
        build_glossary(media)
    assert info.value.path == path
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    assert len(str(info.value)) < len(str(path)) + 300  # one line, however big the input


@pytest.mark.parametrize(
    ("suffix", "content", "problem"),
    [
        (".json", '{"summary": "' + "a" * (MAX_METADATA_BYTES + 1) + '"}',
         f"over the limit of {MAX_METADATA_BYTES:,}"),
        (".json", '{"summary": "' + "a" * 2001 + '"}', "field 'summary': .*at most 2000"),
        (".json", json.dumps({"characters": [f"N{i}" for i in range(MAX_TERMS + 1)]}),
         f"field 'characters': .*at most {MAX_TERMS}"),
        (".glossary.tsv", "".join(f"t{i}\tx\n" for i in range(MAX_TERMS + 1)),
         f"line {MAX_TERMS + 1}: more than {MAX_TERMS:,} terms"),
        (".glossary.tsv", "Goa\tGoa\n" * (MAX_GLOSSARY_BYTES // 8 + 1),
         f"over the limit of {MAX_GLOSSARY_BYTES:,}"),
    ],
)
def test_sidecar_over_a_limit_is_refused_naming_the_limit(tmp_path, suffix, content,
                                                          problem) -> None:
    media = _film(tmp_path)
    path = media.with_name(media.stem + suffix)
    path.write_text(content)
    with pytest.raises(MediaError, match=problem) as info:
        build_glossary(media)
    assert info.value.path == path


def test_a_50_mb_glossary_is_refused_without_reading_it(tmp_path) -> None:
    media = _film(tmp_path)
    path = media.with_name(media.stem + ".glossary.tsv")
    with open(path, "wb") as out:  # sparse: 50 MB that cost no disk
        out.truncate(50 << 20)
    with pytest.raises(MediaError, match="52,428,800 bytes, over the limit") as info:
        read_glossary_tsv(media)
    assert info.value.path == path


def test_lenient_where_the_meaning_is_clear(tmp_path) -> None:
    media = _film(tmp_path)
    media.with_name(media.stem + ".json").write_text(json.dumps({
        "title": 1917, "year": "2001", "language": "pt-BR", "characters": None,
        "genre": ["drama", "comedy"], "tmdb_id": "603", "notes": {"anything": [1, 2]},
    }))
    metadata, names = read_title_metadata(media)
    assert metadata == {"title": "1917", "year": 2001, "language": "pt-BR",
                        "genre": ["drama", "comedy"], "tmdb_id": 603}
    assert names == [] and sidecar_language(media) == "pt"


def test_a_name_too_long_to_exist_is_no_sidecar(tmp_path) -> None:
    media = tmp_path / ("x" * 250 + ".mkv")  # NAME.glossary.tsv would be 263 bytes
    media.write_bytes(b"")
    assert build_glossary(media)["terms"] == []


def test_counts_match_word_boundaries_and_near_spellings() -> None:
    index = TranscriptIndex([
        Segment(0, 0.0, 2.0, "Goa, goa.  Goan food; Mr. Sharma met Akash and Akash's dog."),
        Segment(1, 2.0, 4.0, "Ram Lal said: Ram  Lal! दिल चाहता है, दिला."),
    ])
    # Exact matches first (a vowel sign is part of a word: दिला is not दिल); "Aakash" has
    # none, so near spellings count ("Akash", not "Akash's"); an exact "Ram Lal" is enough.
    assert index.counts(["Goa", "Mr. Sharma", "Aakash", "Ram Lal", "दिल", "Zebra", " ",
                         "food;"]) == [2, 1, 1, 1, 1, 0, 0, 1]
