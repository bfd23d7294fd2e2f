"""Title registry: a media file gets a stable, readable partition key.

The key is a slug of the file name (``Dil Chahta Hai (2001).mkv`` → ``dil_chahta_hai_2001``),
made only of ``[a-z0-9_]`` so it is a valid Dagster partition key. The same file registered
twice (same path, or same content at another path) gets the same key; a different file whose
name slugs the same gets the key plus a short hash of its path. Each title's record lives at
``titles/<key>/title.json``; a lock file serialises registrations on one machine.

``titles/_index.json`` holds every record plus the other paths known to hold a title's content
(*aliases*: a second copy of a film), so looking a file up by path or by content costs one
file read however many titles there are. Every registration rewrites it atomically under the
lock; it is rebuilt from the ``title.json`` files when it is missing, unreadable, or does not
list exactly the titles on disk.

A title also remembers its *sidecars* (the files beside ``NAME.ext`` that
:mod:`cpw_resources.store.sidecars` names): ``sidecar_stat`` summarises their names, sizes and
mtimes (cheap to compare), ``sidecar_id`` their content (part of the inbox sensor's run key,
so editing a sidecar reruns the title). A file whose sidecar or note names
(:data:`DERIVED_SUFFIXES`) would be longer than its file system allows is refused up front
(:func:`check_name_fits`): the title could never finish.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slugify import slugify

from cpw_resources.atomic import name_bytes, name_max, write_json, write_text
from cpw_resources.errors import MediaError, UnknownTitleError
from cpw_resources.store.sidecars import (
    ERROR_SUFFIX,
    GLOSSARY_SUFFIX,
    METADATA_SUFFIX,
    Sidecars,
    media_stem,
    sidecar_id,
    sidecar_stat,
)

MAX_KEY_LENGTH = 60
_BLOCK = 1 << 20
INDEX_NAME = "_index.json"
INDEX_VERSION = 1
#: Names made from a media file's ``NAME`` in its folder: the sidecars the stages look up by
#: name, and the note the inbox writes beside a rejected file.
DERIVED_SUFFIXES = (GLOSSARY_SUFFIX, ERROR_SUFFIX, METADATA_SUFFIX)


@dataclass(frozen=True)
class Title:
    key: str
    media_path: str
    size: int
    mtime: float
    content_id: str
    mtime_ns: int = 0
    sidecar_id: str = ""
    sidecar_stat: str = ""

    @property
    def media(self) -> Path:
        return Path(self.media_path)


@dataclass(frozen=True)
class PathEntry:
    """What the index knows about one path: its title and the file's state when registered."""

    key: str
    size: int
    mtime_ns: int
    content_id: str
    alias: bool  # True: a copy of the title's content; the title's record names another path


@dataclass
class TitleIndex:
    """Every title by key, the aliases by path, and lookups by media path and by content."""

    titles: dict[str, Title] = field(default_factory=dict)
    aliases: dict[str, PathEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_content = {t.content_id: t.key for t in self.titles.values()}
        self.by_path = {p: e.key for p, e in self.aliases.items()}
        self.by_path.update({t.media_path: t.key for t in self.titles.values()})

    def path_entry(self, path: str) -> PathEntry | None:
        """The registered state of ``path`` (a resolved path string), or None."""
        key = self.by_path.get(path)
        if key is None:
            return None
        title = self.titles[key]
        if title.media_path == path:
            return PathEntry(key, title.size, title.mtime_ns, title.content_id, alias=False)
        return self.aliases.get(path)

    def is_unchanged(self, path: str, size: int, mtime_ns: int) -> bool:
        """True when ``path`` is registered and still has the size and mtime it had then."""
        entry = self.path_entry(path)
        return entry is not None and entry.size == size and entry.mtime_ns == mtime_ns

    def put(self, title: Title) -> None:
        old = self.titles.get(title.key)
        if old is not None:
            if self.by_path.get(old.media_path) == title.key:
                del self.by_path[old.media_path]
            if old.content_id != title.content_id:
                if self.by_content.get(old.content_id) == title.key:
                    del self.by_content[old.content_id]
                # Copies of the old content are no longer copies of this title.
                for path in [p for p, e in self.aliases.items()
                             if e.key == title.key and e.content_id != title.content_id]:
                    del self.aliases[path]
                    del self.by_path[path]
        self.titles[title.key] = title
        self.by_content[title.content_id] = title.key
        self.aliases.pop(title.media_path, None)
        self.by_path[title.media_path] = title.key

    def put_alias(self, path: str, entry: PathEntry) -> None:
        self.aliases[path] = entry
        self.by_path[path] = entry.key

    def drop_alias(self, path: str) -> bool:
        if path not in self.aliases:
            return False
        del self.aliases[path]
        del self.by_path[path]
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "v": INDEX_VERSION,
            "titles": {k: asdict(t) for k, t in self.titles.items()},
            "aliases": {p: asdict(e) for p, e in self.aliases.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TitleIndex:
        if data.get("v") != INDEX_VERSION:
            raise ValueError(f"unknown index version {data.get('v')!r}")
        return cls(
            titles={k: _title(t) for k, t in data["titles"].items()},
            aliases={p: PathEntry(**e) for p, e in data["aliases"].items()},
        )


_TITLE_FIELDS = frozenset(Title.__dataclass_fields__)


def _title(record: dict[str, Any]) -> Title:
    """``Title(**record)``, five times faster for complete records (10,000 in an index)."""
    if record.keys() != _TITLE_FIELDS:
        return Title(**record)
    title = object.__new__(Title)
    title.__dict__.update(record)  # a frozen dataclass without slots keeps its fields here
    return title


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


def check_name_fits(media: Path) -> None:
    """Raise a :class:`MediaError` when a name made from ``media``'s (``NAME.glossary.tsv``
    ...) would be longer than the file system of its folder allows (bytes of UTF-8)."""
    stem = media_stem(media.name)
    suffix = max(DERIVED_SUFFIXES, key=len)
    limit = name_max(media.parent)
    size = name_bytes(stem + suffix)
    if size > limit:
        allowed = limit - size + name_bytes(media.name)
        raise MediaError(media, f"file name too long: NAME{suffix} beside it would be {size} "
                                f"bytes, over this file system's limit of {limit}; rename the "
                                f"file to at most {allowed} bytes (UTF-8: an accented letter "
                                f"takes 2, a Devanagari one 3) and try again")


def slug_for(path: Path) -> str:
    slug = slugify(path.stem, separator="_", max_length=MAX_KEY_LENGTH, word_boundary=True)
    return slug or "title"


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Observed:
    path: Path
    size: int
    mtime: float
    mtime_ns: int
    content_id: str
    sidecar_stat: str
    sidecar_id: str


class TitleRegistry:
    def __init__(self, titles_dir: Path) -> None:
        self.titles_dir = Path(titles_dir)

    @property
    def index_path(self) -> Path:
        return self.titles_dir / INDEX_NAME

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

    # -- index ---------------------------------------------------------------------------------

    def index(self) -> TitleIndex:
        """The index (one file read); rebuilt and rewritten if stale, missing or corrupt."""
        index = self._load_index()
        if index is not None:
            return index
        with self._lock():
            return self._locked_index()

    def _locked_index(self) -> TitleIndex:
        index = self._load_index()
        return index if index is not None else self._rebuild_index()

    def _load_index(self) -> TitleIndex | None:
        try:
            index = TitleIndex.from_json(json.loads(self.index_path.read_bytes()))
        except FileNotFoundError:
            index = TitleIndex()
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return index if self._matches_disk(index) else None

    def _matches_disk(self, index: TitleIndex) -> bool:
        """Does the index list exactly the titles on disk? (One listdir in the usual case.)

        Catches registrations by code that predates the index and titles deleted by hand.
        """
        try:
            names = {n for n in os.listdir(self.titles_dir) if not n.startswith((".", "_"))}
        except FileNotFoundError:
            names = set()
        keys = set(index.titles)
        if names == keys:
            return True
        if keys - names:
            return False
        # A folder without title.json (say, artifacts of a deleted title) is not a title.
        return not any(os.path.isfile(self.titles_dir / n / "title.json") for n in names - keys)

    def _rebuild_index(self) -> TitleIndex:
        index = TitleIndex(titles={t.key: t for t in self.all()})
        self._write_index(index)
        return index

    def _write_index(self, index: TitleIndex) -> None:
        write_text(self.index_path,
                   json.dumps(index.to_json(), ensure_ascii=False, separators=(",", ":")))

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.titles_dir.mkdir(parents=True, exist_ok=True)
        with open(self.titles_dir / ".register.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # -- registration --------------------------------------------------------------------------

    def register(self, media: Path) -> Title:
        return self.register_many([media])[Path(media)]

    def register_many(
        self,
        paths: Iterable[Path],
        *,
        content_ids: Mapping[Path, tuple[int, int, str]] | None = None,
        skip_missing: bool = False,
    ) -> dict[Path, Title]:
        """Register files under one lock with one index write; ``{path as given: title}``.

        The key rules are :meth:`register`'s: a path registered before keeps its key (its
        content may have changed); else a file with a registered title's content gets that
        key; else a new key from the name. A copy of a title whose file still exists
        elsewhere is remembered as an *alias* (the record keeps naming the original); if the
        original is gone, the record moves to the new path.

        ``content_ids`` maps resolved paths to ``(size, mtime_ns, content_id)`` the caller
        already computed; each is used while the file still has that size and mtime.
        With ``skip_missing``, files that vanished are left out instead of raising.
        """
        observed: dict[Path, _Observed] = {}
        for given in paths:
            try:
                observed[Path(given)] = self._observe(Path(given), content_ids or {})
            except (MediaError, FileNotFoundError):
                if not skip_missing:
                    raise
        titles: dict[Path, Title] = {}
        with self._lock():
            index = self._locked_index()
            for given, obs in observed.items():
                titles[given] = self._register_one(index, obs)
            if observed:
                self._write_index(index)
        return titles

    @staticmethod
    def _observe(media: Path, known: Mapping[Path, tuple[int, int, str]]) -> _Observed:
        media = media.expanduser()
        if not media.is_file():
            raise MediaError(media, "no such file (or it is a directory)")
        media = media.resolve()
        check_name_fits(media)
        stat = media.stat()
        hint = known.get(media)
        if hint is not None and tuple(hint[:2]) == (stat.st_size, stat.st_mtime_ns):
            cid = hint[2]
        else:
            cid = content_id(media)
        sidecars = Sidecars(media).existing()
        stats = []
        for path in sidecars:
            st = path.stat()
            stats.append((path.name, st.st_size, st.st_mtime_ns))
        return _Observed(media, stat.st_size, stat.st_mtime, stat.st_mtime_ns, cid,
                         sidecar_stat(stats), sidecar_id(sidecars))

    def _register_one(self, index: TitleIndex, obs: _Observed) -> Title:
        path = str(obs.path)
        entry = index.path_entry(path)
        key: str | None
        if entry is not None and not entry.alias:
            key = entry.key  # same path: same title, whatever its content now
        elif entry is not None and index.titles[entry.key].content_id == obs.content_id:
            key = entry.key  # still a copy of that title
        else:
            key = index.by_content.get(obs.content_id)  # same content elsewhere, or None
        if key is None:
            key = self._new_key(index, obs.path)
        else:
            current = index.titles[key]
            if (current.media_path != path and current.content_id == obs.content_id
                    and os.path.isfile(current.media_path)):
                # A second copy of a registered film: same title; the record stays put.
                index.put_alias(path, PathEntry(key, obs.size, obs.mtime_ns, obs.content_id,
                                                alias=True))
                return current
        title = Title(key, path, obs.size, obs.mtime, obs.content_id, obs.mtime_ns,
                      obs.sidecar_id, obs.sidecar_stat)
        write_json(self._record_path(key), asdict(title))
        index.put(title)
        return title

    @staticmethod
    def _new_key(index: TitleIndex, media: Path) -> str:
        base = slug_for(media)
        if base not in index.titles:
            return base
        return f"{base}_{hashlib.sha256(os.fsencode(media)).hexdigest()[:8]}"

    def forget_aliases(self, paths: Iterable[str]) -> int:
        """Drop alias entries (copies no longer there); titles are never dropped."""
        paths = list(paths)
        if not paths:
            return 0
        with self._lock():
            index = self._locked_index()
            dropped = sum(index.drop_alias(p) for p in paths)
            if dropped:
                self._write_index(index)
        return dropped
