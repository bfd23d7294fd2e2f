"""The Dagster resources: one per outside system or shared facility, each a thin typed wrapper.

- ``home`` (:class:`HomeResource`): the folder of titles, events and caches (``CPW_HOME``);
- ``store`` (:class:`EventStoreResource`): the event store (Parquet + DuckDB views);
- ``titles`` (:class:`TitleRegistryResource`): registered titles, their media and sidecars;
- ``inbox`` (:class:`InboxResource`): the watched folder;
- ``reliability`` (:class:`ReliabilityResource`): breakers, retry policies, deadlines, timeouts;
- ``whisper`` (:class:`WhisperResource`): model registry, device, compute type, loaded models;
- ``optimizer`` (:class:`OptimizerResource`): the per-title config choice and its models;
- ``llm`` (:class:`LlmResource`): provider keys and URLs, prices, reply cache, daily budget;
- ``tmdb`` (:class:`TmdbResource`): TMDB credentials and URL;
- ``dbt`` (``DbtCliResource``): the dbt project of metric models.

Secrets are ``EnvVar`` fields: the UI shows the variable's name, never its value; a secret
whose variable is unset when definitions load is left out (the feature is off and says so).
:func:`resources_for` makes the set from :class:`~cpw_resources.settings.Settings`
(environment and ``cpw.yaml``), so scripts and the UI see the same values. What a user tunes
per run is not here but in the assets' run config (:mod:`cpw_resources.orchestration.config`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from cpw_resources.errors import ConfigError
from cpw_resources.llm.pricing import Pricing
from cpw_resources.llm.providers import LlmAccess, LlmProvider, ProviderSpec, make_provider
from cpw_resources.optimizer.model import ModelStore
from cpw_resources.services.reliability import Policy, Reliability
from cpw_resources.services.tmdb import TmdbClient
from cpw_resources.settings import Settings
from cpw_resources.speech.asr import AsrConfig, load_model
from cpw_resources.speech.models import ModelRegistry
from cpw_resources.store.events import EventStore
from cpw_resources.store.titles import TitleRegistry

if TYPE_CHECKING:
    from cpw_resources.llm.local import LocalServer


def _field(name: str, **extra: Any) -> Any:
    """A resource field described like the setting it mirrors (one description, one place)."""
    info = Settings.model_fields[name]
    return Field(description=f"{info.description} (CPW_{name.upper()})", **extra)


class HomeResource(ConfigurableResource):
    """Where titles, events, caches and models live."""

    path: str = _field("home")

    @property
    def dir(self) -> Path:
        return Path(self.path).expanduser().resolve()

    def under(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)


class EventStoreResource(ConfigurableResource):
    """Append-only Parquet events under ``home/events``, queried through ``home/cpw.duckdb``."""

    home: HomeResource

    @cached_property
    def events(self) -> EventStore:
        store = EventStore(self.home.under("events"), self.home.under("cpw.duckdb"))
        store.ensure_views()
        return store

    def append(self, table: str, rows: list[dict[str, Any]], **where: str) -> None:
        self.events.append(table, rows, **where)


class TitleRegistryResource(ConfigurableResource):
    """Registered titles (partition key → media file and sidecars) under ``home/titles``."""

    home: HomeResource

    @cached_property
    def registry(self) -> TitleRegistry:
        return TitleRegistry(self.home.under("titles"))


class InboxResource(ConfigurableResource):
    """The watched folder the inbox sensor registers dropped films from."""

    home: HomeResource
    folder: str | None = _field("inbox")
    max_new_per_tick: int = _field("inbox_max_new_per_tick")

    @property
    def dir(self) -> Path:
        return Path(self.folder).expanduser().resolve() if self.folder else self.home.under("inbox")


class ReliabilityResource(ConfigurableResource):
    """Circuit breakers (shared by every process here, or by every machine through Redis),
    retry policies by error class, timeouts and deadlines for every outside call."""

    home: HomeResource
    store: EventStoreResource
    breaker_fail_max: int = _field("breaker_fail_max")
    breaker_reset_timeout_s: float = _field("breaker_reset_timeout_s")
    breaker_redis_url: str | None = _field("breaker_redis_url")
    call_deadline_s: float = _field("call_deadline_s")
    service_second_round_pause_s: float = _field("service_second_round_pause_s")
    http_connect_timeout_s: float = _field("http_connect_timeout_s")
    http_read_timeout_s: float = _field("http_read_timeout_s")

    def for_call(self, *, run_id: str, title: str, asset: str,
                 secrets: Sequence[str | None]) -> Reliability:
        """The layer for one asset's calls, each recorded as an ``api_calls`` event and what a
        service answered that was not taken as given as a ``degradations`` row.

        ``secrets`` are the values of the asset's own resources (``llm.secrets``,
        ``tmdb.secrets``); every secret variable set in this run's environment is added, so
        no message leaving the layer shows any of them.
        """
        policy = Policy(fail_max=self.breaker_fail_max,
                        reset_timeout_s=self.breaker_reset_timeout_s,
                        deadline_s=self.call_deadline_s,
                        second_round_pause_s=self.service_second_round_pause_s)
        where = {"run_id": run_id, "title": title, "asset": asset}

        def record(event: dict) -> None:
            self.store.append("api_calls", [event], **where)

        def degraded(row: dict) -> None:
            self.store.append("degradations", [row], **where)

        def note(table: str, row: dict) -> None:
            self.store.append(table, [row], **where)

        configured = [*secrets, *(os.environ.get(var) for var in SECRETS.values())]
        return Reliability(self.home.under("breakers"), policy, on_event=record,
                           on_degradation=degraded, on_note=note, redis_url=self.breaker_redis_url,
                           secrets=configured)


class WhisperResource(ConfigurableResource):
    """Whisper on this machine: where models are, which device and precision, loaded models
    kept per process, and how many Whisper steps may run at once."""

    home: HomeResource
    models_dir: str | None = _field("whisper_models_dir")
    model_paths: dict[str, str] = _field("whisper_model_paths", default_factory=dict)
    device: Literal["auto", "cpu", "cuda"] = _field("device")
    compute_type: str = _field("compute_type")
    cpu_threads: int = _field("cpu_threads")
    asr_pool_size: int = _field("asr_pool_size")
    slot_wait_timeout_s: float = _field("slot_wait_timeout_s")

    @cached_property
    def models(self) -> ModelRegistry:
        return ModelRegistry(
            models_dir=Path(self.models_dir) if self.models_dir else None,
            model_paths={k: Path(v) for k, v in self.model_paths.items()},
            cache_dir=self.home.under("models"),
        )

    def asr_config(self, model: str, *, beam_size: int = 5, batch_size: int = 1,
                   vad_filter: bool = True, vad_threshold: float = 0.5,
                   temperature_fallback: bool = True) -> AsrConfig:
        return AsrConfig.build(model, device=self.device, compute_type=self.compute_type,
                               beam_size=beam_size, batch_size=batch_size,
                               vad_filter=vad_filter, cpu_threads=self.cpu_threads,
                               vad_threshold=vad_threshold,
                               temperature_fallback=temperature_fallback)

    def load(self, config: AsrConfig) -> Any:
        """The faster-whisper model for ``config``, loaded once per process."""
        return load_model(config, self.models)


class OptimizerResource(ConfigurableResource):
    """The optimizer: whether it decides, how sure it must be, when it retrains and explores;
    its models live under ``$CPW_HOME/optimizer`` (docs/optimizer.md)."""

    home: HomeResource
    enabled: bool = Field(True, description="CPW_OPTIMIZER=on|off: let it choose the Whisper "
                          "config per title")
    min_examples: int = _field("optimizer_min_examples")
    tolerance: float = _field("optimizer_tolerance")
    retrain_after: int = _field("optimizer_retrain_after")
    explore_share: float = _field("optimizer_explore_share")
    explore_seconds: float = _field("optimizer_explore_seconds")

    @property
    def models(self) -> ModelStore:
        return ModelStore(self.home.under("optimizer"))


class ContextLearnerResource(ConfigurableResource):
    """The context learner: its memory of the names finished titles confirmed, under
    ``$CPW_HOME/context`` (docs/context.md), and whether titles get suggestions from it."""

    home: HomeResource
    enabled: bool = Field(True, description="CPW_CONTEXT_LEARNER=on|off: suggest names from "
                          "earlier titles")

    @property
    def memory_path(self) -> Path:
        return self.home.under("context") / "memory.parquet"


class LlmResource(ConfigurableResource):
    """LLM providers as ``PROVIDER:MODEL`` (openai, anthropic, compatible): their keys and
    URLs, prices, the reply cache shared by every title, and the day's spending limit."""

    home: HomeResource
    openai_api_key: str | None = Field(None, description="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, description="OPENAI_BASE_URL (any "
                                        "OpenAI-compatible server)")
    anthropic_api_key: str | None = Field(None, description="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(None, description="ANTHROPIC_BASE_URL")
    compatible_base_url: str | None = _field("compatible_base_url")
    compatible_api_key: str | None = Field(None, description="CPW_COMPATIBLE_API_KEY")
    pricing_file: str | None = _field("pricing_file")
    daily_budget_usd: float = _field("daily_budget_usd")
    monthly_budget_usd: float = _field("monthly_budget_usd")
    budget_alerts: list[float] = _field("budget_alerts")
    http_connect_timeout_s: float = _field("http_connect_timeout_s")
    http_read_timeout_s: float = _field("http_read_timeout_s")
    local_llm_dir: str | None = _field("local_llm_dir")
    local_llm_threads: int = _field("local_llm_threads")
    local_llm_context: int = _field("local_llm_context")
    local_llm_idle_s: float = _field("local_llm_idle_s")
    local_llm_start_timeout_s: float = _field("local_llm_start_timeout_s")
    local_llm_timeout_s: float = _field("local_llm_timeout_s")

    @cached_property
    def pricing(self) -> Pricing:
        return Pricing.load(Path(self.pricing_file) if self.pricing_file else None)

    @property
    def cache_path(self) -> Path:
        return self.home.under("cache", "llm.sqlite")

    @property
    def secrets(self) -> tuple[str, ...]:
        """The configured keys, for redaction (resolved at run time; never shown)."""
        keys = (self.openai_api_key, self.anthropic_api_key, self.compatible_api_key)
        return tuple(key for key in keys if key)

    def local_server(self, on_event: Callable[[dict[str, Any]], None] | None = None,
                     log: Callable[[str], None] = lambda _: None) -> LocalServer:
        """The machine's local model servers (``local:NAME``), events to ``on_event``."""
        from cpw_resources.llm.local import LocalServer

        return LocalServer(
            self.home.under("llm"),
            Path(self.local_llm_dir) if self.local_llm_dir else self.home.under("models", "llm"),
            threads=self.local_llm_threads or os.cpu_count() or 2,
            context=self.local_llm_context, idle_s=self.local_llm_idle_s,
            start_timeout_s=self.local_llm_start_timeout_s, on_event=on_event, log=log)

    def access(self, local: LocalServer | None = None) -> LlmAccess:
        return LlmAccess(
            openai_api_key=self.openai_api_key, openai_base_url=self.openai_base_url,
            anthropic_api_key=self.anthropic_api_key,
            anthropic_base_url=self.anthropic_base_url,
            compatible_base_url=self.compatible_base_url,
            compatible_api_key=self.compatible_api_key,
            connect_timeout_s=self.http_connect_timeout_s,
            read_timeout_s=self.http_read_timeout_s,
            local=local, local_timeout_s=self.local_llm_timeout_s,
        )

    def provider(self, spec: str | ProviderSpec, reliability: Reliability, *,
                 setting: str, log: Callable[[str], None] = lambda _: None) -> LlmProvider:
        """A provider for ``PROVIDER:MODEL``; ``setting`` names where the spec came from. A
        ``local:`` one's server starts and failures go to ``reliability``'s events
        (``llm_servers``), its progress to ``log``."""
        parsed = spec if isinstance(spec, ProviderSpec) else ProviderSpec.parse(spec, setting)
        local = None
        if parsed.provider == "local":
            local = self.local_server(lambda row: reliability.note("llm_servers", row), log)
        return make_provider(parsed, self.access(local), reliability, self.pricing,
                             setting=setting)


class TmdbResource(ConfigurableResource):
    """The Movie Database: character and actor names for a film's glossary."""

    home: HomeResource
    api_key: str | None = Field(None, description="TMDB_API_KEY (v3 key)")
    read_access_token: str | None = Field(None, description="TMDB_READ_ACCESS_TOKEN (v4 "
                                          "bearer token)")
    base_url: str = _field("tmdb_base_url")
    http_connect_timeout_s: float = _field("http_connect_timeout_s")
    http_read_timeout_s: float = _field("http_read_timeout_s")

    @property
    def configured(self) -> bool:
        return bool(self.api_key or self.read_access_token)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The configured key and token, for redaction (resolved at run time; never shown)."""
        return tuple(value for value in (self.api_key, self.read_access_token) if value)

    def client(self, reliability: Reliability) -> TmdbClient | None:
        """A client when a credential is set, else None (the glossary goes without)."""
        if not self.configured:
            return None
        return TmdbClient(self.base_url, reliability, cache_dir=self.home.under("responses"),
                          api_key=self.api_key, read_token=self.read_access_token,
                          connect_timeout_s=self.http_connect_timeout_s,
                          read_timeout_s=self.http_read_timeout_s)


#: Secrets: resource field → environment variable.
SECRETS: dict[tuple[str, str], str] = {
    ("llm", "openai_api_key"): "OPENAI_API_KEY",
    ("llm", "anthropic_api_key"): "ANTHROPIC_API_KEY",
    ("llm", "compatible_api_key"): "CPW_COMPATIBLE_API_KEY",
    ("tmdb", "api_key"): "TMDB_API_KEY",
    ("tmdb", "read_access_token"): "TMDB_READ_ACCESS_TOKEN",
}
#: Not secret, but read from the variables the SDKs themselves use.
PLAIN_VARIABLES: dict[tuple[str, str], str] = {
    ("llm", "openai_base_url"): "OPENAI_BASE_URL",
    ("llm", "anthropic_base_url"): "ANTHROPIC_BASE_URL",
}


def _from_environment(resource: str, environ: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for (owner, name), var in SECRETS.items():
        if owner == resource and environ.get(var):
            values[name] = EnvVar(var)
    for (owner, name), var in PLAIN_VARIABLES.items():
        if owner == resource and environ.get(var):
            values[name] = environ[var]
    return values


def resources_for(settings: Settings | None = None,
                    environ: dict[str, str] | None = None) -> dict[str, ConfigurableResource]:
    """Every resource, configured from ``settings`` (default: environment and ``cpw.yaml``)."""
    try:
        s = settings or Settings()
    except ValueError as error:  # pydantic's ValidationError names the field and value
        raise ConfigError(f"invalid CPW settings (environment or cpw.yaml): {error}") from error
    env = dict(os.environ if environ is None else environ)
    home = HomeResource(path=str(s.home))
    store = EventStoreResource(home=home)
    timeouts = {"http_connect_timeout_s": s.http_connect_timeout_s,
                "http_read_timeout_s": s.http_read_timeout_s}
    return {
        "home": home,
        "store": store,
        "titles": TitleRegistryResource(home=home),
        "inbox": InboxResource(home=home, folder=str(s.inbox) if s.inbox else None,
                               max_new_per_tick=s.inbox_max_new_per_tick),
        "reliability": ReliabilityResource(
            home=home, store=store, breaker_fail_max=s.breaker_fail_max,
            breaker_reset_timeout_s=s.breaker_reset_timeout_s,
            breaker_redis_url=s.breaker_redis_url, call_deadline_s=s.call_deadline_s,
            service_second_round_pause_s=s.service_second_round_pause_s, **timeouts),
        "whisper": WhisperResource(
            home=home,
            models_dir=str(s.whisper_models_dir) if s.whisper_models_dir else None,
            model_paths={k: str(v) for k, v in s.whisper_model_paths.items()},
            device=s.device, compute_type=s.compute_type, cpu_threads=s.cpu_threads,
            asr_pool_size=s.asr_pool_size, slot_wait_timeout_s=s.slot_wait_timeout_s),
        "optimizer": OptimizerResource(
            home=home, enabled=s.optimizer == "on", min_examples=s.optimizer_min_examples,
            tolerance=s.optimizer_tolerance, retrain_after=s.optimizer_retrain_after,
            explore_share=s.optimizer_explore_share,
            explore_seconds=s.optimizer_explore_seconds),
        "context_learner": ContextLearnerResource(home=home,
                                                  enabled=s.context_learner == "on"),
        "llm": LlmResource(
            home=home, compatible_base_url=s.compatible_base_url,
            pricing_file=str(s.pricing_file) if s.pricing_file else None,
            daily_budget_usd=s.daily_budget_usd, monthly_budget_usd=s.monthly_budget_usd,
            budget_alerts=list(s.budget_alerts), **timeouts,
            local_llm_dir=str(s.local_llm_dir) if s.local_llm_dir else None,
            local_llm_threads=s.local_llm_threads, local_llm_context=s.local_llm_context,
            local_llm_idle_s=s.local_llm_idle_s,
            local_llm_start_timeout_s=s.local_llm_start_timeout_s,
            local_llm_timeout_s=s.local_llm_timeout_s,
            **_from_environment("llm", env)),
        "tmdb": TmdbResource(home=home, base_url=s.tmdb_base_url, **timeouts,
                             **_from_environment("tmdb", env)),
    }

