"""The dbt project in ``dbt_metrics/`` as Dagster assets: one per dbt model, over the event tables.

Each dbt model (``title_run_summary``, ``title_stage_summary``, ``title_costs``, …) is its own
asset in group ``metrics`` (kinds dbt, duckdb) with its dbt tests as asset checks; each event
table a dbt source names is an external asset ``["events", <table>]`` (group ``events``, kind
parquet) upstream of the models that read it, so the UI shows the lineage. One step builds them
all (or the selected ones) with ``dbt build`` through dagster-dbt's :class:`DbtCliResource`
(the ``dbt`` resource, see :func:`dbt_resource`), and reports each model and test as it ends.

What the step guarantees:

* dbt is the only process that writes tables into ``$CPW_HOME/cpw.duckdb`` (the pipeline's
  event views are created once, when missing, by the event store).
* It holds the machine's one ``duckdb`` slot (a ``flock``-ed file under ``$CPW_HOME/slots/``,
  like the Whisper slots: never two builds at once, and a killed build's slot is freed by the
  kernel, so nothing waits on a dead run) and retries with backoff while an analyst's
  read-only session holds the file (DuckDB: one writer, no other readers).
* The event tables' typed empty files are ensured first, so every source column exists.
* The home is passed to dbt as ``--vars '{"cpw_home": ...}'`` (profiles.yml and sources.yml
  read ``var('cpw_home')``, else ``CPW_HOME``); dbt never calls out (no usage statistics, no
  version check, no packages).

Loading definitions stays fast. Importing dagster-dbt imports dbt-core, which costs about 3 s
per process (measured: 3.4 s → 6.3-7.3 s for ``import cpw_assets.definitions``), and every
run worker and step process loads definitions. So this module reads the manifest as JSON and
builds the asset specs itself (:func:`build_metrics_assets`) with the same translation that
:func:`dbt_translator` gives dagster-dbt (``tests/integration/test_dbt_metrics.py`` checks them
against ``@dbt_assets`` over the same manifest); dagster-dbt is imported only inside the step
and by :func:`dbt_resource`'s resource when a run first uses it.

The manifest is ``dbt_metrics/target/manifest.json`` (gitignored), made by ``dbt parse`` when it
is missing or older than a file of the project: at install (``python -m cpw_assets.metrics``)
or else on the first load after a change (seconds, once; a lock keeps concurrent loads from
parsing twice). Where the project folder is read-only and ships no fresh manifest, it goes to
``$CPW_HOME/dbt/manifest/`` instead. Without the ``dbt`` extra (dagster-dbt, dbt-core,
dbt-duckdb) there are no metric assets and the rest of the definitions loads as usual.

Rebuilt hourly by ``metrics_schedule`` (``hourly_metrics``, :15 past, stopped by default), a
schedule rather than ``AutomationCondition.on_cron``: on_cron waits for every parent to update
after the tick, and the event tables are external files that Dagster never sees materialize.
"""

# No `from __future__ import annotations`: Dagster reads the step's parameter types.
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    Backoff,
    ResourceDefinition,
    ResourceParam,
    RetryPolicy,
    ScheduleDefinition,
    define_asset_job,
    multi_asset,
)

from cpw_resources.errors import ConfigError
from cpw_resources.orchestration.resources import EventStoreResource
from cpw_resources.speech.slots import Holder, machine_slot

log = logging.getLogger(__name__)

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_metrics"
#: The machine-wide slot a dbt build holds (cpw_resources/speech/slots.py), and how long a
#: build waits for it (a build takes seconds; one still waiting after this names the holder).
DUCKDB_SLOT = "duckdb"
DUCKDB_SLOT_WAIT_S = 1800.0
METRICS_GROUP = "metrics"
EVENTS_GROUP = "events"
#: Retry while an analyst's read-only session holds cpw.duckdb: 2+4+8+16 s of waiting.
DBT_RETRY = RetryPolicy(max_retries=4, delay=2, backoff=Backoff.EXPONENTIAL)
#: dbt must never need the network (dbt_project.yml's flags say the same for plain dbt runs).
OFFLINE_ENV = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "DBT_VERSION_CHECK": "false",
}
_NOT_PROJECT_FILES = {"target", "logs", "dbt_packages"}
_ASSET_TYPES = {"model", "seed", "snapshot"}


# -- the manifest -----------------------------------------------------------------------------

def dbt_installed() -> bool:
    """True when the ``dbt`` extra is installed (checked without importing dbt: ~3 s)."""
    if importlib.util.find_spec("dagster_dbt") is None:
        return False
    try:
        importlib.metadata.version("dbt-duckdb")
    except importlib.metadata.PackageNotFoundError:
        return False
    return dbt_executable() is not None


def dbt_executable() -> str | None:
    """The ``dbt`` beside this Python (a venv not on PATH), else on PATH."""
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else shutil.which("dbt")


def _project_mtime(project: Path) -> float:
    newest = 0.0
    for root, dirs, files in os.walk(project):
        dirs[:] = [d for d in dirs if d not in _NOT_PROJECT_FILES and not d.startswith(".")]
        for name in files:
            newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
    return newest


def manifest_is_fresh(manifest: Path, project: Path = DBT_PROJECT) -> bool:
    """The manifest exists and is no older than any file of the project."""
    try:
        made = manifest.stat().st_mtime
    except FileNotFoundError:
        return False
    return made >= _project_mtime(project)


def _writable(folder: Path) -> bool:
    while not folder.exists():
        folder = folder.parent
    return os.access(folder, os.W_OK)


def _home_dir() -> Path:
    from cpw_resources.settings import Settings

    return Settings().home_dir


def manifest_target(project: Path = DBT_PROJECT) -> Path:
    """Where the manifest lives: ``<project>/target``, unless the project folder is read-only
    and ships no fresh manifest there; then ``$CPW_HOME/dbt/manifest``."""
    own = project / "target"
    if _writable(own) or manifest_is_fresh(own / "manifest.json", project):
        return own
    return _home_dir() / "dbt" / "manifest"


def prepare_manifest(project: Path = DBT_PROJECT, *, force: bool = False) -> Path:
    """The project's ``manifest.json``, made by ``dbt parse`` when missing or stale (or when
    ``force``). Concurrent callers wait on a lock and parse once; the manifest is swapped in
    whole, so a reader never sees half of one. Raises :class:`ConfigError` when dbt is not
    installed or the project does not parse."""
    target = manifest_target(project)
    manifest = target / "manifest.json"
    if not force and manifest_is_fresh(manifest, project):
        return manifest
    dbt = dbt_executable()
    if dbt is None:
        raise ConfigError("dbt is not installed; install the extra: pip install 'cp-whisperx[dbt]'")
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and manifest_is_fresh(manifest, project):
            return manifest
        scratch = target / f".parse-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            done = subprocess.run(
                [dbt, "parse", "--quiet", "--project-dir", str(project),
                 "--profiles-dir", str(project), "--target-path", str(scratch),
                 "--log-path", str(scratch / "logs")],
                cwd=project, env={**os.environ, **OFFLINE_ENV}, capture_output=True, text=True,
                timeout=600,
            )
            if done.returncode != 0 or not (scratch / "manifest.json").exists():
                tail = (done.stdout + done.stderr).strip().splitlines()[-10:]
                raise ConfigError(f"dbt parse of {project} failed:\n" + "\n".join(tail))
            if (scratch / "partial_parse.msgpack").exists():  # dbt build starts from it
                os.replace(scratch / "partial_parse.msgpack", target / "partial_parse.msgpack")
            os.replace(scratch / "manifest.json", manifest)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    log.info("dbt manifest prepared at %s", manifest)
    return manifest


# -- the translation: dbt node → Dagster asset --------------------------------------------------
# Pure functions of the manifest's node properties, used both for the specs defined at load and
# by the DagsterDbtTranslator that dagster-dbt uses in the step, so the two always agree.

def asset_key(props: Mapping[str, Any]) -> AssetKey:
    """A source table → ``["events", <table>]`` (its source's name); a model → ``[<name>]``."""
    if props["resource_type"] == "source":
        return AssetKey([props["source_name"], props["name"]])
    return AssetKey([props["name"]])


def group_name(props: Mapping[str, Any]) -> str:
    return EVENTS_GROUP if props["resource_type"] == "source" else METRICS_GROUP


def description(props: Mapping[str, Any]) -> str:
    return props.get("description") or f"dbt {props['resource_type']} {props['name']}"


def code_version(props: Mapping[str, Any]) -> str | None:
    code = props.get("raw_code") or props.get("raw_sql")
    if code:
        return hashlib.sha1(code.encode("utf-8")).hexdigest()
    return props.get("checksum", {}).get("checksum")


def _node(manifest: Mapping[str, Any], unique_id: str) -> Mapping[str, Any]:
    return manifest["nodes"].get(unique_id) or manifest["sources"][unique_id]


def _kinds(manifest: Mapping[str, Any]) -> set[str]:
    return {"dbt", manifest.get("metadata", {}).get("adapter_type") or "dbt"}


def event_table_specs(manifest: Mapping[str, Any]) -> list[AssetSpec]:
    """One external asset per table a dbt source names: the Parquet files under
    ``$CPW_HOME/events/<table>/``, written by the pipeline, never materialized by Dagster."""
    return [
        AssetSpec(key=asset_key(src), group_name=EVENTS_GROUP, kinds={"parquet"},
                  description=description(src),
                  metadata={"files": f"$CPW_HOME/events/{src['name']}/**/*.parquet",
                            "dbt/unique_id": uid})
        for uid, src in sorted(manifest["sources"].items())
    ]


def _model_specs(manifest: Mapping[str, Any]) -> tuple[list[AssetSpec], list[AssetCheckSpec]]:
    kinds = _kinds(manifest)
    adapter = manifest.get("metadata", {}).get("adapter_type")
    models = {uid: n for uid, n in manifest["nodes"].items()
              if n["resource_type"] in _ASSET_TYPES
              and n.get("config", {}).get("materialized") != "ephemeral"}
    specs = []
    for uid, node in sorted(models.items()):
        parents = [p for p in node.get("depends_on", {}).get("nodes", [])
                   if p in models or p in manifest["sources"]]
        table = ".".join(x for x in (node.get("database"), node.get("schema"),
                                     node.get("alias") or node["name"]) if x)
        specs.append(AssetSpec(
            key=asset_key(node), group_name=group_name(node), kinds=kinds,
            description=description(node), code_version=code_version(node), skippable=True,
            deps=[AssetDep(asset_key(_node(manifest, p))) for p in sorted(set(parents))],
            metadata={"dagster/table_name": table, "dagster/storage_kind": adapter or "dbt",
                      "dbt/unique_id": uid, "dbt/path": node.get("original_file_path", "")},
        ))
    checks = []
    for uid, test in sorted(manifest["nodes"].items()):
        if test["resource_type"] != "test":
            continue
        parents = set(manifest.get("parent_map", {}).get(uid, []))
        attached = test.get("attached_node") or (
            next(iter(parents)) if len(parents) == 1 else None)
        if attached not in models:
            continue
        key = asset_key(models[attached])
        severity = test.get("config", {}).get("severity") or "error"
        checks.append(AssetCheckSpec(
            name=test["name"], asset=key,
            description=test.get("meta", {}).get("description"),
            additional_deps=sorted({asset_key(_node(manifest, p)) for p in parents} - {key},
                                   key=lambda k: k.path),
            metadata={"dbt/unique_id": uid}, blocking=severity.lower() == "error",
        ))
    return specs, checks


@cache
def dbt_translator() -> Any:
    """dagster-dbt's translator for this project (imports dagster-dbt: use at run time)."""
    from dagster_dbt import DagsterDbtTranslator

    class CpwDbtTranslator(DagsterDbtTranslator):
        """Sources → ``["events", <table>]`` in group events; models → ``[<name>]`` in
        group metrics."""

        def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
            return asset_key(dbt_resource_props)

        def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
            return group_name(dbt_resource_props)

        def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
            return description(dbt_resource_props)

        def get_code_version(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
            return code_version(dbt_resource_props)

    return CpwDbtTranslator()


# -- the resource and the step ------------------------------------------------------------------

def make_dbt_cli(project: Path = DBT_PROJECT) -> Any:
    """``DbtCliResource(project_dir=DbtProject(dbt_metrics))`` (imports dagster-dbt)."""
    from dagster_dbt import DbtCliResource, DbtProject

    dbt = dbt_executable()
    if dbt is None:
        raise ConfigError("dbt is not installed; install the extra: pip install 'cp-whisperx[dbt]'")
    target = manifest_target(project)
    dbt_project = DbtProject(project_dir=project, target_path=target, profiles_dir=project)
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt)


def dbt_resource() -> ResourceDefinition:
    """The ``dbt`` resource: a :class:`dagster_dbt.DbtCliResource` over ``dbt_metrics/``, made
    when a run first uses it, so that loading definitions does not import dbt."""
    return ResourceDefinition(
        resource_fn=lambda _: make_dbt_cli(),
        description="dbt (dagster_dbt.DbtCliResource) over the dbt_metrics project",
    )


def _dbt_build(context: AssetExecutionContext, store: EventStoreResource, dbt: Any,
               manifest_path: Path, manifest: Mapping[str, Any]) -> Iterator[Any]:
    from dagster_dbt import DagsterDbtCliRuntimeError

    events = store.events  # creates the event views once, unless a reader holds the file
    events.ensure_tables()
    home = store.home.dir
    translator = dbt_translator()
    args = ["build", "--vars", json.dumps({"cpw_home": str(home)})]
    if context.is_subset:  # some models (with their tests), or only some models' tests
        by_key = {asset_key(n): n["name"] for n in manifest["nodes"].values()
                  if n["resource_type"] in _ASSET_TYPES}
        keys = set(context.selected_asset_keys)
        if not keys:
            args[0] = "test"
            keys = {check.asset_key for check in context.selected_asset_check_keys}
        args += ["--select", *sorted(by_key[k] for k in keys)]
    def waiting(holders: list[Holder]) -> None:
        held_by = "; ".join(h.describe() for h in holders) or "another process"
        context.log.info(f"waiting for the duckdb slot, held by {held_by}")

    try:
        with machine_slot(home / "slots", DUCKDB_SLOT, 1, label=f"run {context.run_id} (dbt)",
                          timeout_s=DUCKDB_SLOT_WAIT_S, on_wait=waiting,
                          hint="Another dbt build is running; wait for it or stop it."):
            context.log.info(f"dbt {' '.join(args)} into {events.duckdb_path}")
            invocation = dbt.cli(args, manifest=manifest_path,
                                 dagster_dbt_translator=translator,
                                 target_path=home / "dbt" / "target")
            for event in invocation.stream_raw_events():
                yield from event.to_default_asset_events(
                    manifest=manifest, dagster_dbt_translator=translator, context=context,
                    target_path=invocation.target_path)
    except DagsterDbtCliRuntimeError as error:
        raise RuntimeError(
            f"dbt build into {events.duckdb_path} failed (a read-only session holding the "
            f"file makes it fail until it closes; retrying): {error}") from error


def build_metrics_assets(manifest_path: Path) -> list[AssetsDefinition | AssetSpec]:
    """The dbt models as one multi-asset (one asset per model, dbt tests as checks) plus the
    event tables they read as external assets, from ``manifest_path`` (no dbt import)."""
    manifest = json.loads(Path(manifest_path).read_text())
    specs, checks = _model_specs(manifest)
    if not specs:
        return event_table_specs(manifest)

    @multi_asset(
        name=manifest.get("metadata", {}).get("project_name") or "dbt_metrics",
        specs=specs, check_specs=checks, can_subset=True,
        retry_policy=DBT_RETRY,
        description="dbt build of dbt_metrics/ into $CPW_HOME/cpw.duckdb.",
    )
    def dbt_metrics(context: AssetExecutionContext, store: EventStoreResource,
                    dbt: ResourceParam[Any]):
        # dbt is a dagster_dbt.DbtCliResource (typed Any so loading does not import dbt)
        yield from _dbt_build(context, store, dbt, manifest_path, manifest)

    return [dbt_metrics, *event_table_specs(manifest)]


def load_metrics_assets(project: Path = DBT_PROJECT) -> list[AssetsDefinition | AssetSpec]:
    """The metric assets; none when the ``dbt`` extra is not installed or the dbt project is
    not there (an install without the repository). A project that does not parse raises."""
    if not dbt_installed():
        log.info("dbt is not installed (extra 'dbt'): no metric assets")
        return []
    if not (project / "dbt_project.yml").exists():
        log.warning("no dbt project at %s: no metric assets", project)
        return []
    return build_metrics_assets(prepare_manifest(project))


metrics_assets = load_metrics_assets()
metrics_job = define_asset_job(
    "metrics_job", selection=AssetSelection.groups(METRICS_GROUP),
    description="dbt build of the metric models over the event tables.")
metrics_schedule = ScheduleDefinition(
    name="hourly_metrics", job=metrics_job, cron_schedule="15 * * * *",
    description="Rebuild the dbt metric models over the event tables every hour.",
)


if __name__ == "__main__":  # python -m cpw_assets.metrics: prepare the manifest (install time)
    print(prepare_manifest(force="--force" in sys.argv[1:]))
