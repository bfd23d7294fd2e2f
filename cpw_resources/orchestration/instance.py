"""The Dagster instance CP-WhisperX runs on: ``dagster.yaml``, pool limits, dead-run recovery.

``DAGSTER_HOME`` defaults to ``$CPW_HOME/dagster``. The ``dagster.yaml`` written there queues
runs (at most ``max_concurrent_runs`` at once) and gives every pool one slot by default (the
DuckDB writers); the ``asr`` pool gets ``asr_pool_size`` slots. A file whose first line is not
our header was edited by a person and is left alone.

A run whose process was killed (SIGKILL, power loss) stays STARTED in Dagster and keeps its
pool slot, which would block every later Whisper step. :func:`recover_dead_runs` finds such
runs on this machine by the pid their executor logged, marks them failed and frees their slots.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from cpw_resources.settings import Settings

HEADER = "# Written by cpw from CPW_* settings; delete this line to keep your own edits.\n"
ASR_POOL = "asr"


def dagster_yaml(settings: Settings) -> str:
    return HEADER + f"""\
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: {settings.max_concurrent_runs}
  pools:
    default_limit: 1
"""


def ensure_dagster_home(settings: Settings) -> Path:
    """Point DAGSTER_HOME at ``$CPW_HOME/dagster`` unless set; keep its dagster.yaml current."""
    home = settings.dagster_home
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = dagster_yaml(settings)
    current = config.read_text() if config.exists() else None
    if current is None or (current.startswith(HEADER) and current != wanted):
        config.write_text(wanted)
    return home


#: Dagster commands that run a job against an instance; without DAGSTER_HOME they get a
#: throwaway one that knows no registered title.
_RUN_COMMANDS = (("job", "execute"), ("asset", "materialize"), ("job", "launch"))


def refuse_throwaway_instance(argv: list[str] | None = None,
                              environ: dict[str, str] | None = None) -> None:
    """Exit with one line when ``dagster job execute`` runs without ``DAGSTER_HOME``.

    Dagster would use a temporary instance that knows no title and fail deep inside partition
    handling; the user needs to know which variable to set.
    """
    argv = sys.argv if argv is None else argv
    env = os.environ if environ is None else environ
    if env.get("DAGSTER_HOME") or Path(argv[0]).name != "dagster":
        return
    if tuple(argv[1:3]) in _RUN_COMMANDS:
        cpw_home = env.get("CPW_HOME", ".cpw")
        raise SystemExit(
            f"cpw: DAGSTER_HOME is not set, so Dagster would use a throwaway instance that "
            f"knows no registered title; run `eval \"$(cpw env)\"` or export "
            f"DAGSTER_HOME={Path(cpw_home).expanduser().resolve() / 'dagster'}"
        )


def configure_pools(instance: DagsterInstance, settings: Settings) -> None:
    storage = instance.event_log_storage
    if storage.get_concurrency_info(ASR_POOL).slot_count != settings.asr_pool_size:
        storage.set_concurrency_slots(ASR_POOL, settings.asr_pool_size)


def _executor_pid(instance: DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, time) from the executor's 'Executing steps in process (pid: N)' event."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        metadata = entry.dagster_event.event_specific_data.metadata or {}
        if "pid" in metadata and entry.message.startswith("Executing steps"):
            return int(metadata["pid"].value), entry.timestamp
    return None


def _alive(pid: int, since: float) -> bool:
    try:
        process = psutil.Process(pid)
        # A process created after the run started is a new one that reused the pid.
        return process.create_time() <= since + 1 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def recover_dead_runs(instance: DagsterInstance) -> list[str]:
    """Fail the in-progress runs whose process is gone and free their pool slots."""
    recovered = []
    in_progress = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING,
                   DagsterRunStatus.CANCELING]
    for run in instance.get_runs(RunsFilter(statuses=in_progress)):
        found = _executor_pid(instance, run.run_id)
        if found is None or _alive(*found):
            continue
        instance.report_run_failed(
            run, f"run process {found[0]} is gone (killed or crashed); marked failed by cpw"
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        recovered.append(run.run_id)
    return recovered
