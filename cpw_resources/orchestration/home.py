"""``DAGSTER_HOME`` and its ``dagster.yaml``, without importing Dagster (``cpw register`` and
``cpw env`` stay cheap). See :mod:`cpw_resources.orchestration.instance` for what the file
configures."""

from __future__ import annotations

import os
from pathlib import Path

from cpw_resources.atomic import require_writable
from cpw_resources.settings import Settings

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
