"""Atomic file writes, the file system's limits, and what a failed write means to the user.

Every write goes to a temporary name in the same folder, is fsynced, then renamed: a crash at
any moment leaves either the previous file or the complete new one, never a half-written
artifact. Temporary names start with ``.`` and end in ``.tmp`` so no glob that readers use
(``*.parquet``, ``*.json``, ``*.srt``) ever matches them; beside a destination whose name is
near the file system's limit (:func:`name_max`) the temporary name is cut short to fit. They
carry the writer's pid (``.NAME.PID.RANDOM.tmp``), so a later run removes the leftovers of a
killed write (:func:`remove_dead_temps`) without touching a write still in progress.

A write that fails because the disk or a quota is full (ENOSPC, EDQUOT, EFBIG; also when a
Rust library such as Polars reports it as ``(os error 28)`` in its own exception) or because
the folder cannot be written (EROFS, EACCES, EPERM) raises one :class:`StorageError` naming
the file and what to do, and leaves no temporary file behind. :func:`require_writable` checks
up front that the folder a setting names can be written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from cpw_resources.errors import StorageError

#: The usual longest file name in bytes, where the file system does not say (PC_NAME_MAX).
DEFAULT_NAME_MAX = 255
_TMP_SUFFIX = ".tmp"
_TMP_RANDOM = 8  # characters tempfile.mkstemp puts between prefix and suffix
_FIX_SPACE = ("free space on the disk that holds {folder} (old titles, caches and events "
              "under CPW_HOME can go) and run again")
#: Write errors the user fixes by making room: what happened, what to do.
_FULL = {
    errno.ENOSPC: ("no space left on the device", _FIX_SPACE),
    errno.EDQUOT: ("disk quota exceeded", _FIX_SPACE),
    errno.EFBIG: ("file too large for the file system or for this process's file-size limit",
                  "raise the limit (ulimit -f) or put CPW_HOME on a file system that allows "
                  "larger files, and run again"),
}
#: Write errors the user fixes by making the folder writable.
_LOCKED = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
           errno.EPERM: "operation not permitted"}
_FIX_LOCKED = ("make {folder} writable, or point the setting that names it (CPW_HOME, "
               "DAGSTER_HOME, CPW_INBOX) at a folder you can write")
#: How Rust libraries (Polars) carry an OS error in the text of their own exception types.
_OS_ERROR_IN_TEXT = re.compile(r"\(os error (\d+)\)")


def name_max(folder: Path | str) -> int:
    """The longest file name, in bytes, that the file system holding ``folder`` allows."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return DEFAULT_NAME_MAX
    return limit if limit > 0 else DEFAULT_NAME_MAX


def name_bytes(name: str) -> int:
    """The length of ``name`` as the file system counts it (UTF-8 bytes, not characters)."""
    return len(os.fsencode(name))


def fit_name(stem: str, tail: str, limit: int) -> str:
    """``stem + tail``; when that is over ``limit`` bytes, ``stem`` cut short, then ``~`` and a
    hash of the whole ``stem`` (two long names stay distinct), then ``tail``."""
    if name_bytes(stem + tail) <= limit:
        return stem + tail
    mark = "~" + hashlib.sha256(os.fsencode(stem)).hexdigest()[:8] + tail
    while stem and name_bytes(stem + mark) > limit:
        stem = stem[:-1]
    return stem + mark


def storage_error(error: BaseException, path: Path | str, *,
                  permissions: bool = True) -> StorageError | None:
    """The :class:`StorageError` that ``error``, raised writing ``path``, means to a user; None
    when it is about something else. ``permissions=False`` leaves EACCES/EPERM alone (code
    that reads other files may raise them)."""
    if isinstance(error, OSError):
        code = error.errno
    else:
        found = _OS_ERROR_IN_TEXT.search(str(error))
        code = int(found.group(1)) if found else None
    folder = Path(path).parent
    if code in _FULL:
        what, fix = _FULL[code]
        return StorageError(path, f"cannot write it: {what}; {fix.format(folder=folder)}")
    if code in _LOCKED and (permissions or code == errno.EROFS):
        return StorageError(path, f"cannot write it: {_LOCKED[code]}; "
                                  f"{_FIX_LOCKED.format(folder=folder)}")
    return None


def require_writable(folder: Path | str, setting: str) -> Path:
    """Create ``folder`` if needed and prove it takes a file; else a :class:`StorageError`
    naming ``setting``, the variable that chose the folder."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise StorageError(folder, f"{setting} names this folder but it cannot be written "
                                   f"({reason}); make it writable, or set {setting} to a "
                                   f"folder you can write") from error
    return folder


def _temporary(dest: Path) -> Path:
    """A new empty file beside ``dest``, named to fit the file system's limit."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    pid = str(os.getpid())
    room = name_max(dest.parent) - len(_TMP_SUFFIX) - _TMP_RANDOM - len(pid) - 3  # three dots
    prefix = "." + fit_name(dest.name, "", room) + f".{pid}."
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=_TMP_SUFFIX, dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; published artifacts get the usual umask-derived mode.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    return tmp


@contextmanager
def atomic_path(dest: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it over ``dest``."""
    dest = Path(dest)
    tmp: Path | None = None
    try:
        tmp = _temporary(dest)
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except Exception as error:
        translated = storage_error(error, dest, permissions=tmp is None)
        if translated is None:
            raise
        raise translated from error
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):  # a read-only folder keeps what it has
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


_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")  # .NAME.PID.RANDOM.tmp


def remove_dead_temps(folder: Path) -> list[Path]:
    """Delete the temporary files under ``folder`` whose writer is gone (a killed write).

    A file whose writer still runs is left alone, as is a temporary name without a pid.
    Returns the removed paths.
    """
    removed = []
    for path in folder.rglob(".*.tmp"):
        match = _TEMP_NAME.match(path.name)
        try:
            if match is None or process_alive(int(match.group(1)), path.stat().st_mtime):
                continue
            path.unlink()
        except FileNotFoundError:  # published or removed meanwhile
            continue
        removed.append(path)
    return removed


def process_alive(pid: int, since: float) -> bool:
    """Process ``pid`` runs and is the one that was there at ``since`` (epoch seconds): a
    process started later reused the pid of a dead one."""
    try:
        process = psutil.Process(pid)
        return process.create_time() <= since + 1 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created, with its folder) for the block; the
    kernel frees it with the process, so a killed holder never leaves it taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
