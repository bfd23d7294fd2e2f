"""Atomic file writes: write to a temporary name in the same folder, fsync, rename.

A crash at any moment leaves either the previous file or the complete new one, never a
half-written artifact. Temporary names start with ``.`` and end in ``.tmp`` so no glob that
readers use (``*.parquet``, ``*.json``, ``*.srt``) ever matches them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(dest: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it over ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; published artifacts get the usual umask-derived mode.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(dest: Path | str, data: bytes) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def write_text(dest: Path | str, text: str) -> Path:
    return write_bytes(dest, text.encode("utf-8"))


def write_json(dest: Path | str, obj: Any) -> Path:
    return write_text(dest, json.dumps(obj, ensure_ascii=False, indent=1) + "\n")


def write_with(dest: Path | str, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` and publish its output atomically at ``dest``."""
    with atomic_path(dest) as tmp:
        writer(tmp)
    return Path(dest)
