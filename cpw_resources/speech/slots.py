"""Machine-wide slots: at most N processes on this machine inside a block at once.

The Whisper work (``transcript``, ``translation``) takes one of N ``flock``-ed slot files under
``$CPW_HOME/slots/``; this is the only gate on it. The kernel releases a lock when its process
dies, so a killed run never keeps a slot and nothing has to notice that it died. (Dagster's
pools are not used for it: in Dagster 1.13 a step waiting for a pool slot in the in-process
executor spins a core, ignores SIGINT and SIGTERM until a step body runs, and a killed run keeps
its pool slot in the instance database until something marks the run failed.)

A holder writes one JSON line into its slot file (pid, since, a label such as the run and step),
so a waiter can say who it waits for. Waiting is a sleep between tries (no CPU, and a signal
ends it at once) and ends after ``timeout_s`` with a :class:`SlotTimeoutError` naming the
holders.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from cpw_resources.errors import CpwError

#: The slots of the Whisper work.
ASR = "asr"


class SlotTimeoutError(CpwError):
    """No slot of a pool became free within the wait limit; the message names the holders."""


@dataclass(frozen=True)
class Holder:
    """Who holds a slot, as its holder wrote it into the slot file."""

    pid: int
    since: float  # epoch seconds
    label: str

    def describe(self) -> str:
        return f"{self.label} (pid {self.pid}, for {format_seconds(time.time() - self.since)})"


def format_seconds(seconds: float) -> str:
    """``42 s``, ``7 min 3 s``, ``6 h 0 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def holders(folder: Path, pool: str, size: int) -> list[Holder]:
    """The live holders of ``pool``'s slots as they described themselves (best effort)."""
    found = []
    for index in range(size):
        try:
            record = json.loads((folder / f"{pool}.{index}.lock").read_text())
            holder = Holder(int(record["pid"]), float(record["since"]), str(record["label"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if psutil.pid_exists(holder.pid):
            found.append(holder)
    return found


def _describe_all(found: list[Holder]) -> str:
    return "; ".join(h.describe() for h in found) or "a process that did not say who it is"


def _try_claim(folder: Path, pool: str, size: int) -> IO[str] | None:
    for index in range(size):
        handle = open(folder / f"{pool}.{index}.lock", "a+")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return handle
    return None


def _write_holder(handle: IO[str], label: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "since": time.time(), "label": label}) + "\n")
    handle.flush()


@contextmanager
def machine_slot(folder: Path, pool: str, size: int, *, label: str = "",
                 timeout_s: float | None = None, hint: str = "", poll_s: float = 0.25,
                 on_wait: Callable[[list[Holder]], None] | None = None) -> Iterator[float]:
    """Hold one of ``size`` slots of ``pool``; yields the seconds spent waiting for it.

    ``label`` says who holds it (shown to waiters); after ``timeout_s`` of waiting a
    :class:`SlotTimeoutError` names the holders and ends with ``hint`` (what to do).
    ``on_wait`` is called once, with the holders, when the first try fails.
    """
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    handle = _try_claim(folder, pool, size)
    if handle is None and on_wait is not None:
        on_wait(holders(folder, pool, size))
    while handle is None:
        waited = time.monotonic() - started
        if timeout_s is not None and waited >= timeout_s:
            raise SlotTimeoutError(
                f"no {pool} slot came free in {format_seconds(waited)} ({size} on this machine, "
                f"under {folder}); held by {_describe_all(holders(folder, pool, size))}. {hint}"
                .rstrip())
        left = poll_s if timeout_s is None else min(poll_s, timeout_s - waited)
        time.sleep(max(left, 0.0))
        handle = _try_claim(folder, pool, size)
    try:
        _write_holder(handle, label or f"process {os.getpid()}")
        yield time.monotonic() - started
    finally:
        handle.truncate(0)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
