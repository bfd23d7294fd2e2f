"""The budget alert sensor: spend crossing 80 % and 100 % of the daily and monthly budgets is
said once per period and threshold, recorded, and shown on the api_calls asset."""

from __future__ import annotations

import datetime as dt
import json

from dagster import DagsterInstance, build_sensor_context

from cpw_resources.orchestration.resources import resources_for
from cpw_resources.settings import Settings
from cpw_resources.store.events import EventStore
from cpw_sensors.budget import alerts_due, budget_alerts_sensor


def _spend(store: EventStore, dollars: float, title: str = "film") -> None:
    store.append("api_calls", [{"service": "openai", "operation": "chat", "outcome": "ok",
                                "model": "gpt-4o-mini", "cost_usd": dollars}],
                 run_id="r", title=title, asset="enhanced_translation")


def _evaluate(home, cursor: str | None, daily: float = 10.0, monthly: float = 100.0):
    every = resources_for(Settings(home=home, daily_budget_usd=daily,
                                   monthly_budget_usd=monthly, budget_alerts=[0.8, 1.0]))
    resources = {"store": every["store"], "llm": every["llm"]}
    with (DagsterInstance.ephemeral() as instance,
          build_sensor_context(cursor=cursor, resources=resources,
                               instance=instance) as context):
        return budget_alerts_sensor(context)


def test_each_threshold_is_said_once_per_period(tmp_path):
    home = tmp_path / "cpw"
    store = EventStore(home / "events", home / "cpw.duckdb")
    _spend(store, 5.0)
    quiet = _evaluate(home, None)
    assert not quiet.asset_events and "within" in quiet.skip_reason.skip_message

    _spend(store, 3.5)  # $8.50 today: 85 % of the day's $10
    first = _evaluate(home, quiet.cursor)
    assert "ALERT day" in first.skip_reason.skip_message and "85%" in first.skip_reason.skip_message
    assert [e.metadata["threshold"].value for e in first.asset_events] == [0.8]
    assert first.asset_events[0].asset_key.path == ["events", "api_calls"]
    again = _evaluate(home, first.cursor)
    assert not again.asset_events  # said once

    _spend(store, 2.0)  # $10.50: past the whole day's budget
    second = _evaluate(home, again.cursor)
    assert [(e.metadata["period"].value, e.metadata["threshold"].value)
            for e in second.asset_events] == [("day", 1.0)]
    rows = store.read("budget_alerts")
    assert rows["threshold"].to_list() == [0.8, 1.0]
    assert rows["spent_usd"].to_list() == [8.5, 10.5]
    assert sorted(json.loads(second.cursor)) == sorted(
        [f"day:{dt.datetime.now(dt.UTC).date().isoformat()}:0.8",
         f"day:{dt.datetime.now(dt.UTC).date().isoformat()}:1"])


def test_the_month_counts_earlier_days_and_a_new_day_starts_again(tmp_path):
    home = tmp_path / "cpw"
    store = EventStore(home / "events", home / "cpw.duckdb")
    _spend(store, 9.0)
    now = dt.datetime.now(dt.UTC)
    monthly = alerts_due(store, daily=100.0, monthly=10.0, shares=[0.8, 1.0], said=set(),
                         now=now)
    assert [(a.period, a.threshold) for a in monthly] == [("month", 0.8)]
    # The same spend seen from tomorrow is not today's (unless tomorrow is a new month too).
    tomorrow = now + dt.timedelta(days=1)
    later = alerts_due(store, daily=10.0, monthly=1000.0, shares=[0.8], said=set(),
                       now=tomorrow)
    assert later == []
    assert alerts_due(store, daily=0.0, monthly=0.0, shares=[0.8], said=set()) == []
