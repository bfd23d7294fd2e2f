"""Circuit-breaker state in a file every process on the machine shares (flock).

Kept apart from :mod:`cpw_resources.services.reliability` so that pybreaker (which imports the
redis client when installed) loads only when a service is first called.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pybreaker


class FileBreakerStorage(pybreaker.CircuitBreakerStorage):
    """Breaker state in ``<dir>/<service>.json``, shared by every process through flock."""

    def __init__(self, path: Path) -> None:
        super().__init__(path.stem)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = json.loads(self.path.read_text())
            except (OSError, ValueError):
                data = {}
            before = dict(data)
            yield data
            if data != before:
                tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(data))
                os.replace(tmp, self.path)

    def _get(self, key: str, default: Any) -> Any:
        with self._locked() as data:
            return data.get(key, default)

    def _set(self, key: str, value: Any) -> None:
        with self._locked() as data:
            data[key] = value

    def _add(self, key: str) -> None:
        with self._locked() as data:
            data[key] = data.get(key, 0) + 1

    @property
    def state(self) -> str:
        return self._get("state", pybreaker.STATE_CLOSED)

    @state.setter
    def state(self, state: str) -> None:
        self._set("state", state)

    def increment_counter(self) -> None:
        self._add("fail_counter")

    def reset_counter(self) -> None:
        self._set("fail_counter", 0)

    def increment_success_counter(self) -> None:
        self._add("success_counter")

    def reset_success_counter(self) -> None:
        self._set("success_counter", 0)

    @property
    def counter(self) -> int:
        return self._get("fail_counter", 0)

    @property
    def success_counter(self) -> int:
        return self._get("success_counter", 0)

    @property
    def opened_at(self) -> datetime | None:
        value = self._get("opened_at", None)
        return datetime.fromtimestamp(value, UTC) if value is not None else None

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        self._set("opened_at", value.timestamp())
