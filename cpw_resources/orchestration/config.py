"""Run config: the knobs a user tunes for one run, as one Dagster ``Config`` per asset.

Each field mirrors one setting (``CPW_*`` or ``cpw.yaml``); its default is that setting's value
when the definitions load, so the launchpad shows what a run will use and
``dagster job execute --config run.yaml`` overrides only what the file names. The description
and the setting come from :class:`~cpw_resources.settings.Settings`: one place for both.

What belongs to the machine rather than the run (model folders, device, keys, the daily budget)
lives in the resources (:mod:`cpw_resources.orchestration.resources`).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from dagster import Config, RunConfig
from pydantic import Field

from cpw_resources.errors import ConfigError
from cpw_resources.settings import Settings


@functools.cache
def settings_at_load() -> Settings:
    """The settings the definitions were loaded with (environment and ``cpw.yaml``)."""
    try:
        return Settings()
    except ValueError as error:  # pydantic's ValidationError names the field and the value
        raise ConfigError(f"invalid CPW settings (environment or cpw.yaml): {error}") from error


def setting(name: str) -> Any:
    """A config field for the setting ``name``: its current value as the default."""
    info = Settings.model_fields[name]
    return Field(default=getattr(settings_at_load(), name),
                 description=f"{info.description} Default from CPW_{name.upper()}.",
                 json_schema_extra={"setting": name})


class AudioConfig(Config):
    """Which audio track is decoded: the pick, else the one in the wanted language."""

    audio_track: str | None = setting("audio_track")
    language: str | None = setting("language")


class TranscriptConfig(Config):
    """Whisper's recognition of the spoken language."""

    model: str = setting("whisper_model")
    beam_size: int = setting("beam_size")
    batch_size: int = setting("batch_size")
    vad_filter: bool = setting("vad_filter")
    language: str | None = setting("language")
    optimizer: Literal["on", "off"] = setting("optimizer")
    names: Literal["auto", "hotwords", "prompt", "off"] = setting("asr_names")
    repair_names: bool = setting("name_repair")


class TranslationConfig(Config):
    """Into which language, and with what."""

    target_language: str = setting("target_language")
    #: Several languages at once ([en, de]); empty = target_language alone.
    target_languages: list[str] = setting("target_languages")

    def languages(self) -> list[str]:
        return list(dict.fromkeys(self.target_languages or [self.target_language]))
    backend: Literal["auto", "whisper", "llm"] = setting("translation_backend")
    whisper_model: str | None = setting("translation_model")
    llm: str = setting("translation_llm")
    llm_batch_size: int = setting("llm_batch_size")


class EnhancementConfig(Config):
    """Selective LLM post-editing of the translation, and what it may cost."""

    provider: str | None = setting("enhance_provider")
    fallback: str | None = setting("enhance_fallback")
    enhance_all: bool = setting("enhance_all")
    batch_size: int = setting("enhance_batch_size")
    context_lines: int = setting("enhance_context_lines")
    title_budget_usd: float = setting("title_budget_usd")
    local_time_share: float = setting("enhance_local_time_share")


class SubtitlesConfig(Config):
    """The subtitle files written."""

    bilingual: bool = setting("bilingual")


#: Asset name → its run config class.
ASSET_CONFIGS: dict[str, type[Config]] = {
    "audio": AudioConfig,
    "transcript": TranscriptConfig,
    "translation": TranslationConfig,
    "enhanced_translation": EnhancementConfig,
    "subtitles": SubtitlesConfig,
}


def config_from(settings: Settings, cls: type[Config]) -> Config:
    """``cls`` filled from ``settings`` (for scripts and tests that hold a Settings)."""
    values = {name: getattr(settings, info.json_schema_extra["setting"])
              for name, info in cls.model_fields.items()}
    return cls(**values)


def run_config(settings: Settings) -> RunConfig:
    """A whole title's run config from ``settings``."""
    return RunConfig(ops={asset: config_from(settings, cls)
                          for asset, cls in ASSET_CONFIGS.items()})
