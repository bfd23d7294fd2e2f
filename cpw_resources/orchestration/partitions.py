"""One dynamic partition per title; keys come from the title registry (``cpw register``, the
inbox sensor) and reach the Dagster instance through :func:`sync_titles`."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import DynamicPartitionsDefinition

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from cpw_resources.store.titles import TitleRegistry

titles = DynamicPartitionsDefinition(name="titles")
log = logging.getLogger("cpw")


def sync_titles(instance: DagsterInstance, registry: TitleRegistry) -> list[str]:
    """Add a partition for every registered title the instance does not know yet; the keys
    added. (One index read and one query: cheap enough for every definitions load.)"""
    keys = list(registry.index().titles)
    if not keys:
        return []
    known = set(instance.get_dynamic_partitions(titles.name))
    new = [key for key in keys if key not in known]
    if new:
        instance.add_dynamic_partitions(titles.name, new)
    return new


def sync_at_load() -> None:
    """When Dagster loads the definitions with an instance (``dagster job execute``,
    ``dg launch``, the UI's code server), the titles registered since (``cpw register`` needs
    no Dagster of its own) become partitions first, so a script can launch the key
    ``cpw register`` printed. Never fails the load: a problem is logged and left to the run."""
    if not os.environ.get("DAGSTER_HOME"):
        return
    try:
        from dagster import DagsterInstance

        from cpw_resources.settings import Settings
        from cpw_resources.store.titles import TitleRegistry

        settings = Settings()
        if not settings.titles_dir.is_dir():
            return
        from cpw_resources.orchestration.home import sync_lock

        with sync_lock(Path(os.environ["DAGSTER_HOME"])), DagsterInstance.get() as instance:
            sync_titles(instance, TitleRegistry(settings.titles_dir))
    except Exception as error:  # noqa: BLE001 - a load must not fail on it; the run will say
        log.warning("cpw: registered titles not synced to Dagster partitions: %s", error)
