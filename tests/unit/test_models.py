from pathlib import Path

import pytest

from cpw_resources.errors import ModelNotFoundError
from cpw_resources.settings import Settings
from cpw_resources.speech.models import ModelRegistry, is_english_only


def test_embedded_models_resolve(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    tiny = ModelRegistry.from_settings(settings).resolve("tiny.en")
    assert (tiny / "model.bin").is_file() and is_english_only(tiny)
    base = ModelRegistry.from_settings(settings).resolve("base")
    assert base == (tmp_path / "models" / "base").resolve()
    assert not is_english_only(base)
    size = (base / "model.bin").stat().st_size
    assert size > 100_000_000
    # a second call reuses the joined file
    assert ModelRegistry.from_settings(settings).resolve("base") == base
    assert not list(base.glob(".*.tmp"))
    assert {"base", "tiny.en"} <= set(ModelRegistry.from_settings(settings).available())


def test_missing_model_names_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        ModelRegistry.from_settings(Settings(home=tmp_path)).resolve("large-v3")
    message = str(info.value)
    assert "CPW_WHISPER_MODELS_DIR" in message and "CPW_WHISPER_MODEL_PATHS" in message
    assert "nothing is downloaded" in message


def test_models_dir_and_explicit_paths(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    tiny = ModelRegistry.from_settings(settings).resolve("tiny.en")
    models = tmp_path / "models_dir"
    (models / "faster-whisper-small").mkdir(parents=True)
    for f in ("model.bin", "config.json"):
        (models / "faster-whisper-small" / f).symlink_to(tiny / f)
    registry = ModelRegistry.from_settings(Settings(home=tmp_path, whisper_models_dir=models))
    assert registry.resolve("small").name == "faster-whisper-small"
    mapped = Settings(home=tmp_path, whisper_model_paths={"medium": tmp_path / "nowhere"})
    with pytest.raises(ModelNotFoundError, match="CPW_WHISPER_MODEL_PATHS"):
        ModelRegistry.from_settings(mapped).resolve("medium")
    assert ModelRegistry.from_settings(settings).resolve(str(tiny)) == tiny.resolve()
