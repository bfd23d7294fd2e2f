"""Budget alerts: spend against the daily and monthly budgets, said once per threshold.

Every 5 minutes the dollars of outside calls (``api_calls.cost_usd``) are summed for the
current UTC day and month and compared with ``CPW_DAILY_BUDGET_USD`` and
``CPW_MONTHLY_BUDGET_USD``. Each share in ``CPW_BUDGET_ALERTS`` (80 % and 100 % by default)
that a period's spend crossed raises one alert for that period: a ``budget_alerts`` event row,
an observation on the ``events/api_calls`` asset (its metadata shows spend and budget in the
UI), a warning in the tick's log, and the tick's message. The cursor remembers what was said,
so an alert is raised once per period and threshold. The daily and per-title budgets stop
spending (enhancement keeps the MT); this sensor only tells. Compute spend (the stages' CPU and
GPU time at the pricing file's ``[compute]`` prices) is shown beside it, not counted against
the budgets, which are for outside calls.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import polars as pl
from dagster import (
    AssetKey,
    AssetObservation,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from cpw_resources.orchestration.resources import EventStoreResource, LlmResource
from cpw_resources.store.events import EventStore


@dataclass(frozen=True)
class Alert:
    period: str  # "day" or "month"
    start: str  # 2026-12-02 or 2026-12
    threshold: float
    spent: float
    budget: float
    compute: float

    @property
    def key(self) -> str:
        return f"{self.period}:{self.start}:{self.threshold:g}"

    @property
    def message(self) -> str:
        return (f"{self.period} {self.start}: outside calls cost ${self.spent:.2f}, "
                f"{self.spent / self.budget:.0%} of the {self.period}'s ${self.budget:.2f} "
                f"budget (alert at {self.threshold:.0%}); compute ${self.compute:.2f} beside it")


def _spend(store: EventStore, table: str, column: str, since: dt.datetime) -> float:
    frame = store.read(table)
    if frame.is_empty() or column not in frame.columns:
        return 0.0
    total = frame.filter(pl.col("ts") >= since)[column].fill_null(0.0).sum()
    return float(total or 0.0)


def alerts_due(store: EventStore, daily: float, monthly: float, shares: list[float],
               said: set[str], now: dt.datetime | None = None) -> list[Alert]:
    """The alerts crossed now and not yet said (``said``: their keys)."""
    now = now or dt.datetime.now(dt.UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    due: list[Alert] = []
    for period, start, label, budget in (("day", day, day.date().isoformat(), daily),
                                         ("month", month, month.strftime("%Y-%m"), monthly)):
        if budget <= 0:
            continue
        spent = _spend(store, "api_calls", "cost_usd", start)
        compute = _spend(store, "stage_metrics", "compute_cost_usd", start)
        for share in sorted(shares):
            alert = Alert(period, label, share, spent, budget, compute)
            if spent >= share * budget and alert.key not in said:
                due.append(alert)
    return due


@sensor(name="budget_alerts", minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.RUNNING,
        description="Alerts once per UTC day / month and threshold (CPW_BUDGET_ALERTS, 80 % "
        "and 100 %) when outside-call spend crosses CPW_DAILY_BUDGET_USD or "
        "CPW_MONTHLY_BUDGET_USD: a budget_alerts event, an observation on events/api_calls "
        "and this tick's message.")
def budget_alerts_sensor(context: SensorEvaluationContext, store: EventStoreResource,
                         llm: LlmResource) -> SensorResult:
    said = set(json.loads(context.cursor)) if context.cursor else set()
    due = alerts_due(store.events, llm.daily_budget_usd, llm.monthly_budget_usd,
                     list(llm.budget_alerts), said)
    if not due:
        return SensorResult(skip_reason="spend within every budget alert threshold",
                            cursor=context.cursor)
    store.events.append("budget_alerts", [
        {"period": a.period, "period_start": a.start, "threshold": a.threshold,
         "spent_usd": round(a.spent, 6), "budget_usd": a.budget,
         "compute_usd": round(a.compute, 6), "message": a.message} for a in due],
        run_id="", title="", asset="budget_alerts")
    for alert in due:
        context.log.warning(f"budget alert: {alert.message}")
    # Keep only this month's keys: older periods cannot be crossed again.
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    kept = sorted(k for k in said | {a.key for a in due} if k.split(":")[1].startswith(month))
    observations = [AssetObservation(
        asset_key=AssetKey(["events", "api_calls"]),
        description=f"budget alert: {a.message}",
        metadata={"alert": a.message, "period": a.period, "period_start": a.start,
                  "threshold": a.threshold, "spent_usd": round(a.spent, 4),
                  "budget_usd": a.budget, "compute_usd": round(a.compute, 4)})
        for a in due]
    return SensorResult(asset_events=observations, cursor=json.dumps(kept),
                        skip_reason="; ".join(f"ALERT {a.message}" for a in due))
