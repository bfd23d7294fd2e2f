"""The one settings object: environment variables (``CPW_*``) over an optional ``cpw.yaml``.

Precedence, highest first: values passed in code (the Dagster resource's run config),
environment variables, ``cpw.yaml`` (``$CPW_CONFIG``, else ``./cpw.yaml``), defaults.
docs/configuration.md lists every field; ``tests/unit/test_settings.py`` keeps it in step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


def _config_file() -> Path:
    return Path(os.environ.get("CPW_CONFIG", "cpw.yaml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CPW_", extra="forbid", frozen=True)

    home: Path = Field(
        Path(".cpw"),
        description="Folder that holds titles, events, models and the Dagster instance.",
    )
    whisper_model: str = Field(
        "base",
        description="Whisper model name (tiny, tiny.en, base, small, medium, large-v3, ...) "
        "or a path to a CTranslate2 model directory.",
    )
    whisper_models_dir: Path | None = Field(
        None,
        description="Folder of CTranslate2 Whisper models, one sub-folder per model name "
        "(`large-v3/` or `faster-whisper-large-v3/`).",
    )
    whisper_model_paths: dict[str, Path] = Field(
        default_factory=dict,
        description='Explicit name → directory map, as JSON: {"large-v3": "/models/lv3"}.',
    )
    translation_model: str | None = Field(
        None,
        description="Multilingual Whisper model for the translate task; "
        "default: whisper_model when it is multilingual, else base.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where Whisper runs; auto picks CUDA when CTranslate2 sees a GPU."
    )
    compute_type: str = Field(
        "auto",
        description="CTranslate2 compute type; auto = int8 on CPU, float16 on CUDA.",
    )
    beam_size: int = Field(5, ge=1, le=20, description="Beam size for decoding.")
    batch_size: int = Field(
        1, ge=1, le=64, description="Batched inference when > 1 (faster-whisper pipeline)."
    )
    cpu_threads: int = Field(0, ge=0, description="CTranslate2 CPU threads; 0 = all cores.")
    vad_filter: bool = Field(True, description="Skip non-speech with Silero VAD.")
    optimizer: Literal["on", "off"] = Field(
        "on", description="Let the optimizer choose the Whisper model, beam, VAD threshold and "
        "temperature fallback per title from its audio (docs/optimizer.md); off = always the "
        "configured whisper_model and beam_size.",
    )
    optimizer_min_examples: int = Field(
        200, ge=1, description="Labelled examples a trained optimizer model needs before it "
        "decides; with fewer, transparent rules decide (and say so).",
    )
    optimizer_tolerance: float = Field(
        0.01, ge=0.0, le=1.0, description="Predicted WER the optimizer may give up for a "
        "faster config (0.01 = 1 point).",
    )
    optimizer_explore_share: float = Field(
        0.05, ge=0.0, le=1.0, description="Share of titles (chosen by their key) that also "
        "decode a slice of their audio with a neighbouring config, timed and scored, so the "
        "optimizer keeps learning; 0 = never.",
    )
    optimizer_explore_seconds: float = Field(
        60.0, gt=0.0, le=600.0, description="Longest slice an exploration decodes (never more "
        "than a tenth of the film).",
    )
    optimizer_retrain_after: int = Field(
        100, ge=1, description="New labelled examples since the current optimizer model that "
        "make the retrain sensor ask for a retrain.",
    )
    context_learner: Literal["on", "off"] = Field(
        "on", description="Suggest names and terms from earlier titles of the same series, "
        "director or genre (docs/context.md); off = each title starts from its sidecar and "
        "TMDB alone. Finished titles are remembered either way.",
    )
    asr_names: Literal["auto", "hotwords", "prompt", "off"] = Field(
        "auto", description="How the glossary's names reach Whisper before it transcribes: "
        "hotwords (every 30-second window), prompt (the initial prompt only), off, or auto "
        "(hotwords for English speech, off for other languages).",
    )
    name_repair: bool = Field(
        True, description="Write near misses of glossary names left in the transcript as the "
        "glossary spells them ('Akash' → 'Aakash'), each repair recorded in name_repairs.",
    )
    language: str | None = Field(
        None, description="Source language code (hi, fr, ...); unset = sidecar or detected."
    )
    audio_track: str | None = Field(
        None, coerce_numbers_to_str=True, description="Audio track to transcribe: a number "
        "counted from 0 among the file's audio tracks, or a language tag (fr, fre, en-US); "
        "a sidecar JSON's audio_track wins for its title; unset = chosen by language, default "
        "flag, then channels.",
    )
    target_language: str = Field("en", description="Language of the subtitles.")
    target_languages: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Several subtitle languages per title, "
        "comma-separated (en,de); each gets its own translation, enhancement and subtitle "
        "files. Empty = target_language alone.",
    )

    @field_validator("target_languages", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def languages(self) -> list[str]:
        """The subtitle languages: target_languages, else target_language."""
        return list(dict.fromkeys(self.target_languages or [self.target_language]))
    bilingual: bool = Field(
        False, description="Also write a bilingual SRT (source line above target line)."
    )

    inbox: Path | None = Field(
        None,
        description="Watched folder for new media; default $CPW_HOME/inbox. Unusable files "
        "are moved to its rejected/ sub-folder.",
    )
    inbox_max_new_per_tick: int = Field(
        200, ge=1, description="Most new files one inbox sensor evaluation registers."
    )
    stage_monitor: bool = Field(
        True, description="Sample each stage's CPU %, RSS and GPU in a background thread "
        "twice a second (stage_metrics); off: wall, CPU, exact peak RSS and I/O only."
    )
    max_concurrent_runs: int = Field(
        2, ge=1, description="Runs the queued run coordinator starts at once (make ui)."
    )
    asr_pool_size: int = Field(
        1, ge=1, description="Whisper steps (transcript, translation) allowed at once across "
        "all runs; 1 suits a CPU, raise it for a GPU with memory to spare.",
    )
    slot_wait_timeout_s: float = Field(
        21600.0, gt=0, description="Most seconds a Whisper step waits for a free slot; past "
        "it the step fails naming the run and pid that hold the slots.",
    )

    translation_backend: Literal["auto", "whisper", "llm"] = Field(
        "auto", description="auto = chosen by evidence: the local model (the `local` extra; "
        "no key, no network) where it measured better than Whisper's translate task, and for "
        "every language but English, else Whisper's translate task; whisper = Whisper's "
        "translate task (offline, into English); llm = the LLM provider below, any target "
        "language, falling back to the original text when the provider fails."
    )
    translation_llm: str = Field(
        "openai:gpt-4o-mini", description="LLM of the llm translation backend as "
        "PROVIDER:MODEL: openai (OPENAI_BASE_URL also reaches any OpenAI-compatible server), "
        "anthropic (ANTHROPIC_BASE_URL), compatible (CPW_COMPATIBLE_BASE_URL), or local "
        "(the `local` extra's model on this machine, local:qwen2.5-coder-1.5b), e.g. "
        "anthropic:claude-haiku-4-5."
    )
    llm_batch_size: int = Field(20, ge=1, le=200, description="Segments per LLM request.")
    compatible_base_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible server for the `compatible` "
        "provider (Ollama http://127.0.0.1:11434/v1, vLLM, llama.cpp); key, if any, in "
        "CPW_COMPATIBLE_API_KEY."
    )
    local_llm_dir: Path | None = Field(
        None, description="Folder of the local models' GGUF files (`local:NAME` reads "
        "NAME.gguf there; packaged weights are assembled into it); default "
        "$CPW_HOME/models/llm."
    )
    local_llm_threads: int = Field(
        0, ge=0, description="CPU threads of the local model server; 0 = every core.")
    local_llm_context: int = Field(
        4096, ge=512, description="Context window (tokens) of the local model server.")
    local_llm_idle_s: float = Field(
        300.0, gt=0, description="The local model server stops after this many seconds "
        "without a request; the next run that needs it starts it again.")
    local_llm_start_timeout_s: float = Field(
        120.0, gt=0, description="Most seconds to wait for the local model server to load "
        "its model and answer; past it the call fails like an outage (MT lines kept).")
    local_llm_timeout_s: float = Field(
        600.0, gt=0, description="Most seconds one local model request may take, waiting for "
        "another run's request on the same server included.")
    enhance_provider: str | None = Field(
        None, description="Primary LLM for enhanced_translation as PROVIDER:MODEL "
        "(openai:gpt-4o-mini, anthropic:claude-haiku-4-5, compatible:llama3.1, "
        "local:qwen2.5-coder-1.5b); unset = "
        "no enhancement (the translation is passed on, marked 'not enhanced: no provider')."
    )
    enhance_fallback: str | None = Field(
        None, description="Fallback LLM (PROVIDER:MODEL) used for a batch when the primary "
        "fails after its retries or its breaker is open."
    )
    enhance_all: bool = Field(
        False, description="Send every segment for enhancement, not only the ones that need "
        "it (names, glossary/cultural terms, low confidence, references to earlier lines)."
    )
    enhance_batch_size: int = Field(
        20, ge=1, le=200, description="Segments per enhancement request.")
    enhance_context_lines: int = Field(
        3, ge=0, le=20, description="Preceding lines sent with each batch as context.")
    enhance_local_time_share: float = Field(
        0.15, ge=0, description="With a local model (local:NAME) as the enhancement "
        "provider, its budget is time: requests stop once they have taken this share of the "
        "film's duration (0.15: 9 s per minute of film); the rest keeps its MT text. "
        "0 = no limit.")
    title_budget_usd: float = Field(
        0.50, ge=0, description="Most dollars enhancement may spend on one title (all its "
        "runs); past it the rest keeps its MT text, flagged.")
    daily_budget_usd: float = Field(
        10.0, ge=0, description="Most dollars enhancement may spend per UTC day across all "
        "titles on this home.")
    monthly_budget_usd: float = Field(
        200.0, ge=0, description="Dollars of outside calls per UTC month that the budget "
        "alert sensor watches (it alerts; the daily and per-title budgets stop spending)."
    )
    budget_alerts: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [0.8, 1.0], description="Shares of the daily and monthly "
        "budgets at which the budget_alerts sensor raises an alert, comma-separated (0.8,1.0)."
    )

    @field_validator("budget_alerts", mode="before")
    @classmethod
    def _shares(cls, value: object) -> object:
        if isinstance(value, str):
            return [float(part) for part in value.split(",") if part.strip()]
        return value

    pricing_file: Path | None = Field(
        None, description="TOML of LLM prices (USD per million input/output tokens, dated); "
        "unset = the shipped cpw_resources/data/pricing.toml.")
    breaker_fail_max: int = Field(
        5, ge=1, description="Failed calls in a row that open a service's circuit breaker."
    )
    breaker_reset_timeout_s: float = Field(
        60.0, gt=0, description="Seconds an open breaker waits before one trial call."
    )
    breaker_redis_url: str | None = Field(
        None, description="Keep breaker state in Redis (redis://host:6379/0) so several "
        "machines share it; unset = a locked file per service under $CPW_HOME/breakers."
    )
    service_second_round_pause_s: float = Field(
        10.0, ge=-1, description="A title whose outside call spent its retries on a transient "
        "error asks once more after this pause, if the breaker is still closed; -1 = never.")
    http_connect_timeout_s: float = Field(
        5.0, gt=0, description="Connect timeout of every outside HTTP call."
    )
    http_read_timeout_s: float = Field(
        30.0, gt=0, description="Read timeout of every outside HTTP call."
    )
    call_deadline_s: float = Field(
        120.0, gt=0, description="Most seconds one outside call may take, retries included."
    )
    tmdb_base_url: str = Field(
        "https://api.themoviedb.org/3", description="TMDB API v3 base URL (tests point it "
        "at a local server)."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=_config_file())
        return (init_settings, env_settings, yaml_source)

    # Paths under home. Resolved so a run launched from another cwd finds the same files.
    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def titles_dir(self) -> Path:
        return self.home_dir / "titles"

    @property
    def events_dir(self) -> Path:
        return self.home_dir / "events"

    @property
    def duckdb_path(self) -> Path:
        return self.home_dir / "cpw.duckdb"

    @property
    def breakers_dir(self) -> Path:
        return self.home_dir / "breakers"

    @property
    def models_cache_dir(self) -> Path:
        return self.home_dir / "models"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.home_dir / "dagster").resolve()

    def title_dir(self, key: str) -> Path:
        return self.titles_dir / key
