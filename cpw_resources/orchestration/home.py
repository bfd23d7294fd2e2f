"""``DAGSTER_HOME`` and its ``dagster.yaml``, without importing Dagster (``cpw register`` and
``cpw env`` stay cheap). See :mod:`cpw_resources.orchestration.instance` for what the file
configures."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from cpw_resources.atomic import file_lock, require_writable
from cpw_resources.settings import Settings

if TYPE_CHECKING:
    from cpw_resources.store.titles import TitleRegistry

HEADER = "# Written by cpw from CPW_* settings; delete this line to keep your own edits.\n"


def dagster_yaml(settings: Settings) -> str:
    return HEADER + f"""\
telemetry:
  enabled: false
run_coordinator:
  module: cpw_resources.orchestration.coordinator
  class: CpwRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: {settings.max_concurrent_runs}
  pools:
    default_limit: 1
"""


def ensure_dagster_home(settings: Settings) -> Path:
    """Point DAGSTER_HOME at ``$CPW_HOME/dagster`` unless set; keep its dagster.yaml current.

    A CPW_HOME or DAGSTER_HOME that cannot be written is a one-line ``StorageError`` naming
    the folder and the setting, not Dagster's SQLite traceback."""
    home = settings.dagster_home
    os.environ["DAGSTER_HOME"] = str(home)
    require_writable(settings.home_dir, "CPW_HOME")
    require_writable(home, "DAGSTER_HOME")
    config = home / "dagster.yaml"
    wanted = dagster_yaml(settings)
    current = config.read_text() if config.exists() else None
    if current is None or (current.startswith(HEADER) and current != wanted):
        config.write_text(wanted)
    return home


def sync_lock(dagster_home: Path) -> AbstractContextManager[None]:
    """One process at a time creates the instance's storage or adds partitions (SQLite and
    Dagster's schema migration do not take several first writers at once)."""
    return file_lock(dagster_home / ".cpw-partitions.lock")


def instance_ready(dagster_home: Path) -> bool:
    """Whether the instance at ``dagster_home`` has its storage (created by a first open)."""
    return (dagster_home / "history" / "runs.db").is_file()


def ensure_partitions(dagster_home: Path, registry: TitleRegistry) -> None:
    """Create the instance's storage if this is its first use and sync the partitions, under
    the lock; the first registration in a new home pays for the Dagster import once."""
    with sync_lock(dagster_home):
        from dagster import DagsterInstance

        from cpw_resources.orchestration.partitions import sync_titles

        with DagsterInstance.get() as instance:
            sync_titles(instance, registry)
