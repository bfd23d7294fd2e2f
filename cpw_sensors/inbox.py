"""The inbox: films dropped into a watched folder become titles and runs of ``subtitle_job``.

One evaluation (``evaluate_inbox``, wrapped by the ``inbox`` sensor):

1. **Scan** the inbox (the ``inbox`` resource's folder) recursively with ``os.scandir``, skipping
   ``rejected/``, hidden names, and partial downloads (``*.part``, ``*.crdownload``, ...; a
   file with a partial download of the same name beside it waits too). Sidecars
   (``NAME.json``, ``NAME.glossary.tsv``, subtitles ``NAME.<lang>.srt``, ...: the rules are in
   :mod:`cpw_resources.store.sidecars`) travel with the media file ``NAME.ext``; they and
   ``NAME.error.txt`` notes are never media.
2. **Skip** cheaply what is registered: a file whose path, size and mtime are in the title
   registry's index, with sidecars whose names, sizes and mtimes are as registered, costs one
   ``stat`` and two dictionary look-ups. Nothing is hashed, nothing is kept in the cursor.
3. **Wait** until a file has settled: a media file and its sidecars are taken only when each
   has the size and mtime recorded at the previous evaluation (the cursor's ``pending``). A
   file still being copied is never opened.
4. **Take** at most ``inbox_max_new_per_tick`` settled files, and none once
   :data:`TIME_BUDGET_S` has passed; the rest keep their observation and go next time. A
   taken file gets its content id (size + SHA-256 of its first and last MiB). Content the
   registry already knows needs no probe; new content must open with PyAV and have audio that
   decodes (``cpw_resources.speech.media.probe``): the content decides, not the extension.
5. **Reject** unusable files, and files whose name is too long for the names made from it
   (``NAME.glossary.tsv``: :func:`~cpw_resources.store.titles.check_name_fits`): moved to
   ``rejected/<same relative path>`` with their sidecars and a ``NAME.error.txt`` saying why
   (a name that would not fit the file system is cut short and marked with a hash), recorded
   in ``inbox_events`` and ``input_errors``, note or no note.
6. **Register** the rest in one batch (``TitleRegistry.register_many``) and request a run for
   each new title, each title whose content changed (same path: same key), and each title
   whose sidecars' content changed. The run key is ``KEY:CONTENT_ID:SIDECAR_ID`` (``-`` for no
   sidecars), so a re-dropped identical file, or a copy under another name, starts nothing.

The cursor, ``{"v": 1, "pending": {relpath: [size, mtime_ns]}, "stuck": {...}}``, holds only
files not yet taken (``stuck``: rejected files that could not be moved, so they are not
probed again until they change). Dagster stores it, so it survives restarts; everything
already taken lives in the title registry.
"""

import datetime as dt
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from cpw_resources.atomic import fit_name, name_max, write_text
from cpw_resources.errors import MediaError, StorageError
from cpw_resources.orchestration.jobs import subtitle_job
from cpw_resources.orchestration.partitions import titles as title_partitions
from cpw_resources.orchestration.resources import (
    EventStoreResource,
    InboxResource,
    TitleRegistryResource,
)
from cpw_resources.speech.media import probe
from cpw_resources.store.events import EventStore
from cpw_resources.store.sidecars import (
    ERROR_SUFFIX,
    is_media_name,
    media_stem,
    sidecar_stat,
    sidecar_stems,
)
from cpw_resources.store.titles import Title, TitleRegistry, check_name_fits, content_id

log = logging.getLogger(__name__)

CURSOR_VERSION = 1
REJECTED_DIR = "rejected"
#: Names of downloads and copies in progress (lower case); such files are never looked at.
PARTIAL_SUFFIXES = (".part", ".partial", ".crdownload", ".tmp", ".download", ".!qb", ".opdownload")
#: Stop taking new files after this many seconds of one evaluation (Dagster allows 60 s).
TIME_BUDGET_S = 20.0
EVENT_ASSET = "inbox"


# --------------------------------------------------------------------------------------------
# Scanning
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxFile:
    rel: str  # path relative to the inbox, with "/" separators (the cursor's key)
    path: str  # absolute path; a symlink's target, as the registry resolves it
    name: str
    size: int
    mtime_ns: int

    @property
    def observation(self) -> list[int]:
        return [self.size, self.mtime_ns]


@dataclass
class Group:
    """A media file and its sidecars."""

    media: InboxFile
    sidecars: list[InboxFile]
    downloading: bool = False  # a partial download of the same name sits beside it
    shares_stem: bool = False  # another media file in the folder has the same stem

    def sidecar_stat(self) -> str:
        return sidecar_stat((s.name, s.size, s.mtime_ns) for s in self.sidecars)


def scan(inbox: Path) -> list[Group]:
    """Every media file under ``inbox`` (not ``rejected/``) with its sidecars."""
    groups: list[Group] = []
    stack = [(str(inbox), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            log.warning("inbox: cannot list %s (%s); skipped this time", folder, exc)
            continue
        media: list[InboxFile] = []
        sidecars: dict[str, list[InboxFile]] = {}
        partial: set[str] = set()
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not (prefix == "" and name == REJECTED_DIR):
                        stack.append((entry.path, f"{prefix}{name}/"))
                    continue
                lower = name.lower()
                if lower.endswith(PARTIAL_SUFFIXES):
                    partial.add(lower)
                    continue
                if not entry.is_file():  # a broken link, a socket, a link to a folder
                    continue
                st = entry.stat()
                path = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
            except OSError:
                continue  # vanished while we looked
            file = InboxFile(prefix + name, path, name, st.st_size, st.st_mtime_ns)
            if is_media_name(name):
                media.append(file)
            else:
                for stem in sidecar_stems(name):
                    sidecars.setdefault(stem, []).append(file)
        stems = [media_stem(file.name) for file in media]
        counts: dict[str, int] = {}
        for stem in stems:
            counts[stem] = counts.get(stem, 0) + 1
        for file, stem in zip(media, stems, strict=True):
            downloading = bool(partial) and any(
                f"{file.name.lower()}{s}" in partial for s in PARTIAL_SUFFIXES)
            groups.append(Group(file, sidecars.get(stem, []), downloading, counts[stem] > 1))
    return groups


# --------------------------------------------------------------------------------------------
# Cursor
# --------------------------------------------------------------------------------------------


@dataclass
class Cursor:
    pending: dict[str, list[int]] = field(default_factory=dict)
    stuck: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> "Cursor":
        if not text:
            return cls()
        try:
            data = json.loads(text)
            if data.get("v") != CURSOR_VERSION:
                raise ValueError(f"version {data.get('v')!r}")
            return cls(
                {str(k): [int(v[0]), int(v[1])] for k, v in data.get("pending", {}).items()},
                {str(k): [int(v[0]), int(v[1])] for k, v in data.get("stuck", {}).items()},
            )
        except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
            # Worst case: files wait one more evaluation.
            log.warning("inbox: ignoring unreadable sensor cursor (%s)", exc)
            return cls()

    def dumps(self) -> str:
        data: dict[str, Any] = {"v": CURSOR_VERSION, "pending": self.pending}
        if self.stuck:
            data["stuck"] = self.stuck
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# One evaluation
# --------------------------------------------------------------------------------------------


@dataclass
class TitleRun:
    """A run to request: the title as registered and the inbox file that caused it."""

    title: Title
    rel: str

    @property
    def run_key(self) -> str:
        return f"{self.title.key}:{self.title.content_id}:{self.title.sidecar_id or '-'}"


@dataclass
class Tick:
    runs: dict[str, TitleRun] = field(default_factory=dict)  # key → run, in order
    cursor: Cursor = field(default_factory=Cursor)
    events: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("files", "skipped", "waiting", "deferred", "registered", "changed", "unchanged",
         "duplicate", "rejected", "stuck"), 0))
    seconds: float = 0.0

    def summary(self) -> str:
        c = self.counts
        return (
            f"inbox: {c['files']} media files; {c['skipped']} already registered, "
            f"{len(self.cursor.pending)} files pending ({c['waiting']} settling, "
            f"{c['deferred']} deferred to the next tick); {c['registered']} registered, "
            f"{c['changed']} changed, {c['unchanged']} re-dropped unchanged, "
            f"{c['duplicate']} duplicates, {c['rejected']} rejected, {c['stuck']} stuck; "
            f"{len(self.runs)} run requests; {self.seconds:.2f} s"
        )


def evaluate_inbox(
    inbox: Path,
    registry: TitleRegistry,
    cursor: Cursor,
    *,
    max_new: int,
    time_budget_s: float = TIME_BUDGET_S,
    clock: Callable[[], float] = time.monotonic,
) -> Tick:
    """Scan ``inbox`` once: what to register, reject and run, and the next cursor."""
    start = clock()
    inbox = Path(inbox).resolve()
    tick = Tick()
    index = registry.index()
    groups = scan(inbox)
    tick.counts["files"] = len(groups)

    # (group, its content id when the media is unchanged since registration, else None)
    ready: list[tuple[Group, str | None]] = []
    seen_paths: set[str] = set()
    for group in groups:
        media = group.media
        seen_paths.add(media.path)
        entry = index.path_entry(media.path)
        media_same = (entry is not None and entry.size == media.size
                      and entry.mtime_ns == media.mtime_ns)
        if media_same:
            assert entry is not None
            if entry.alias or group.sidecar_stat() == index.titles[entry.key].sidecar_stat:
                tick.counts["skipped"] += 1
                continue
            files = group.sidecars  # only sidecars changed: they must settle
        else:
            if cursor.stuck.get(media.rel) == media.observation:
                tick.cursor.stuck[media.rel] = media.observation
                tick.counts["stuck"] += 1
                continue
            files = [media, *group.sidecars]
        if group.downloading or any(cursor.pending.get(f.rel) != f.observation for f in files):
            _keep_pending(tick, files)
            tick.counts["waiting"] += 1
            continue
        ready.append((group, entry.content_id if media_same and entry else None))

    ready.sort(key=lambda item: (item[0].media.mtime_ns, item[0].media.rel))
    to_register: list[Group] = []
    hints: dict[Path, tuple[int, int, str]] = {}
    for taken, (group, known_cid) in enumerate(ready):
        # At least one file per evaluation, however slow the scan was: progress is certain.
        if taken >= max_new or (taken and clock() - start > time_budget_s):
            for rest, _ in ready[taken:]:
                _keep_pending(tick, [rest.media, *rest.sidecars])
            tick.counts["deferred"] = len(ready) - taken
            break
        media = group.media
        cid = known_cid
        if cid is None:
            try:
                check_name_fits(Path(media.path))
                cid = content_id(Path(media.path))
                if cid not in index.by_content:
                    probe(Path(media.path))
            except MediaError as error:
                _reject(inbox, group, error, tick)
                continue
            except FileNotFoundError:
                continue  # gone since the scan
            except OSError as exc:
                log.warning("inbox: cannot read %s (%s); will try again", media.path, exc)
                _keep_pending(tick, [media, *group.sidecars])
                continue
        hints[Path(media.path)] = (media.size, media.mtime_ns, cid)
        to_register.append(group)

    if to_register:
        titles = registry.register_many([Path(g.media.path) for g in to_register],
                                        content_ids=hints, skip_missing=True)
        for group in to_register:
            title = titles.get(Path(group.media.path))
            if title is not None:
                _registered(tick, group, title, index.titles.get(title.key))

    gone = [p for p in index.aliases if p.startswith(f"{inbox}{os.sep}") and p not in seen_paths]
    registry.forget_aliases(gone)
    tick.seconds = clock() - start
    return tick


def _keep_pending(tick: Tick, files: list[InboxFile]) -> None:
    for file in files:
        tick.cursor.pending[file.rel] = file.observation


def _registered(tick: Tick, group: Group, title: Title, before: Title | None) -> None:
    media = group.media
    if title.media_path != media.path:
        action, message = "duplicate", f"same content as {title.media_path}; nothing to do"
    elif before is None:
        action, message = "registered", "new title"
    elif before.content_id != title.content_id:
        action, message = "changed", f"content changed (was {before.content_id})"
    elif before.sidecar_id != title.sidecar_id:
        action, message = "changed", f"sidecars changed (were {before.sidecar_id or 'none'})"
    else:
        action, message = "unchanged", "same content and sidecars as registered; nothing to do"
    tick.counts[action] += 1
    run = TitleRun(title, media.rel) if action in ("registered", "changed") else None
    if run is not None:
        tick.runs.pop(title.key, None)
        tick.runs[title.key] = run
    tick.events.append({
        "title": title.key, "path": media.path, "action": action, "message": message,
        "content_id": title.content_id, "sidecar_id": title.sidecar_id,
        "size_bytes": media.size, "run_key": run.run_key if run else None,
    })


# --------------------------------------------------------------------------------------------
# Rejection
# --------------------------------------------------------------------------------------------


def _reject(inbox: Path, group: Group, error: MediaError, tick: Tick) -> None:
    """Move an unusable file (and its sidecars) to rejected/, with a note saying why."""
    media = group.media
    # Sidecars shared with another media file of the same name stay for that file.
    stem = media_stem(media.name)
    sidecars = [] if group.shares_stem else [
        (s, s.name[len(stem):]) for s in group.sidecars if s.name.startswith(stem)]
    folder = (inbox / REJECTED_DIR / media.rel).parent
    limit = name_max(inbox)
    suffix = media.name[len(stem):]
    tails = [suffix, ERROR_SUFFIX, *(tail for _, tail in sidecars)]
    dest_stem = _free_stem(folder, stem, tails, limit)
    dest = folder / fit_name(dest_stem, suffix, limit)
    src = inbox / media.rel
    try:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.move(src, dest)
    except OSError as exc:
        tick.cursor.stuck[media.rel] = media.observation
        tick.counts["stuck"] += 1
        tick.events.append(_event(media, "reject_failed", error,
                                  f"{error.problem}; could not move it to {dest} ({exc})"))
        log.warning("inbox: %s is unusable (%s) but could not be moved: %s", src, error, exc)
        return
    moved = []
    for sidecar, tail in sidecars:
        try:
            shutil.move(inbox / sidecar.rel, folder / fit_name(dest_stem, tail, limit))
            moved.append(sidecar.name)
        except OSError as exc:
            log.warning("inbox: could not move sidecar %s to rejected/ (%s)", sidecar.rel, exc)
    rel_dest = dest.relative_to(inbox).as_posix()
    message = f"{error.problem} (moved to {rel_dest})"
    note = folder / fit_name(dest_stem, ERROR_SUFFIX, limit)
    try:
        write_text(note, _note_text(inbox, media, error, moved))
    except (OSError, StorageError) as exc:
        message += f"; no note written ({exc})"
        log.warning("inbox: could not write the note %s (%s)", note, exc)
    tick.counts["rejected"] += 1
    tick.events.append(_event(media, "rejected", error, message))


def _note_text(inbox: Path, media: InboxFile, error: MediaError, moved: list[str]) -> str:
    now = dt.datetime.now(dt.UTC)
    return "\n".join([
        f"{media.rel} was moved here from the inbox {inbox} on {now:%Y-%m-%d %H:%M:%S} UTC",
        "because it is not usable media.",
        "",
        f"file:    {inbox / media.rel}",
        f"error:   {type(error).__name__}",
        f"problem: {error.problem}",
        *([f"sidecars moved with it: {', '.join(moved)}"] if moved else []),
        "",
        "To try again, fix or replace the file and put it (with its sidecars) back in the inbox.",
        "",
    ])


def _free_stem(folder: Path, stem: str, tails: list[str], limit: int) -> str:
    """``stem``, or ``stem (2)``...: the first for which no ``stem<tail>`` exists yet (names
    cut to ``limit`` bytes as :func:`fit_name` does; a name that cannot exist does not)."""
    candidate, n = stem, 1
    while any(os.path.lexists(folder / fit_name(candidate, t, limit)) for t in tails):
        n += 1
        candidate = f"{stem} ({n})"
    return candidate


def _event(media: InboxFile, action: str, error: MediaError, message: str) -> dict[str, Any]:
    return {"title": "", "path": media.path, "action": action,
            "error_class": type(error).__name__, "message": message,
            "size_bytes": media.size}


def record_events(store: EventStore, tick: Tick) -> None:
    """One ``inbox_events`` file per evaluation; rejections also go to ``input_errors``."""
    if not tick.events:
        return
    store.append("inbox_events", tick.events, run_id="", title="", asset=EVENT_ASSET)
    errors = [{"title": "", "path": e["path"], "error_class": e["error_class"],
               "message": f"{e['path']}: {e['message']}"}
              for e in tick.events if e["action"] in ("rejected", "reject_failed")]
    store.append("input_errors", errors, run_id="", title="", asset=EVENT_ASSET)


# --------------------------------------------------------------------------------------------
# The sensor
# --------------------------------------------------------------------------------------------


@sensor(
    name="inbox",
    job=subtitle_job,
    minimum_interval_seconds=15,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers media files dropped into the inbox folder (CPW_INBOX, default "
    "$CPW_HOME/inbox) once they stop changing, and runs subtitle_job for each new or "
    "changed title; unusable files go to rejected/ with a NAME.error.txt.",
)
def inbox_sensor(context: SensorEvaluationContext, inbox: InboxResource,
                 titles: TitleRegistryResource, store: EventStoreResource) -> SensorResult:
    from cpw_resources.language.targets import unreachable
    from cpw_resources.settings import Settings

    settings = Settings()
    refused = unreachable(settings.languages, settings.language, settings.translation_backend)
    if refused:  # before any run: the files wait in the inbox until the setting is fixed
        return SensorResult(skip_reason=f"not queuing inbox titles: {refused}",
                            cursor=context.cursor)
    folder = inbox.dir
    if not folder.is_dir():
        if inbox.folder is not None:
            return SensorResult(
                skip_reason=f"the inbox folder {folder} does not exist (CPW_INBOX); create it "
                "or mount its drive",
                cursor=context.cursor,
            )
        folder.mkdir(parents=True, exist_ok=True)
    tick = evaluate_inbox(folder, titles.registry, Cursor.parse(context.cursor),
                          max_new=inbox.max_new_per_tick)
    record_events(store.events, tick)
    summary = tick.summary()
    context.log.info(summary)
    run_requests = [
        RunRequest(run_key=run.run_key, partition_key=key,
                   tags={"cpw/source": "inbox", "cpw/inbox_path": run.rel[:255]})
        for key, run in tick.runs.items()
    ]
    # Partitions for this tick's runs, and for titles `cpw register` added since (it writes
    # only the registry), so the UI lists them without a code reload.
    known = set(context.instance.get_dynamic_partitions(title_partitions.name))
    new_keys = [key for key in dict.fromkeys([*tick.runs, *titles.registry.index().titles])
                if key not in known]
    partition_requests = ([title_partitions.build_add_request(new_keys)] if new_keys else [])
    return SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=partition_requests,
        cursor=tick.cursor.dumps(),
        skip_reason=None if run_requests else summary,
    )
