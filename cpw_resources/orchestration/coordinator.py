"""The run queue, with one check before a run joins it: can its subtitle languages be made?

Dagster's launchpad validates run config against its schema, but which languages a run can
produce depends on two fields at once (the languages and the translation backend) and on the
speech, which no schema expresses. :class:`CpwRunCoordinator` is Dagster's
``QueuedRunCoordinator`` that asks :func:`~cpw_resources.language.targets.unreachable` first,
with the run's own config over the settings. A run that asks for a language no configured
backend can make is taken back out of the instance (so its title is not marked failed: the run
never existed for the partition's status) and the launch fails with one line naming the
backends that could, which the UI shows in its launch error. ``cpw run`` and the inbox sensor
ask the same question before they create a run at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import AssetKey, DagsterRun, QueuedRunCoordinator, SubmitRunContext

from cpw_resources.errors import ConfigError

#: Jobs whose runs translate (an asset job run names its assets in ``asset_selection``).
TRANSLATING_JOBS = frozenset({"subtitle_job"})


def _translates(run: DagsterRun) -> bool:
    if run.asset_selection:
        return AssetKey("translation") in run.asset_selection
    return run.job_name in TRANSLATING_JOBS


def _op_config(run_config: Mapping[str, Any], op: str) -> Mapping[str, Any]:
    return ((run_config.get("ops") or {}).get(op) or {}).get("config") or {}


def refusal(run: DagsterRun) -> str | None:
    """Why ``run`` cannot make one of its subtitle languages, or None when it can (or does not
    translate). The run's config wins over the settings (environment, ``cpw.yaml``)."""
    if not _translates(run):
        return None
    from cpw_resources.language.targets import unreachable
    from cpw_resources.settings import Settings

    settings = Settings()
    translation = _op_config(run.run_config or {}, "translation")
    languages = translation.get("target_languages") or (
        [translation["target_language"]] if translation.get("target_language")
        else settings.languages)
    spoken = (_op_config(run.run_config or {}, "transcript").get("language")
              or _op_config(run.run_config or {}, "audio").get("language") or settings.language)
    backend = translation.get("backend") or settings.translation_backend
    return unreachable(list(languages), spoken, backend)


class CpwRunCoordinator(QueuedRunCoordinator):
    """``QueuedRunCoordinator`` that refuses, before queuing, a run whose subtitle languages
    no configured backend can make (see the module docstring)."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        why = refusal(run)
        if why:
            title = run.tags.get("dagster/partition")
            # Out of the instance before Dagster records the refusal as a failure: the title's
            # partition keeps the status it had.
            self._instance.delete_run(run.run_id)
            raise ConfigError(f"{title}: {why}" if title else why)
        return super().submit_run(context)
