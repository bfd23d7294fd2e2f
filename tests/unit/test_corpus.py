"""The evaluation corpus builder (benchmarks/corpus/build.py), on its short ``ci`` slice."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import av
import pysubs2
import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"

pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / "asterisk_dev" / "prompts.tsv").is_file(),
    reason=f"real speech data not found at {SHARED_DATA} (../shared/data beside the repo)",
)


def _builder():
    name = "cpw_corpus_build"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, REPO / "benchmarks" / "corpus" / "build.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules[name]


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    corpus = _builder()
    first, second = tmp_path_factory.mktemp("ci1"), tmp_path_factory.mktemp("ci2")
    manifest = corpus.build(first, slice="ci")
    corpus.build(second, slice="ci")
    return first, manifest, second


def test_ci_slice_is_byte_identical_when_rebuilt(built) -> None:
    first, _, second = built
    digests = _digests(first)
    assert digests == _digests(second)
    assert set(digests) == {"manifest.json", "media/en_ci.mka", "media/fr_ci.mka",
                            "refs/en_ci.en.srt", "refs/fr_ci.fr.srt", "refs/fr_ci.en.srt"}


def test_manifest_and_durations(built) -> None:
    out, manifest, _ = built
    assert json.loads((out / "manifest.json").read_text("utf-8")) == manifest
    assert manifest["version"] == 1
    films = {f["id"]: f for f in manifest["films"]}
    assert list(films) == ["en_ci", "fr_ci"]
    assert films["fr_ci"]["language"] == "fr" and set(films["fr_ci"]["refs"]) == {"fr", "en"}
    assert sum(f["duration_s"] for f in films.values()) <= 120
    for film in films.values():
        assert film["condition"] == "clean" and film["base"] == film["id"]
        assert 55 <= film["duration_s"] <= 60.5
        assert 0 < film["speech_s"] < film["duration_s"]
        assert film["sources"]
        with av.open(str(out / film["media"])) as container:
            stream = container.streams.audio[0]
            layout = stream.codec_context.layout.nb_channels
            assert (stream.codec_context.name, stream.rate, layout) == ("opus", 48000, 1)
            samples = sum(frame.samples for frame in container.decode(stream))
        assert samples / 48000 == pytest.approx(film["duration_s"], abs=0.001)


def test_reference_cues_match_manifest(built) -> None:
    out, manifest, _ = built
    for film in manifest["films"]:
        tracks = {lang: pysubs2.load(str(out / path), encoding="utf-8")
                  for lang, path in film["refs"].items()}
        assert not any(Path(p).parent.name == "media" for p in film["refs"].values())
        timings = {lang: [(e.start, e.end) for e in subs] for lang, subs in tracks.items()}
        first = next(iter(timings.values()))
        assert all(t == first for t in timings.values())  # one cue per utterance, every lang
        assert len(first) >= 8
        assert all(e.text.strip() for subs in tracks.values() for e in subs)
        speech_ms = 0
        for (start, end), (next_start, _) in zip(first, first[1:] + [(10**9, 0)], strict=True):
            assert 0 <= start < end <= next_start
            speech_ms += end - start
        assert first[-1][1] <= film["duration_s"] * 1000
        assert speech_ms / 1000 == pytest.approx(film["speech_s"], abs=0.001)
        bounds = [0, *(t for cue in first for t in cue), round(film["duration_s"] * 1000)]
        quiet = list(zip(bounds[::2], bounds[1::2], strict=True))  # before, between, after cues
        assert film["nonspeech_spans"] == [[a / 1000, b / 1000] for a, b in quiet if b - a > 2000]
    en = pysubs2.load(str(out / "refs" / "fr_ci.en.srt"), encoding="utf-8")
    assert en[0].text == "Activated."
