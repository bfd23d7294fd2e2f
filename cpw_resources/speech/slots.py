"""Machine-wide slots: at most N processes on this machine inside a block at once.

Dagster's pools limit steps across runs, but on the default SQLite instance storage two
processes can claim the last slot at the same moment (SQLite has no ``SELECT … FOR UPDATE``).
Whisper on a CPU must not run twice at once, so the work itself also takes one of N
``flock``-ed slot files. The kernel releases a lock when its process dies, so a killed run never
keeps a slot.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def machine_slot(folder: Path, pool: str, size: int, *, poll_s: float = 0.1,
                 on_wait: Callable[[], None] | None = None) -> Iterator[float]:
    """Hold one of ``size`` slots of ``pool``; yields the seconds spent waiting for it."""
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    warned = False
    while True:
        for index in range(size):
            handle = open(folder / f"{pool}.{index}.lock", "a+")  # noqa: SIM115
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield time.perf_counter() - started
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if not warned and on_wait is not None:
            on_wait()
            warned = True
        time.sleep(poll_s)
