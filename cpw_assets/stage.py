"""What every stage asset does around its work: measure it, record it, reuse it, fail cleanly.

``with stage(context, store, titles) as st:`` times the block and appends a ``stage_metrics``
event whether it succeeds or fails. ``st.files`` reads only the files of the assets this one
declares as inputs; ``st.reuse(config, ...)`` derives the cache key from those inputs' content,
the run config and any outside input named, so a new input cannot be left out of the key.
A :class:`CpwError` (bad input, missing model, bad setting) is also appended to
``input_errors`` and ``runs`` and re-raised as a ``dagster.Failure`` with the readable message
and no retry; any other exception is recorded the same way and propagates unchanged so Dagster
shows its traceback. A run stopped by SIGINT or SIGTERM gets a ``runs`` row with status
``canceled`` and what it was doing (e.g. waiting for a Whisper slot held by another run).

Before the first stage of a run (in this process), the stage recovers what killed runs left:
runs whose process is gone are marked failed with a ``runs`` row, and temporary files of their
interrupted writes in this title's folder are removed, so a plain ``dagster job execute`` needs
no ``cpw`` command first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, Config, Failure, MetadataValue

from cpw_resources.atomic import remove_dead_temps
from cpw_resources.errors import CpwError, MediaError, StorageError
from cpw_resources.orchestration.config import settings_at_load
from cpw_resources.orchestration.instance import recover_dead_runs
from cpw_resources.orchestration.resources import (
    EventStoreResource,
    TitleRegistryResource,
    WhisperResource,
)
from cpw_resources.speech.slots import ASR, Holder, SlotTimeoutError, machine_slot
from cpw_resources.store.cache import ArtifactCache
from cpw_resources.store.files import TitleFiles
from cpw_resources.store.monitor import StageTimer
from cpw_resources.store.titles import Title


@dataclass
class Stage:
    context: AssetExecutionContext
    store: EventStoreResource
    titles: TitleRegistryResource
    name: str
    title: Title
    inputs: frozenset[str]  # names of the assets this one declares as inputs
    timer: StageTimer = field(default_factory=lambda: StageTimer(
        sample=settings_at_load().stage_monitor))
    audio_seconds: float | None = None
    target_language: str | None = None
    metrics: dict[str, float | int] = field(default_factory=dict)
    cache_hit: bool = False
    wait_seconds: float = 0.0
    waiting_for: str | None = None  # what the stage is blocked on, for an interrupt's reason
    _cache_key: str | None = None
    _cache_name: str | None = None

    @property
    def key(self) -> str:
        return self.title.key

    @property
    def dir(self) -> Path:
        return self.titles.registry.titles_dir / self.key

    @cached_property
    def files(self) -> TitleFiles:
        """This title's files, readable only where this asset declares the producer."""
        return TitleFiles(self.dir, self.key, self.inputs, read=self.timer.inputs)

    def output(self, path: Path) -> Path:
        """Mark ``path`` as written by this stage (measured, cached) and return it."""
        self.timer.outputs.append(path)
        return path

    @cached_property
    def cache(self) -> ArtifactCache:
        return ArtifactCache(self.dir)

    def _input_identity(self, language: str | None = None) -> dict[str, Any]:
        """Content of every declared input: the media's id, or the hashes of an asset's files
        (with ``language``, of its per-language files only that language's)."""
        identity: dict[str, Any] = {}
        for asset in sorted(self.inputs):
            if asset == "media":
                identity[asset] = self.titles.registry.get(self.key).content_id
            else:
                identity[asset] = {p.name: self.cache.file_hash(p) if p.is_file() else None
                                   for p in self.files.outputs_of(asset, language)}
        return identity

    def reuse(self, config: Config | None = None, *, language: str | None = None,
              **outside: Any) -> dict[str, Any] | None:
        """The stored result when the declared inputs, the run config and the ``outside``
        inputs (sidecars, models, prices ...) are unchanged, else None. With ``language``,
        one target language's part of the stage, cached on its own: its inputs are that
        language's files, and the run config's list of languages does not count, so adding
        or switching a language never redoes another."""
        dumped = config.model_dump(exclude={"target_language", "target_languages"}
                                   if language else None) if config is not None else None
        parts = {"inputs": self._input_identity(language), "config": dumped,
                 "outside": outside, "language": language}
        name = f"{self.name}.{language}" if language else self.name
        self._cache_key = ArtifactCache.key(name, parts)
        self._cache_name = name
        stored = self.cache.lookup(name, self._cache_key)
        if stored is None:
            return None
        self.cache_hit = True
        self.timer.outputs.extend(self.dir / name for name in stored.pop("__outputs__", ()))
        self.context.log.info(f"{name}: inputs and settings unchanged; reusing artifacts")
        return {k: Path(v["__path__"]) if isinstance(v, dict) and "__path__" in v else v
                for k, v in stored.items()}

    def save(self, result: dict[str, Any], outputs: list[Path] | None = None) -> dict[str, Any]:
        """Remember this stage's outputs (or the given ones: a language's part) and
        ``result`` under the key ``reuse`` computed."""
        assert self._cache_key is not None, "call reuse() before save()"
        files = [p for p in (self.timer.outputs if outputs is None else outputs) if p.is_file()]
        stored = {k: {"__path__": str(v)} if isinstance(v, Path) else v for k, v in result.items()}
        stored["__outputs__"] = [p.relative_to(self.dir).as_posix() for p in files]
        self.cache.store(self._cache_name or self.name, self._cache_key, files, stored)
        return result

    @contextmanager
    def asr_slot(self, whisper: WhisperResource) -> Iterator[None]:
        """One of the machine's ``asr_pool_size`` Whisper slots, for the heavy part; waits at
        most ``slot_wait_timeout_s``, then fails naming who holds the slots."""
        size = whisper.asr_pool_size

        def waiting(holders: list[Holder]) -> None:
            held_by = "; ".join(h.describe() for h in holders) or "another process"
            self.waiting_for = f"a Whisper slot held by {held_by}"
            self.context.log.info(f"{self.name}: waiting for one of {size} Whisper slot(s) on "
                                  f"this machine, held by {held_by}")

        hint = ("Wait for it to finish, or stop that process (kill <pid>) and run this title "
                "again; CPW_SLOT_WAIT_TIMEOUT_S sets how long a step waits.")
        label = f"run {self.context.run_id} ({self.key}/{self.name})"
        started, acquired = time.monotonic(), False
        try:
            with machine_slot(self.titles.home.under("slots"), ASR, size, label=label,
                              timeout_s=whisper.slot_wait_timeout_s, hint=hint,
                              on_wait=waiting) as waited:
                acquired, self.waiting_for = True, None
                self.wait_seconds += waited
                yield
        finally:
            if not acquired:  # timed out or interrupted: the wait still counts
                self.wait_seconds += time.monotonic() - started

    def record(self, table: str, rows: list[dict[str, Any]]) -> None:
        self.store.append(table, rows, run_id=self.context.run_id, title=self.key,
                          asset=self.name)

    def record_cache_hits(self, operation: str) -> Callable[[str, str, int], None]:
        """A callback recording LLM replies taken from the cache as ``api_calls`` events."""
        def record(service: str, model: str, n: int) -> None:
            self.record("api_calls", [{
                "service": service, "operation": operation, "attempts": 0, "latency_ms": 0.0,
                "outcome": "cache_hit", "model": model, "input_tokens": 0, "output_tokens": 0,
                "cost_usd": 0.0, "segments": n}])

        return record

    def log_progress(self, label: str) -> _ProgressLog:
        return _ProgressLog(self.context, label)

    def metadata(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Asset metadata: this stage's numbers plus ``extra``; paths become path values,
        dicts and lists JSON values."""
        values: dict[str, Any] = {"title": self.key, **self.metrics,
                                  "cache_hit": int(self.cache_hit)}
        if self.audio_seconds is not None:
            values["audio_seconds"] = round(self.audio_seconds, 3)
        for k, v in extra.items():
            if isinstance(v, Path):
                values[k] = MetadataValue.path(str(v))
            elif isinstance(v, dict | list):
                values[k] = MetadataValue.json(v)
            else:
                values[k] = v
        return values


class _ProgressLog:
    """Log 'label: 40% (120.0 of 300.0 s of audio)' at most once per 10 points."""

    def __init__(self, context: AssetExecutionContext, label: str) -> None:
        self.context, self.label, self.next_mark = context, label, 0.1
        self.total: float | None = None

    def __call__(self, share: float) -> None:
        if share + 1e-9 < self.next_mark and share < 1.0:
            return
        detail = f" ({share * self.total:.1f} of {self.total:.1f} s of audio)" if self.total else ""
        self.context.log.info(f"{self.label}: {share:.0%}{detail}")
        self.next_mark = (int(share * 10) + 1) / 10


@contextmanager
def stage(context: AssetExecutionContext, store: EventStoreResource,
          titles: TitleRegistryResource) -> Iterator[Stage]:
    key = context.partition_key
    try:
        title = titles.registry.get(key)
    except CpwError as error:
        raise Failure(description=str(error), allow_retries=False) from error
    declared = context.assets_def.asset_deps[context.asset_key]
    st = Stage(context, store, titles, context.asset_key.to_user_string(), title,
               frozenset(k.to_user_string() for k in declared))
    name = st.name
    status, error_class = "success", None
    try:
        _recover_once_per_run(st)
        yield st
    except CpwError as error:
        status, error_class = "failed", type(error).__name__
        _record_failure(st, error)
        raise Failure(description=str(error), allow_retries=False) from error
    except Exception as error:
        status, error_class = "failed", type(error).__name__
        _record_failure(st, error)
        raise
    except BaseException as error:  # SIGINT/SIGTERM: Dagster raises them inside a step
        status, error_class = "canceled", type(error).__name__
        doing = f" while waiting for {st.waiting_for}" if st.waiting_for else ""
        _record_failure(st, error, status="canceled",
                        message=f"{name} was interrupted (SIGINT or SIGTERM){doing}")
        raise
    finally:
        measured = st.timer.stop()
        measured["compute_cost_usd"] = _compute_cost(measured)
        st.metrics.update(
            seconds=measured["wall_seconds"],
            cpu_seconds=measured["cpu_seconds"],
            peak_rss_mb=measured["peak_rss_mb"],
            output_bytes=measured["output_bytes"],
        )
        (st.record if status == "success" else partial(_record_despite, st))(
            "stage_metrics", [{
                **measured, "status": status, "error_class": error_class,
                "audio_seconds": st.audio_seconds, "cache_hit": st.cache_hit,
                "wait_seconds": round(st.wait_seconds, 3),
            }])
        context.log.info(
            f"{name} {status} in {measured['wall_seconds']:.2f} s "
            f"(cpu {measured['cpu_seconds']:.2f} s, peak RSS {measured['peak_rss_mb']:.0f} MB)"
        )


def _compute_cost(measured: dict[str, Any]) -> float | None:
    """The stage's CPU and GPU time at the pricing file's ``[compute]`` prices."""
    from cpw_resources.llm.pricing import Pricing

    try:
        pricing_file = settings_at_load().pricing_file
        prices = Pricing.cached(Path(pricing_file) if pricing_file else None).compute
    except CpwError:  # an unreadable pricing file fails the stages that call an LLM, not this
        return None
    return round(prices.cost(measured["cpu_seconds"], measured.get("gpu_seconds") or 0.0), 8)


#: Runs whose first stage in this process already recovered what killed runs left.
_recovered_runs: set[str] = set()


def _recover_once_per_run(st: Stage) -> None:
    """Fail dead runs (recording why) and remove dead writers' temporary files of this title."""
    if st.context.run_id in _recovered_runs:
        return
    _recovered_runs.add(st.context.run_id)
    dead = recover_dead_runs(st.context.instance, st.store.events)
    for run in dead:
        st.context.log.warning(f"run {run.run_id} ({run.title}) had died: {run.reason}; "
                               "marked failed and freed its slots")
    leftovers = remove_dead_temps(st.dir)
    if leftovers:
        st.context.log.info(f"removed {len(leftovers)} temporary file(s) of killed writes: "
                            + ", ".join(p.name for p in leftovers[:5]))


def _record_failure(st: Stage, error: BaseException, *, status: str = "failed",
                    message: str | None = None) -> None:
    message = message or str(error)
    if isinstance(error, CpwError) and not isinstance(error, SlotTimeoutError):
        path = (str(error.path) if isinstance(error, MediaError | StorageError)
                else st.title.media_path)
        _record_despite(st, "input_errors", [{"path": path, "error_class": type(error).__name__,
                                              "message": message}])
    _record_despite(st, "runs", [{
        "status": status, "media_path": st.title.media_path,
        "error_class": type(error).__name__, "error_message": message[:2000],
        "target_language": st.target_language,
    }])
    st.context.log.error(f"{st.name} {status} for {st.key}: {message}")


def _record_despite(st: Stage, table: str, rows: list[dict[str, Any]]) -> None:
    """Record on the way out of a failure; a store that cannot be written (a full or read-only
    disk, which the failure itself names) is only logged, so the first error is the one shown."""
    try:
        st.record(table, rows)
    except StorageError as unrecorded:
        st.context.log.warning(f"{st.name}: {table} event not recorded: {unrecorded}")
