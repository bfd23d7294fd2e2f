"""The dbt project builds, through its Dagster assets, over real event files, and answers right;
each dbt model is an asset with its event tables as parents."""

# No `from __future__ import annotations`: Dagster reads the reference step's parameter types.
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, Definitions, materialize

from cpw_assets import metrics
from cpw_assets.metrics import (
    DBT_PROJECT,
    dbt_resource,
    metrics_assets,
    metrics_job,
    metrics_schedule,
)
from cpw_resources.orchestration.resources import EventStoreResource, HomeResource
from cpw_resources.store.events import TABLES, EventStore

MODELS = {  # model → the event tables it reads
    "title_run_summary": {"runs"},
    "title_stage_summary": {"stage_metrics"},
    "title_costs": {"api_calls"},
    "quality_by_condition": {"evaluations"},
    "stage_share": {"stage_metrics"},
    "stage_percentiles": set(),  # reads stage_share
    "daily_costs": {"api_calls", "stage_metrics"},
    "reliability": {"runs", "api_calls", "degradations"},
    "quality_over_time": {"evaluations"},
    "optimizer_accuracy": {"optimizer_decisions"},
    "title_total_costs": {"stage_metrics", "api_calls"},
}
MODEL_PARENTS = {"stage_percentiles": {AssetKey("stage_share")}}
DBT_TESTS = 18  # data_tests in sources.yml, each an asset check


def _parents(model: str) -> set:
    return {AssetKey(["events", t]) for t in MODELS[model]} | MODEL_PARENTS.get(model, set())


def _resources(home: Path) -> dict:
    return {"store": EventStoreResource(home=HomeResource(path=str(home))),
            "dbt": dbt_resource()}


def test_metrics_models_build_over_events(tmp_path: Path, instance) -> None:
    home = tmp_path / "cpw"
    store = EventStore(home / "events", home / "cpw.duckdb")
    for run_id, wall in (("r1", 10.0), ("r2", 8.0)):
        store.append("stage_metrics", [{"status": "success", "wall_seconds": wall,
                                        "audio_seconds": 40.0}],
                     run_id=run_id, title="film_a", asset="transcript")
        store.append("runs", [{"status": "success", "audio_seconds": 40.0,
                               "wall_seconds": wall * 2, "cues": 12}],
                     run_id=run_id, title="film_a", asset="subtitles")
    store.append("runs", [{"status": "failed", "error_message": "not media"}],
                 run_id="r3", title="film_b", asset="audio")
    store.append("api_calls", [
        {"service": "openai", "operation": "chat", "outcome": "ok", "model": "gpt-4o-mini",
         "input_tokens": 1000, "output_tokens": 200, "cost_usd": 0.00027},
        {"service": "openai", "operation": "chat", "outcome": "ok", "model": "gpt-4o-mini",
         "input_tokens": 3000, "output_tokens": 600, "cost_usd": 0.00081},
        {"service": "openai", "operation": "enhance", "outcome": "cache_hit", "cost_usd": 0.0,
         "segments": 7},
    ], run_id="r1", title="film_a", asset="enhanced_translation")
    evaluation = [  # two films of one condition, each through the project and plain Whisper
        {"evaluation_id": "e1", "commit": "abc", "film": film, "condition": "music5",
         "language": "en", "system": system, "audio_seconds": 100.0, "wall_seconds": wall,
         "wer": wer, "compliance": compliance, "invented_cues": 0, "invented_in_nonspeech": 0}
        for film, system, wall, wer, compliance in (
            ("a", "project", 12.0, 0.10, 1.0), ("b", "project", 14.0, 0.20, 1.0),
            ("a", "plain", 10.0, 0.12, 0.05), ("b", "plain", 10.0, 0.24, 0.03))]
    store.append("evaluations", evaluation, run_id="", title="", asset="bench_quality")

    result = materialize(metrics_assets, instance=instance, resources=_resources(home))
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {AssetKey(m) for m in MODELS}
    checks = [e.event_specific_data for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert len(checks) == DBT_TESTS and all(c.passed for c in checks)  # dbt tests, as checks

    with duckdb.connect(str(home / "cpw.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select title, runs, successful_runs, last_status, audio_seconds_per_second "
            "from title_run_summary order by title").fetchall()
        assert rows == [("film_a", 2, 2, "success", 40.0 / 16.0),
                        ("film_b", 1, 0, "failed", None)]
        stage = con.execute(
            "select run_id, wall_seconds, audio_seconds_per_second from title_stage_summary"
        ).fetchall()
        assert stage == [("r2", 8.0, 5.0)]
        costs = con.execute("select title, requests, input_tokens, output_tokens, cost_usd, "
                            "lines_from_cache from title_costs").fetchall()
        assert costs == [("film_a", 2, 4000, 800, 0.00108, 7)]
        quality = con.execute(
            "select system, films, round(wer, 4), round(wer_minus_plain, 4), "
            "round(realtime_factor, 4) from quality_by_condition order by system").fetchall()
        assert quality == [("plain", 2, 0.18, 0.0, 0.1), ("project", 2, 0.15, -0.03, 0.13)]
        # The pipeline's own views sit beside dbt's models in the same file.
        assert con.execute("select count(*) from runs").fetchone() == (3,)


def test_bottleneck_and_reliability_models_over_real_runs(run_title, media_dir, home,
                                                           instance) -> None:
    """A real title run twice (the second from the cache): each stage's share of its run,
    the bottleneck flagged, percentiles without the cache hits, a day of reliability."""
    from tests.conftest import JFK, copy_to

    media = copy_to(JFK, media_dir)
    assert run_title(media).success and run_title(media).success
    result = materialize(metrics_assets, instance=instance, resources=_resources(home))
    assert result.success

    with duckdb.connect(str(home / "cpw.duckdb"), read_only=True) as con:
        runs = con.execute("select run_id, sum(share), count(*), bool_or(cache_hit) "
                           "from stage_share group by run_id order by min(finished_at)"
                           ).fetchall()
        assert len(runs) == 2 and all(abs(total - 1) < 1e-9 and n == 7 for _, total, n, _ in runs)
        assert [hit for *_, hit in runs] == [False, True]
        first = runs[0][0]
        shares = dict(con.execute("select asset, share from stage_share where run_id = ?",
                                  [first]).fetchall())
        assert max(shares, key=shares.get) == "transcript"
        flagged = {a for a, b in con.execute("select asset, bottleneck from stage_share "
                                              "where run_id = ?", [first]).fetchall() if b}
        assert flagged == {a for a, v in shares.items() if v > 0.2} and "transcript" in flagged
        transcript = con.execute(
            "select duration, runs, p50_seconds, p95_seconds, p50_seconds_per_audio_second "
            "from stage_percentiles where asset = 'transcript' order by duration").fetchall()
        assert [row[:2] for row in transcript] == [("all", 1), ("under 1 min", 1)]
        assert all(0 < p50 <= p95 and per_audio > 0 for _, _, p50, p95, per_audio in transcript)
        day = con.execute("select runs, successful_runs, success_rate, degradations, calls "
                          "from reliability").fetchall()
        assert day == [(2, 2, 1.0, 0, 0)]
        # Compute priced at the shipped [compute] prices: CPU seconds × cpu_hour / 3600.
        cpu, compute, api, total = con.execute(
            "select cpu_seconds, compute_cost_usd, api_cost_usd, total_cost_usd "
            "from title_total_costs").fetchall()[0]
        assert cpu > 0 and api == 0 and total == compute
        assert compute == pytest.approx(cpu * 0.04 / 3600, abs=1e-5)
        per_stage = con.execute("select sum(compute_cost_usd) from stage_share").fetchall()
        assert per_stage[0][0] == pytest.approx(compute, abs=1e-5)
        compute_day = con.execute("select cost_usd from daily_costs where service = 'compute'"
                                  ).fetchall()
        assert compute_day == [(compute,)]


def test_metrics_models_retry_while_an_analyst_holds_the_file(tmp_path: Path, instance) -> None:
    home = tmp_path / "cpw"
    store = EventStore(home / "events", home / "cpw.duckdb")
    store.ensure_views()
    store.append("runs", [{"status": "success", "cues": 1}], run_id="r", title="t",
                 asset="subtitles")
    # The analyst keeps the file open until dbt has met the lock (its log says so; at most
    # 180 s, for a loaded machine where dbt is slow to start), then closes it: the first
    # build fails, a retry succeeds.
    dbt_log = home / "dbt" / "target" / "dbt.log"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, pathlib, time\n"
        f"con = duckdb.connect({str(home / 'cpw.duckdb')!r}, read_only=True)\n"
        "print('open', flush=True)\n"
        f"log, end = pathlib.Path({str(dbt_log)!r}), time.monotonic() + 180\n"
        "while time.monotonic() < end and not (log.exists() and 'Could not set lock' in "
        "log.read_text(errors='replace')):\n"
        "    time.sleep(0.2)\n"
    )], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "open"
    started = time.monotonic()
    result = materialize(metrics_assets, instance=instance, resources=_resources(home))
    holder.wait()
    assert result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert failures, "the first build should have met the lock and been retried"
    assert time.monotonic() - started < 60


def test_each_model_is_an_asset_with_its_event_tables_as_parents(tmp_path: Path) -> None:
    defs = Definitions(assets=metrics_assets, jobs=[metrics_job], schedules=[metrics_schedule],
                       resources=_resources(tmp_path / "cpw"))
    graph = defs.resolve_asset_graph()
    for model in MODELS:
        node = graph.get(AssetKey(model))
        assert node.is_materializable
        assert node.group_name == "metrics"
        assert node.kinds == {"dbt", "duckdb"}
        assert node.parent_keys == _parents(model)
    # Every event table is a node (external, not materialized by Dagster) in group events.
    for table in TABLES:
        node = graph.get(AssetKey(["events", table]))
        assert node.group_name == "events" and not node.is_materializable
        assert node.kinds == {"parquet"} and node.description
    # The dbt tests are the models' checks; the job builds the models, not the event tables.
    assert {k.asset_key for k in graph.asset_check_keys} == {AssetKey(m) for m in MODELS}
    job = defs.resolve_job_def("metrics_job")
    assert job.asset_layer.selected_asset_keys == {AssetKey(m) for m in MODELS}
    op = next(a for a in metrics_assets if hasattr(a, "op"))
    assert op.op.pool is None and op.op.retry_policy.max_retries == 4  # a flock slot instead


def test_specs_match_what_dbt_assets_makes_of_the_same_manifest() -> None:
    """The specs built at load without importing dbt equal ``@dbt_assets``'s with the same
    translator, which the step hands to dagster-dbt."""
    from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

    project = DbtProject(DBT_PROJECT, target_path=metrics.manifest_target())

    @dbt_assets(manifest=project.manifest_path, project=project,
                dagster_dbt_translator=metrics.dbt_translator())
    def reference(context, dbt: DbtCliResource):  # pragma: no cover - never run
        yield from dbt.cli(["build"], context=context).stream()

    ours = next(a for a in metrics_assets if hasattr(a, "op"))
    for spec in reference.specs:
        mine = ours.specs_by_key[spec.key]
        assert (mine.group_name, mine.kinds, mine.description, mine.code_version) == (
            spec.group_name, spec.kinds, spec.description, spec.code_version), spec.key
        assert {d.asset_key for d in mine.deps} == {d.asset_key for d in spec.deps}
    assert set(ours.keys) == set(reference.keys)
    assert {(c.key, c.blocking, c.description) for c in ours.check_specs} == {
        (c.key, c.blocking, c.description) for c in reference.check_specs}
    assert set(reference.dependency_keys) - set(reference.keys) == {
        AssetKey(["events", t]) for tables in MODELS.values() for t in tables}


def test_sources_name_every_event_table() -> None:
    external = {s.key for s in metrics_assets if not hasattr(s, "op")}
    assert external == {AssetKey(["events", t]) for t in TABLES}


def test_manifest_is_reparsed_only_when_the_project_changes(tmp_path: Path) -> None:
    project = tmp_path / "dbt_metrics"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    manifest = project / "target" / "manifest.json"
    assert not metrics.manifest_is_fresh(manifest, project)
    manifest.parent.mkdir()
    manifest.write_text("{}")
    assert metrics.manifest_is_fresh(manifest, project)
    assert metrics.prepare_manifest(project) == manifest  # fresh: no dbt parse
    assert manifest.read_text() == "{}"
    model = project / "models" / "title_costs.sql"
    later = manifest.stat().st_mtime + 5
    os.utime(model, (later, later))
    assert not metrics.manifest_is_fresh(manifest, project)
    # What dbt writes at run time in the project does not count as a change.
    (project / "logs").mkdir()
    os.utime(model, (later - 10, later - 10))
    (project / "logs" / "dbt.log").write_text("x")
    assert metrics.manifest_is_fresh(manifest, project)


def test_without_dbt_there_are_no_metric_assets(monkeypatch: pytest.MonkeyPatch) -> None:
    real_version = metrics.importlib.metadata.version

    def version(name: str) -> str:
        if name == "dbt-duckdb":
            raise metrics.importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    def no_parse(*args, **kwargs):
        raise AssertionError("no dbt parse without dbt")

    monkeypatch.setattr(metrics.importlib.metadata, "version", version)
    monkeypatch.setattr(metrics, "prepare_manifest", no_parse)
    assert metrics.load_metrics_assets() == []
    defs = Definitions(assets=[], jobs=[metrics_job], schedules=[metrics_schedule])
    assert defs.resolve_job_def("metrics_job").asset_layer.selected_asset_keys == set()


def test_a_read_only_project_without_a_fresh_manifest_parses_into_the_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "dbt_metrics"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    monkeypatch.setattr(metrics, "_writable", lambda folder: False)
    monkeypatch.setattr(metrics, "_home_dir", lambda: tmp_path / "cpw")
    assert metrics.manifest_target(project) == tmp_path / "cpw" / "dbt" / "manifest"
    shipped = project / "target" / "manifest.json"  # prepared at install: used as it is
    shipped.parent.mkdir()
    shipped.write_text("{}")
    assert metrics.manifest_target(project) == project / "target"


def test_without_a_dbt_project_there_are_no_metric_assets(tmp_path: Path) -> None:
    assert metrics.load_metrics_assets(tmp_path / "absent") == []


def test_definitions_load_without_dbt_installed() -> None:
    """With dagster-dbt absent, importing the module neither parses nor fails: no assets."""
    code = ("import sys\n"
            "sys.modules['dagster_dbt'] = None  # as if the dbt extra were not installed\n"
            "from cpw_assets import metrics\n"
            "assert metrics.metrics_assets == [], metrics.metrics_assets\n"
            "assert metrics.metrics_job.name == 'metrics_job'\n"
            "assert 'dbt' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


_HOLD_SLOT = """
import sys, time
from pathlib import Path
from cpw_resources.speech.slots import machine_slot
with machine_slot(Path(sys.argv[1]), "duckdb", 1, label="a build that gets killed"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_killed_build_leaves_no_slot_behind(tmp_path: Path, instance) -> None:
    """A dbt build killed mid-way held the duckdb slot; the next build neither waits for it
    nor spins (a Dagster pool slot would stay claimed by the dead run)."""
    home = tmp_path / "cpw"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_SLOT, str(home / "slots")],
                              stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    started = time.monotonic()
    result = materialize(metrics_assets, instance=instance, resources=_resources(home))
    assert result.success
    assert time.monotonic() - started < 120
    logs = [e.message for e in instance.all_logs(result.run_id)]
    assert not any("waiting for the duckdb slot" in m for m in logs)
