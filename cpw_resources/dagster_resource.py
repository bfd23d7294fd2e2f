"""The Dagster resource every asset takes: settings, the event store and the title registry.

Fields left unset fall back to :class:`~cpw_resources.settings.Settings` (environment and
``cpw.yaml``), so the UI's launchpad can override one setting for one run while scripts rely
on the environment.
"""

from __future__ import annotations

from functools import cached_property

from dagster import ConfigurableResource

from cpw_resources.reliability import Policy, Reliability
from cpw_resources.settings import Settings
from cpw_resources.store import EventStore
from cpw_resources.titles import TitleRegistry


class CpwResource(ConfigurableResource):
    """Per-run overrides of the CPW settings; None means 'use the environment / cpw.yaml'."""

    home: str | None = None
    whisper_model: str | None = None
    translation_model: str | None = None
    device: str | None = None
    compute_type: str | None = None
    beam_size: int | None = None
    batch_size: int | None = None
    language: str | None = None
    target_language: str | None = None
    bilingual: bool | None = None

    @cached_property
    def settings(self) -> Settings:
        overrides = {k: v for k, v in self.model_dump().items() if v is not None}
        return Settings(**overrides)

    @cached_property
    def store(self) -> EventStore:
        store = EventStore(self.settings.events_dir, self.settings.duckdb_path)
        store.ensure_views()
        return store

    @cached_property
    def registry(self) -> TitleRegistry:
        return TitleRegistry(self.settings.titles_dir)

    def reliability(self, *, run_id: str, title: str, asset: str) -> Reliability:
        """The reliability layer, recording each outside call as an ``api_calls`` event."""
        settings = self.settings
        policy = Policy(fail_max=settings.breaker_fail_max,
                        reset_timeout_s=settings.breaker_reset_timeout_s,
                        deadline_s=settings.call_deadline_s,
                        second_round_pause_s=settings.service_second_round_pause_s)

        def record(event: dict) -> None:
            self.store.append("api_calls", [event], run_id=run_id, title=title, asset=asset)

        return Reliability(settings.breakers_dir, policy, on_event=record,
                           redis_url=settings.breaker_redis_url)
