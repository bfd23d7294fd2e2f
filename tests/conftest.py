"""Shared fixtures: a private CPW_HOME, a real ephemeral Dagster instance, and a title runner."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance, RunConfig, instance_for_test, materialize

from cpw_assets.definitions import defs
from cpw_resources.orchestration.config import run_config
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import resources_for
from cpw_resources.settings import Settings
from cpw_resources.store.events import EventStore
from cpw_resources.store.titles import TitleRegistry

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
JFK = DATA / "jfk.wav"
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
SAMPLE = REPO / "cpw_assets" / "samples" / "voicemail_fr.mka"
ASSETS = [a for a in defs.assets if getattr(a, "partitions_def", None) is not None]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's cpw.yaml or environment settings."""
    for var in list(os.environ):
        if var.startswith("CPW_") or var == "DAGSTER_HOME":
            monkeypatch.delenv(var)
    monkeypatch.setenv("CPW_CONFIG", str(tmp_path / "absent-cpw.yaml"))
    # The default route (auto) translates with the local model where it is installed; the
    # suite pins Whisper's translate task so each test's timing and text stay its own. The
    # auto route is tested in tests/integration/test_local_llm.py.
    monkeypatch.setenv("CPW_TRANSLATION_BACKEND", "whisper")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "cpw"


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


@dataclass
class TitleRun:
    key: str
    success: bool
    result: object
    home: Path

    @property
    def dir(self) -> Path:
        return self.home / "titles" / self.key

    def srt(self, lang: str = "en") -> Path:
        return self.dir / f"{self.key}.{lang}.srt"

    def check(self, name: str):
        """The evaluation of asset check ``name`` in this run."""
        return [e.event_specific_data for e in self.result.all_events
                if e.event_type_value == "ASSET_CHECK_EVALUATION"
                and e.event_specific_data.check_name == name][0]

    def vtt(self, lang: str = "en") -> Path:
        return self.dir / f"{self.key}.{lang}.vtt"


@pytest.fixture
def run_title(instance: DagsterInstance, home: Path):
    """Register ``media`` and materialise every asset for it; returns a TitleRun."""

    def run(media: Path, *, only: list[str] | None = None, **overrides: object) -> TitleRun:
        """``overrides`` are settings, the rest comes from the (test's) environment; ``only``
        materialises just those assets (the others' files stay as they are). The optimizer
        is off unless a test turns it on: the others test what a given model does."""
        settings = Settings(**{"home": home, "whisper_model": "tiny.en", "optimizer": "off",
                               **overrides})
        key = TitleRegistry(home / "titles").register(media).key
        instance.add_dynamic_partitions(titles.name, [key])
        config = run_config(settings)
        if only is not None:
            config = RunConfig(ops={k: v for k, v in config.ops.items() if k in only})
        result = materialize(ASSETS, instance=instance, partition_key=key,
                             resources=resources_for(settings), run_config=config,
                             selection=only, raise_on_error=False)
        return TitleRun(key, result.success, result, home)

    return run


@pytest.fixture
def store(home: Path) -> EventStore:
    return EventStore(home / "events", home / "cpw.duckdb")


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    return folder


def copy_to(src: Path, folder: Path, name: str | None = None) -> Path:
    dest = folder / (name or src.name)
    shutil.copyfile(src, dest)
    return dest
