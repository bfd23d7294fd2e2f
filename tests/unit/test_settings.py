import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from cpw_resources.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_environment_overrides_yaml_overrides_defaults(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "cpw.yaml"
    config.write_text("beam_size: 3\nwhisper_model: small\n")
    monkeypatch.setenv("CPW_CONFIG", str(config))
    assert Settings().beam_size == 3 and Settings().whisper_model == "small"
    monkeypatch.setenv("CPW_BEAM_SIZE", "2")
    assert Settings().beam_size == 2
    assert Settings(beam_size=1).beam_size == 1
    assert Settings().target_language == "en"


def test_bad_values_are_clear_errors(monkeypatch) -> None:
    monkeypatch.setenv("CPW_BEAM_SIZE", "0")
    with pytest.raises(ValidationError, match="beam_size"):
        Settings()


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    for name in Settings.model_fields:
        variable = f"CPW_{name.upper()}"
        assert re.search(rf"`{variable}`", text), f"{variable} missing from docs/configuration.md"
