"""``performance_report`` and ``cost_report``: pages a person opens, from the event store.

Not partitioned: one page each for the machine, under ``$CPW_HOME/reports/`` with PNG charts
beside it (``performance.html``, ``costs.html``), linked from the asset's metadata. Each is
self-contained (inline SVG charts, no script or font from the network; it opens offline) and
says what to change, each piece of advice with the figure from the events that triggered it.
Materialize them from the UI or with ``reports_job``; the daily ``daily_reports`` schedule
keeps them current.
"""

# No `from __future__ import annotations`: Dagster reads the step's parameter types.
import psutil
from dagster import (
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    ScheduleDefinition,
    asset,
    define_asset_job,
)

from cpw_resources.orchestration.resources import EventStoreResource, LlmResource
from cpw_resources.reports import costs, performance
from cpw_resources.reports.page import Report

REPORTS_GROUP = "reports"


def _metadata(path, report: Report) -> dict:
    return {
        "report": MetadataValue.url(path.resolve().as_uri()),
        "path": MetadataValue.path(str(path)),
        "charts": MetadataValue.json({c.name: str(c.png) for c in report.charts}),
        "recommendations": MetadataValue.md("\n".join(
            f"- **{r.rule}**: {r.advice} ({r.figure})" for r in report.recommendations)
            or "nothing to change"),
        **{k: v for k, v in report.summary},
    }


@asset(group_name=REPORTS_GROUP, kinds={"html"},
       deps=[AssetKey(["events", t]) for t in ("stage_metrics", "runs", "training_examples",
                                               "optimizer_decisions")])
def performance_report(context: AssetExecutionContext,
                       store: EventStoreResource) -> MaterializeResult:
    """Where titles' time goes: a timeline of each title's stages, throughput over time,
    the slowest stages, and what to change (from rules on the events)."""
    folder = store.home.under("reports")
    path, report = performance.build(store.events, folder,
                                      psutil.virtual_memory().total / (1 << 20))
    context.log.info(f"performance report: {path} ({len(report.recommendations)} "
                     "recommendations)")
    return MaterializeResult(metadata=_metadata(path, report))


@asset(group_name=REPORTS_GROUP, kinds={"html"},
       deps=[AssetKey(["events", t]) for t in ("api_calls", "stage_metrics", "degradations")])
def cost_report(context: AssetExecutionContext, store: EventStoreResource,
                llm: LlmResource) -> MaterializeResult:
    """Dollars per title and per day, outside calls beside compute, against the daily
    budget, and what to change."""
    from cpw_resources.orchestration.config import settings_at_load

    folder = store.home.under("reports")
    path, report = costs.build(store.events, folder, llm.daily_budget_usd,
                               settings_at_load().title_budget_usd)
    context.log.info(f"cost report: {path} ({len(report.recommendations)} recommendations)")
    return MaterializeResult(metadata=_metadata(path, report))


reports_job = define_asset_job("reports_job", selection=[performance_report, cost_report],
                               description="Both report pages, from the event store.")
reports_schedule = ScheduleDefinition(name="daily_reports", job=reports_job,
                                      cron_schedule="30 6 * * *",
                                      description="The report pages, every morning.")
