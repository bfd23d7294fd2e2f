from pathlib import Path

import pytest

from cpw_resources.errors import ModelNotFoundError
from cpw_resources.settings import Settings
from cpw_resources.speech.models import available_models, is_english_only, resolve_model


def test_embedded_models_resolve(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    tiny = resolve_model("tiny.en", settings)
    assert (tiny / "model.bin").is_file() and is_english_only(tiny)
    base = resolve_model("base", settings)
    assert base == (tmp_path / "models" / "base").resolve()
    assert not is_english_only(base)
    size = (base / "model.bin").stat().st_size
    assert size > 100_000_000
    assert resolve_model("base", settings) == base  # second call reuses the joined file
    assert not list(base.glob(".*.tmp"))
    assert {"base", "tiny.en"} <= set(available_models(settings))


def test_missing_model_names_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model("large-v3", Settings(home=tmp_path))
    message = str(info.value)
    assert "CPW_WHISPER_MODELS_DIR" in message and "CPW_WHISPER_MODEL_PATHS" in message
    assert "nothing is downloaded" in message


def test_models_dir_and_explicit_paths(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    tiny = resolve_model("tiny.en", settings)
    models = tmp_path / "models_dir"
    (models / "faster-whisper-small").mkdir(parents=True)
    for f in ("model.bin", "config.json"):
        (models / "faster-whisper-small" / f).symlink_to(tiny / f)
    assert resolve_model("small", Settings(home=tmp_path, whisper_models_dir=models)).name == (
        "faster-whisper-small")
    mapped = Settings(home=tmp_path, whisper_model_paths={"medium": tmp_path / "nowhere"})
    with pytest.raises(ModelNotFoundError, match="CPW_WHISPER_MODEL_PATHS"):
        resolve_model("medium", mapped)
    assert resolve_model(str(tiny), settings) == tiny.resolve()
