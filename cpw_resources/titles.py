"""Title registry: a media file gets a stable, readable partition key.

The key is a slug of the file name (``Dil Chahta Hai (2001).mkv`` → ``dil_chahta_hai_2001``),
made only of ``[a-z0-9_]`` so it is a valid Dagster partition key. The same file registered
twice (same path, or same content at another path) gets the same key; a different file whose
name slugs the same gets the key plus a short hash of its path. Each title's record lives at
``titles/<key>/title.json``; a lock file serialises registrations on one machine.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from slugify import slugify

from cpw_resources.atomic import write_json
from cpw_resources.errors import MediaError, UnknownTitleError

MAX_KEY_LENGTH = 60
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Title:
    key: str
    media_path: str
    size: int
    mtime: float
    content_id: str

    @property
    def media(self) -> Path:
        return Path(self.media_path)


def content_id(path: Path) -> str:
    """Cheap content fingerprint: size plus SHA-256 of the first and last MiB."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(_BLOCK))
        if size > _BLOCK:
            fh.seek(max(_BLOCK, size - _BLOCK))
            digest.update(fh.read(_BLOCK))
    return digest.hexdigest()[:32]


def slug_for(path: Path) -> str:
    slug = slugify(path.stem, separator="_", max_length=MAX_KEY_LENGTH, word_boundary=True)
    return slug or "title"


class TitleRegistry:
    def __init__(self, titles_dir: Path) -> None:
        self.titles_dir = Path(titles_dir)

    def _record_path(self, key: str) -> Path:
        return self.titles_dir / key / "title.json"

    def get(self, key: str) -> Title:
        record = self._record_path(key)
        if not record.is_file():
            raise UnknownTitleError(
                f"title {key!r} is not registered under {self.titles_dir}; register the file "
                f"first with `cpw register PATH` (it prints the key)."
            )
        return Title(**json.loads(record.read_text()))

    def all(self) -> list[Title]:
        return [self.get(p.parent.name) for p in sorted(self.titles_dir.glob("*/title.json"))]

    def register(self, media: Path) -> Title:
        media = Path(media).expanduser()
        if not media.is_file():
            raise MediaError(media, "no such file (or it is a directory)")
        media = media.resolve()
        stat = media.stat()
        cid = content_id(media)
        self.titles_dir.mkdir(parents=True, exist_ok=True)
        with open(self.titles_dir / ".register.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            key = self._key_for(media, cid)
            title = Title(key, str(media), stat.st_size, stat.st_mtime, cid)
            write_json(self._record_path(key), asdict(title))
        return title

    def _key_for(self, media: Path, cid: str) -> str:
        existing = self.all()
        for title in existing:
            if title.media_path == str(media) or title.content_id == cid:
                return title.key
        base = slug_for(media)
        taken = {t.key for t in existing}
        if base not in taken:
            return base
        return f"{base}_{hashlib.sha256(os.fsencode(media)).hexdigest()[:8]}"
