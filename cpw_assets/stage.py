"""What every stage asset does around its work: measure it, record it, fail cleanly.

``with stage(context, cpw, "audio") as st:`` times the block and appends a ``stage_metrics``
event whether it succeeds or fails. A :class:`CpwError` (bad input, missing model, bad
setting) is also appended to ``input_errors`` and ``runs`` and re-raised as a
``dagster.Failure`` with the readable message and no retry; any other exception is recorded
the same way and propagates unchanged so Dagster shows its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, Failure, MetadataValue

from cpw_resources.errors import CpwError, MediaError
from cpw_resources.orchestration.resources import CpwResource
from cpw_resources.settings import Settings
from cpw_resources.speech.slots import machine_slot
from cpw_resources.store.cache import ArtifactCache
from cpw_resources.store.monitor import StageTimer
from cpw_resources.store.titles import Title


@dataclass
class Stage:
    context: AssetExecutionContext
    cpw: CpwResource
    name: str
    title: Title
    timer: StageTimer = field(default_factory=StageTimer)
    audio_seconds: float | None = None
    metrics: dict[str, float | int] = field(default_factory=dict)
    cache_hit: bool = False
    wait_seconds: float = 0.0
    _cache_key: str | None = None

    @property
    def key(self) -> str:
        return self.title.key

    @property
    def settings(self) -> Settings:
        return self.cpw.settings

    @property
    def dir(self) -> Path:
        return self.settings.title_dir(self.key)

    def artifact(self, name: str, *, output: bool = False) -> Path:
        path = self.dir / name
        (self.timer.outputs if output else self.timer.inputs).append(path)
        return path

    @cached_property
    def cache(self) -> ArtifactCache:
        return ArtifactCache(self.dir)

    def input_hash(self, name: str) -> str:
        """Content hash of an input artifact (remembered, so big files are hashed once)."""
        return self.cache.file_hash(self.artifact(name))

    def reuse(self, **parts: Any) -> dict[str, Any] | None:
        """The stored result when inputs and settings (``parts``) are unchanged, else None."""
        self._cache_key = ArtifactCache.key(self.name, parts)
        stored = self.cache.lookup(self.name, self._cache_key)
        if stored is None:
            return None
        self.cache_hit = True
        self.timer.outputs.extend(self.dir / name for name in stored.pop("__outputs__", ()))
        self.context.log.info(f"{self.name}: inputs and settings unchanged; reusing artifacts")
        return {k: Path(v["__path__"]) if isinstance(v, dict) and "__path__" in v else v
                for k, v in stored.items()}

    def save(self, result: dict[str, Any]) -> dict[str, Any]:
        """Remember this stage's outputs and ``result`` under the key ``reuse`` computed."""
        assert self._cache_key is not None, "call reuse() before save()"
        outputs = [p for p in self.timer.outputs if p.is_file()]
        stored = {k: {"__path__": str(v)} if isinstance(v, Path) else v for k, v in result.items()}
        stored["__outputs__"] = [p.relative_to(self.dir).as_posix() for p in outputs]
        self.cache.store(self.name, self._cache_key, outputs, stored)
        return result

    @contextmanager
    def asr_slot(self) -> Iterator[None]:
        """One of the machine's ``asr_pool_size`` Whisper slots, for the heavy part."""
        def waiting() -> None:
            self.context.log.info(f"{self.name}: waiting for a free Whisper slot "
                                  f"({self.settings.asr_pool_size} on this machine)")

        with machine_slot(self.settings.home_dir / "slots", "asr", self.settings.asr_pool_size,
                          on_wait=waiting) as waited:
            self.wait_seconds += waited
            yield

    def record(self, table: str, rows: list[dict[str, Any]]) -> None:
        self.cpw.store.append(table, rows, run_id=self.context.run_id, title=self.key,
                              asset=self.name)

    def log_progress(self, label: str) -> _ProgressLog:
        return _ProgressLog(self.context, label)

    def metadata(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Asset metadata: this stage's numbers plus ``extra``; paths become path values."""
        values: dict[str, Any] = {"title": self.key, **self.metrics,
                                  "cache_hit": int(self.cache_hit)}
        if self.audio_seconds is not None:
            values["audio_seconds"] = round(self.audio_seconds, 3)
        for k, v in extra.items():
            values[k] = MetadataValue.path(str(v)) if isinstance(v, Path) else v
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
def stage(context: AssetExecutionContext, cpw: CpwResource, name: str) -> Iterator[Stage]:
    key = context.partition_key
    try:
        title = cpw.registry.get(key)
    except CpwError as error:
        raise Failure(description=str(error), allow_retries=False) from error
    st = Stage(context, cpw, name, title)
    status, error_class = "success", None
    try:
        yield st
    except CpwError as error:
        status, error_class = "failed", type(error).__name__
        _record_failure(st, error)
        raise Failure(description=str(error), allow_retries=False) from error
    except Exception as error:
        status, error_class = "failed", type(error).__name__
        _record_failure(st, error)
        raise
    finally:
        measured = st.timer.stop()
        st.metrics.update(
            seconds=measured["wall_seconds"],
            cpu_seconds=measured["cpu_seconds"],
            peak_rss_mb=measured["peak_rss_mb"],
            output_bytes=measured["output_bytes"],
        )
        st.record("stage_metrics", [{
            **measured, "status": status, "error_class": error_class,
            "audio_seconds": st.audio_seconds, "cache_hit": st.cache_hit,
            "wait_seconds": round(st.wait_seconds, 3),
        }])
        context.log.info(
            f"{name} {status} in {measured['wall_seconds']:.2f} s "
            f"(cpu {measured['cpu_seconds']:.2f} s, peak RSS {measured['peak_rss_mb']:.0f} MB)"
        )


def _record_failure(st: Stage, error: BaseException) -> None:
    message = str(error)
    if isinstance(error, CpwError):
        path = str(error.path) if isinstance(error, MediaError) else st.title.media_path
        st.record("input_errors", [{"path": path, "error_class": type(error).__name__,
                                    "message": message}])
    st.record("runs", [{
        "status": "failed", "media_path": st.title.media_path,
        "error_class": type(error).__name__, "error_message": message[:2000],
        "target_language": st.settings.target_language,
    }])
    st.context.log.error(f"{st.name} failed for {st.key}: {message}")
