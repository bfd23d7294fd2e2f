"""The cost report: dollars per title and per day, outside calls beside compute.

From ``api_calls`` (LLM and TMDB calls at the pricing file's token prices; enhancement lines
served from the reply cache as ``outcome = 'cache_hit'``) and ``stage_metrics``
(``compute_cost_usd``: CPU and GPU time at its ``[compute]`` prices). Charts: dollars per
title (API and compute stacked) and dollars per day against the daily budget. Recommendations
come from rules on the same rows (:func:`recommend`), each with its figure.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from cpw_resources.reports.page import Recommendation, Report, chart, write_page
from cpw_resources.store.events import EventStore

#: Titles on the per-title chart (the most expensive).
TOP_TITLES = 15


def usd(value: float) -> str:
    """Dollars as a person reads them: cents above a cent, six decimals below."""
    return f"${value:.2f}" if abs(value) >= 0.01 or value == 0 else f"${value:.6f}"


def _per_title(api: pl.DataFrame, stages: pl.DataFrame) -> pl.DataFrame:
    a = (api.filter(pl.col("title") != "").group_by("title")
         .agg(pl.col("cost_usd").fill_null(0.0).sum().alias("api"))
         if api.height else pl.DataFrame(schema={"title": pl.String, "api": pl.Float64}))
    c = (stages.filter(pl.col("title") != "").group_by("title")
         .agg(pl.col("compute_cost_usd").fill_null(0.0).sum().alias("compute"))
         if stages.height else pl.DataFrame(schema={"title": pl.String, "compute": pl.Float64}))
    both = a.join(c, on="title", how="full", coalesce=True).fill_null(0.0)
    return (both.with_columns((pl.col("api") + pl.col("compute")).alias("total"))
            .sort("total", descending=True))


def _per_day(api: pl.DataFrame, stages: pl.DataFrame) -> pl.DataFrame:
    def daily(frame: pl.DataFrame, column: str, name: str) -> pl.DataFrame:
        if frame.is_empty():
            return pl.DataFrame(schema={"day": pl.Date, name: pl.Float64})
        return (frame.group_by(pl.col("ts").dt.date().alias("day"))
                .agg(pl.col(column).fill_null(0.0).sum().alias(name)))

    both = daily(api, "cost_usd", "api").join(daily(stages, "compute_cost_usd", "compute"),
                                              on="day", how="full", coalesce=True)
    return both.fill_null(0.0).sort("day")


def recommend(api: pl.DataFrame, per_title: pl.DataFrame, per_day: pl.DataFrame,
              daily_budget: float, title_budget: float,
              degradations: pl.DataFrame) -> list[Recommendation]:
    out: list[Recommendation] = []
    api_total = float(per_title["api"].sum()) if per_title.height else 0.0
    compute_total = float(per_title["compute"].sum()) if per_title.height else 0.0
    enhance = api.filter(pl.col("asset") == "enhanced_translation") if api.height else api
    if enhance.height:
        spent = float(enhance["cost_usd"].fill_null(0.0).sum())
        sent = int(enhance.filter(pl.col("outcome") == "ok")["segments"].fill_null(0).sum())
        cached = int(enhance.filter(pl.col("outcome") == "cache_hit")["segments"]
                     .fill_null(0).sum())
        hit_rate = cached / (sent + cached) if sent + cached else 0.0
        if api_total and spent / api_total >= 0.5 and hit_rate < 0.2:
            out.append(Recommendation(
                "enhancement_cache", "enhancement is most of the API spend and few lines come "
                "from the reply cache: enhance only the lines selection picks "
                "(CPW_ENHANCE_ALL=false), keep CPW_HOME's cache between runs, or choose a "
                "cheaper model for CPW_ENHANCE_PROVIDER",
                f"enhancement {usd(spent)} of {usd(api_total)}; cache hit rate {hit_rate:.0%} "
                f"({cached} of {sent + cached} lines)"))
    if per_day.height and daily_budget > 0:
        today = dt.datetime.now(dt.UTC).date()
        now = per_day.filter(pl.col("day") == today)
        spent_today = float(now["api"][0]) if now.height else 0.0
        if spent_today >= 0.8 * daily_budget:
            out.append(Recommendation(
                "daily_budget", "today's outside calls are near the daily budget; past it "
                "enhancement keeps the MT text: raise CPW_DAILY_BUDGET_USD or enhance fewer "
                "lines", f"${spent_today:.2f} of ${daily_budget:.2f} today"))
    if degradations.height:
        stopped = degradations.filter(pl.col("kind") == "enhance_budget")
        if stopped.height:
            out.append(Recommendation(
                "title_budget", "enhancement stopped at a budget on some titles (their rest "
                "kept the MT): raise CPW_TITLE_BUDGET_USD if those lines matter",
                f"{stopped['title'].n_unique()} titles, title budget ${title_budget:.2f}"))
    if compute_total and compute_total > api_total:
        out.append(Recommendation(
            "compute", "compute is most of the spend: the optimizer's cheaper configs on clean "
            "audio (CPW_OPTIMIZER=on) cut transcript time; a GPU shortens it further",
            f"compute {usd(compute_total)} vs outside calls {usd(api_total)}"))
    return out


def build(store: EventStore, folder: Path, daily_budget: float,
          title_budget: float) -> tuple[Path, Report]:
    """Write ``costs.html`` and its PNG charts into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    api = store.read("api_calls")
    stages = store.read("stage_metrics")
    per_title = _per_title(api, stages)
    per_day = _per_day(api, stages)
    api_total = float(per_title["api"].sum()) if per_title.height else 0.0
    compute_total = float(per_title["compute"].sum()) if per_title.height else 0.0
    calls = api.filter(pl.col("outcome") == "ok").height if api.height else 0
    report = Report("CP-WhisperX costs", [
        ("titles", str(per_title.height)),
        ("outside calls", f"{calls} · {usd(api_total)}"),
        ("compute", usd(compute_total)),
        ("total", usd(api_total + compute_total)),
        ("per title (mean)", usd((api_total + compute_total) / per_title.height)
         if per_title.height else "-"),
    ])
    report.charts.append(chart(folder, "cost_per_title", "Dollars per title: outside calls and "
                               "compute (the most expensive titles)",
                               lambda fig: _per_title_chart(fig, per_title)))
    report.charts.append(chart(folder, "cost_per_day", "Dollars per day against the daily "
                               "budget (the budget applies to outside calls)",
                               lambda fig: _per_day_chart(fig, per_day, daily_budget)))
    report.recommendations = recommend(api, per_title, per_day, daily_budget, title_budget,
                                       store.read("degradations"))
    by_model = (api.filter(pl.col("outcome") == "ok").group_by("service", "model")
                .agg(pl.len().alias("calls"), pl.col("cost_usd").fill_null(0.0).sum())
                .sort("cost_usd", descending=True) if api.height else None)
    if by_model is not None and by_model.height:
        report.tables.append(("By service and model", ["service", "model", "calls", "USD"], [
            (s, m or "-", n, usd(c)) for s, m, n, c in by_model.iter_rows()]))
    report.tables.append(("By title", ["title", "outside calls USD", "compute USD", "total"], [
        (t, usd(a), usd(c), usd(x)) for t, a, c, x in per_title.head(50).iter_rows()]))
    return write_page(report, folder / "costs.html"), report


def _per_title_chart(fig, per_title: pl.DataFrame) -> None:
    from cpw_resources.reports.performance import _empty

    ax = fig.add_subplot()
    top = per_title.head(TOP_TITLES).reverse()
    if top.is_empty():
        _empty(ax, "no title has run yet")
        return
    names = [t[:28] for t in top["title"].to_list()]
    ax.barh(names, top["compute"].to_list(), color="#60a5fa", label="compute")
    ax.barh(names, top["api"].to_list(), left=top["compute"].to_list(), color="#f97316",
            label="outside calls")
    ax.set_xlabel("US dollars")
    ax.legend(fontsize=8)


def _per_day_chart(fig, per_day: pl.DataFrame, daily_budget: float) -> None:
    from cpw_resources.reports.performance import _empty

    ax = fig.add_subplot()
    if per_day.is_empty():
        _empty(ax, "nothing spent yet")
        return
    days = [d.isoformat() for d in per_day["day"].to_list()]  # one labelled bar per day
    ax.bar(days, per_day["compute"].to_list(), color="#60a5fa", label="compute")
    ax.bar(days, per_day["api"].to_list(), bottom=per_day["compute"].to_list(),
           color="#f97316", label="outside calls")
    if daily_budget > 0 and float(per_day["api"].max() or 0) >= 0.05 * daily_budget:
        ax.axhline(daily_budget, color="#dc2626", linestyle="--", label="daily budget")
    ax.set_ylabel("US dollars")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
