"""Artifact cache: reuse a stage's outputs when its inputs and the settings it uses are unchanged.

Each stage computes a key from the content hashes of the artifacts it reads and the settings
that change its output, and finds ``.cache/<stage>.json`` under the title folder: when the
key matches and every output file is still the one the manifest recorded, the stage's work is
skipped and its recorded result reused. Keys chain through content, not through run history,
so changing one setting recomputes exactly the stages whose inputs or settings changed: a
stage downstream of a recomputed one is reused if the recomputed artifact came out the same.

Content hashes of big files (``audio.wav``) are computed once, when the file is published, and
remembered beside it (``.cache/<name>.sha256`` with its size and mtime). The manifest is
written after the outputs, atomically, so a crash in between only costs a recomputation.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cpw_resources.atomic import write_json

# Bump when a stage's code changes what it writes, so old artifacts are not reused.
CACHE_VERSION = 1
_CHUNK = 4 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactCache:
    def __init__(self, title_dir: Path) -> None:
        self.title_dir = Path(title_dir)
        self.dir = self.title_dir / ".cache"

    def _hash_record(self, path: Path) -> Path:
        return self.dir / f"{path.name}.sha256.json"

    def file_hash(self, path: Path) -> str:
        """Content hash of ``path``, recomputed only when its size or mtime changed."""
        stat = path.stat()
        record = self._hash_record(path)
        try:
            known = json.loads(record.read_text())
            if known["size"] == stat.st_size and known["mtime_ns"] == stat.st_mtime_ns:
                return known["sha256"]
        except (OSError, ValueError, KeyError):
            pass
        digest = sha256_file(path)
        write_json(record, {"sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
        return digest

    def _unchanged(self, path: Path, sha: str) -> bool:
        """The output is still the file the manifest recorded (size and mtime as hashed)."""
        try:
            known = json.loads(self._hash_record(path).read_text())
            stat = path.stat()
        except (OSError, ValueError):
            return False
        return (known.get("sha256") == sha and known.get("size") == stat.st_size
                and known.get("mtime_ns") == stat.st_mtime_ns)

    @staticmethod
    def key(stage: str, parts: dict[str, Any]) -> str:
        payload = json.dumps({"stage": stage, "version": CACHE_VERSION, **parts},
                             sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def lookup(self, stage: str, key: str) -> dict[str, Any] | None:
        """The stored result of ``stage`` for ``key``, or None when it must run."""
        try:
            manifest = json.loads((self.dir / f"{stage}.json").read_text())
        except (OSError, ValueError):
            return None
        if manifest.get("key") != key:
            return None
        outputs = manifest.get("outputs", {})
        if not all(self._unchanged(self.title_dir / name, sha) for name, sha in outputs.items()):
            return None
        return manifest.get("result", {})

    def store(self, stage: str, key: str, outputs: list[Path], result: dict[str, Any]) -> None:
        hashes = {p.relative_to(self.title_dir).as_posix(): self.file_hash(p) for p in outputs}
        write_json(self.dir / f"{stage}.json", {"key": key, "outputs": hashes, "result": result})
