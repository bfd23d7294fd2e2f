"""``metrics_models``: the dbt project in ``dbt_metrics/`` built into ``cpw.duckdb``.

dbt is the one process that writes tables into ``cpw.duckdb`` (the event views are created
once, when missing). DuckDB allows a single writer and no reader in another process meanwhile,
so this asset runs in the ``duckdb`` pool (one slot: never two builds at once) and retries
briefly when an analyst's session holds the file.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    Backoff,
    MaterializeResult,
    RetryPolicy,
    ScheduleDefinition,
    asset,
    define_asset_job,
)

from cpw_resources.errors import ConfigError
from cpw_resources.orchestration.resources import CpwResource

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_metrics"
DUCKDB_POOL = "duckdb"


def _dbt_executable() -> str:
    beside_python = Path(sys.executable).parent / "dbt"
    found = str(beside_python) if beside_python.exists() else shutil.which("dbt")
    if not found:
        raise ConfigError("dbt is not installed; install the extra: pip install 'cp-whisperx[dbt]'")
    return found


@asset(
    group_name="metrics",
    pool=DUCKDB_POOL,
    retry_policy=RetryPolicy(max_retries=4, delay=2, backoff=Backoff.EXPONENTIAL),
)
def metrics_models(context: AssetExecutionContext, cpw: CpwResource) -> MaterializeResult:
    """dbt build: title_run_summary and title_stage_summary over the event tables."""
    settings = cpw.settings
    cpw.store.ensure_tables()
    work = settings.home_dir / "dbt"
    env = {**os.environ, "CPW_HOME": str(settings.home_dir),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run(
        [_dbt_executable(), "build", "--project-dir", str(DBT_PROJECT),
         "--profiles-dir", str(DBT_PROJECT), "--target-path", str(work / "target"),
         "--log-path", str(work / "logs")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    tail = done.stdout.strip().splitlines()[-12:]
    if done.returncode != 0:
        context.log.warning("\n".join(tail))
        raise RuntimeError(
            f"dbt build into {settings.duckdb_path} failed (a read-only session holding the "
            f"file makes it fail until it closes; retrying): {tail[-1] if tail else ''}"
        )
    context.log.info("\n".join(tail))
    models = sum(1 for p in (DBT_PROJECT / "models").glob("*.sql"))
    return MaterializeResult(metadata={"models": models, "duckdb": str(settings.duckdb_path)})


metrics_job = define_asset_job("metrics_job", selection=[metrics_models])
metrics_schedule = ScheduleDefinition(
    name="hourly_metrics", job=metrics_job, cron_schedule="15 * * * *",
    description="Rebuild the dbt metric models over the event tables every hour.",
)
