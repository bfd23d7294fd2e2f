"""The Dagster instance CP-WhisperX runs on: ``dagster.yaml``, pool limits, dead-run recovery.

``DAGSTER_HOME`` defaults to ``$CPW_HOME/dagster``. The ``dagster.yaml`` written there queues
runs (at most ``max_concurrent_runs`` at once; a run whose subtitle languages cannot be made is
refused before it queues, :mod:`cpw_resources.orchestration.coordinator`) and gives every pool
one slot by default (the DuckDB writers of the ``duckdb`` pool). A file whose first line is
not our header was edited by a person and is left alone. (Whisper's slots are not a Dagster
pool but machine-wide ``flock`` slots, see :mod:`cpw_resources.speech.slots`.)

A run whose process was killed (SIGKILL, power loss) stays STARTED in Dagster and keeps any
pool slot it held. :func:`recover_dead_runs` finds such runs on this machine by the pid their
executor logged, records a ``runs`` event with the reason, marks them failed and frees their
slots. Every run does this before its first stage, as do ``cpw`` and the daemon's sensor, so
no command has to be run first.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

from cpw_resources.atomic import process_alive
from cpw_resources.orchestration.home import HEADER, dagster_yaml, ensure_dagster_home

if TYPE_CHECKING:
    from cpw_resources.store.events import EventStore

__all__ = ["HEADER", "dagster_yaml", "ensure_dagster_home", "recover_dead_runs",
           "refuse_throwaway_instance"]

IN_PROGRESS = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]
_STEP_EVENTS = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS,
                DagsterEventType.STEP_FAILURE}


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


@dataclass(frozen=True)
class DeadRun:
    """A run whose process is gone: its id, title (partition), pid and the step it was in."""

    run_id: str
    title: str
    pid: int
    step: str | None

    @property
    def reason(self) -> str:
        during = f" during {self.step}" if self.step else ""
        return f"process {self.pid} was killed or died{during}"


def _executor_pid(instance: DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, time) from the executor's 'Executing steps ... (pid: N)' event."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        metadata = entry.dagster_event.event_specific_data.metadata or {}
        if "pid" in metadata and entry.message.startswith("Executing steps"):
            return int(metadata["pid"].value), entry.timestamp
    return None


def _running_step(instance: DagsterInstance, run_id: str) -> str | None:
    """The last step that started and did not finish."""
    running: list[str] = []
    for entry in instance.all_logs(run_id, of_type=_STEP_EVENTS):
        key = entry.dagster_event.step_key
        if entry.dagster_event.event_type == DagsterEventType.STEP_START:
            running.append(key)
        elif key in running:
            running.remove(key)
    return running[-1] if running else None



def _dead(instance: DagsterInstance, run: DagsterRun) -> DeadRun | None:
    found = _executor_pid(instance, run.run_id)
    if found is None or process_alive(*found):
        return None
    return DeadRun(run.run_id, run.tags.get("dagster/partition", ""), found[0],
                   _running_step(instance, run.run_id))


@contextmanager
def _recovery_lock(instance: DagsterInstance) -> Iterator[bool]:
    """True for the one process recovering now (so two new runs do not both record a dead
    run); the others go on without waiting, as that one does the work."""
    with open(Path(instance.root_directory) / ".cpw-recovery.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def recover_dead_runs(instance: DagsterInstance, events: EventStore) -> list[DeadRun]:
    """Fail the in-progress runs whose process is gone, record why, free their pool slots."""
    with _recovery_lock(instance) as mine:
        if not mine:
            return []
        dead = [(run, found) for run in instance.get_runs(RunsFilter(statuses=IN_PROGRESS))
                if (found := _dead(instance, run)) is not None]
        for run, found in dead:
            # The event first: a crash between the two repeats it rather than loses it.
            events.append("runs", [{"status": "failed", "error_class": "ProcessDied",
                                    "error_message": found.reason}],
                          run_id=found.run_id, title=found.title, asset=found.step or "run")
            instance.report_run_failed(run, f"{found.reason}; marked failed by cpw")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return [found for _, found in dead]
