"""Charts and the self-contained HTML page a report is written as.

Charts are drawn with matplotlib (no pyplot state; the Agg backend) twice from one figure:
inline SVG for the page (text drawn as paths, so no font or script is fetched: the page opens
offline) and a PNG file beside it. Opened as ``NAME.html#selftest``, the page checks that
every chart drew (an SVG with a non-empty box and marks in it) and writes the outcome into
``<pre id="selftest">``, which ``tests/integration/test_reports.py`` reads through headless
Chromium.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cpw_resources.atomic import write_with
from cpw_resources.errors import ConfigError

#: Stage colours, in the graph's order, so every chart shows a stage the same way.
STAGE_COLOURS = {
    "media": "#94a3b8", "audio": "#60a5fa", "glossary": "#a78bfa", "transcript": "#f97316",
    "translation": "#22c55e", "enhanced_translation": "#eab308", "subtitles": "#ec4899",
}


def figure(width: float = 9.0, height: float = 3.6):
    """A matplotlib Figure (no global pyplot state, safe in a threaded daemon)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError as error:  # the `reports` extra
        raise ConfigError("the reports need matplotlib: pip install 'cp-whisperx[reports]' "
                          "(make setup installs it)") from error
    return Figure(figsize=(width, height), layout="constrained")


@dataclass
class Chart:
    """One chart of a report: its name, a caption, the SVG for the page, the PNG's path."""

    name: str
    caption: str
    svg: str
    png: Path


@dataclass
class Recommendation:
    """Advice from a rule on the event data, with the figure that triggered it."""

    rule: str
    advice: str
    figure: str


@dataclass
class Report:
    title: str
    summary: list[tuple[str, str]]
    charts: list[Chart] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[Sequence[object]]]] = field(default_factory=list)


def chart(folder: Path, name: str, caption: str, draw: Callable[[object], None],
          width: float = 9.0, height: float = 3.6) -> Chart:
    """Draw one chart with ``draw(fig)``; write NAME.png in ``folder``; keep its SVG."""
    fig = figure(width, height)
    draw(fig)
    png = folder / f"{name}.png"
    write_with(png, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and doctype: inline in HTML
    # One page holds several charts: their element ids (clip paths, glyphs) must not clash.
    svg = re.sub(r'(id="|url\(#|href="#)([^")]+)', rf"\g<1>{name}-\g<2>", svg)
    return Chart(name, caption, svg, png)


_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1000px;
       color: #111827; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.summary { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.summary div { background: #f3f4f6; border-radius: 6px; padding: 8px 12px; }
.summary b { display: block; font-size: 18px; }
figure { margin: 16px 0; } figure svg { width: 100%; height: auto; }
figcaption { color: #4b5563; }
li { margin: 6px 0; } .figure { color: #6b7280; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border-bottom: 1px solid #e5e7eb; padding: 3px 10px; text-align: left; }
#selftest { display: none; }
"""

_SELFTEST = """
"use strict";
if (location.hash === "#selftest") {
  const out = {charts: 0, drawn: [], errors: []};
  try {
    for (const fig of document.querySelectorAll("figure[data-chart]")) {
      out.charts += 1;
      const svg = fig.querySelector("svg");
      const box = svg ? svg.getBBox() : {width: 0, height: 0};
      const marks = svg ? svg.querySelectorAll("path, use, rect, polyline").length : 0;
      if (box.width > 0 && box.height > 0 && marks > 10) out.drawn.push(fig.dataset.chart);
    }
    out.images = Array.from(document.images).filter(i => !i.src.startsWith("data:")).length;
  } catch (error) {
    out.errors.push(String(error && error.message || error));
  }
  document.getElementById("selftest").textContent = JSON.stringify(out);
}
"""


def write_page(report: Report, path: Path) -> Path:
    """``report`` as one HTML file: summary, recommendations, charts, tables."""
    e = html.escape
    summary = "".join(f"<div>{e(k)}<b>{e(v)}</b></div>" for k, v in report.summary)
    advice = "".join(
        f'<li data-rule="{e(r.rule)}">{e(r.advice)} <span class="figure">({e(r.figure)})'
        f"</span></li>" for r in report.recommendations) or "<li>nothing to change</li>"
    charts = "".join(
        f'<figure data-chart="{e(c.name)}">{c.svg}<figcaption>{e(c.caption)} '
        f"({e(c.png.name)} beside this page)</figcaption></figure>" for c in report.charts)
    tables = "".join(
        f"<h2>{e(name)}</h2><table><tr>{''.join(f'<th>{e(h)}</th>' for h in head)}</tr>"
        + "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>"
                  for row in rows) + "</table>"
        for name, head, rows in report.tables)
    made = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{e(report.title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{e(report.title)}</h1><p>made {made} from the event store</p>"
            f'<section class="summary">{summary}</section>'
            f"<h2>Recommendations</h2><ul id=\"recommendations\">{advice}</ul>"
            f"{charts}{tables}<pre id=\"selftest\"></pre><script>{_SELFTEST}</script>"
            f"</body></html>")
    return write_with(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
