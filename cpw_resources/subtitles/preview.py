"""``preview.html``: a page a person opens beside a title's subtitles to watch them play.

Self-contained and offline: the title's ``audio.wav`` (same folder) plays with the WebVTT
track (embedded in the page and handed to the player as a Blob URL, since browsers refuse a
``file://`` track from another file), over a waveform drawn from peaks embedded in the page,
with the cue list beside it: each cue's time and text, the style rules it breaks in red, the
cues an LLM post-edited marked. Clicking a cue or the waveform seeks there. No script, font or
style comes from the network.

Opened as ``preview.html#selftest`` it checks itself and writes the outcome into
``<pre id="selftest">``: that the track's cues loaded in order with the right texts, that the
audio plays (muted), and the cues the player shows, in order, seeking to each cue in turn;
what ``tests/integration/test_preview.py`` reads through
headless Chromium.
"""

from __future__ import annotations

import html
import json
from collections.abc import Collection, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from cpw_resources.atomic import write_with
from cpw_resources.records import Cue
from cpw_resources.speech.media import WavReader
from cpw_resources.subtitles.rules import SubtitleRules, cue_violations

#: Points of the waveform drawn (peaks of as many equal slices of the audio).
WAVEFORM_POINTS = 1200


#: How each rule a cue breaks is named on the page.
_SAID = {
    "line_too_long": "a line over {max_line_chars} characters",
    "too_many_lines": "more than {max_lines} lines",
    "cps_above_target": "over {target_cps:.0f} characters per second",
    "cps_above_max": "over {max_cps:.0f} characters per second",
    "too_short": "under {min_duration:.2f} s on screen",
    "too_long": "over {max_duration:.0f} s on screen",
    "overlap": "overlaps the cue before",
    "gap_too_small": "too close to the cue before",
}


def cue_problems(cues: Sequence[Cue], rules: SubtitleRules) -> list[list[str]]:
    """The style rules each cue breaks (:func:`rules.cue_violations`), said for a person."""
    values = asdict(rules)
    return [[_SAID[kind].format(**values) for kind in broken
             if not (kind == "cps_above_target" and "cps_above_max" in broken)]
            for broken in cue_violations(cues, rules)]


def wav_peaks(wav: WavReader, points: int = WAVEFORM_POINTS) -> list[float]:
    """Peak level (0–1) of ``points`` equal slices of a title's audio, read slice by slice (a
    film never fits in memory)."""
    if wav.frames == 0:
        return []
    points = min(points, wav.frames)
    edges = np.linspace(0, wav.frames, points + 1).astype(int)
    peaks = [float(np.abs(wav.read(lo, hi)).max()) if hi > lo else 0.0
             for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    top = max(peaks) or 1.0
    return [round(p / top, 3) for p in peaks]


def _time(t: float) -> str:
    minutes, seconds = divmod(max(t, 0.0), 60)
    return f"{int(minutes // 60)}:{int(minutes % 60):02d}:{seconds:06.3f}"


def render(*, title: str, language: str, audio_name: str, vtt: str, cues: Sequence[Cue],
           problems: Sequence[Sequence[str]], enhanced: Collection[int], peaks: Sequence[float],
           duration: float) -> str:
    """The page's HTML. ``enhanced``: ids of the segments an LLM post-edited."""
    rows = []
    for k, (cue, broken) in enumerate(zip(cues, problems, strict=True)):
        edited = any(i in enhanced for i in cue.segment_ids)
        classes = " ".join(c for c, on in (("broken", broken), ("enhanced", edited)) if on)
        badges = "".join(f'<span class="rule">{html.escape(b)}</span>' for b in broken)
        if edited:
            badges += '<span class="llm">post-edited</span>'
        text = "<br>".join(html.escape(line) for line in cue.lines)
        rows.append(f'<tr class="{classes}" data-start="{cue.start:.3f}" data-index="{k}">'
                    f'<td class="n">{k + 1}</td><td class="t">{_time(cue.start)}<br>'
                    f'{_time(cue.end)}</td><td class="x">{text}{badges}</td></tr>')
    data = {"vtt": vtt, "peaks": list(peaks), "duration": duration,
            "cues": [{"start": c.start, "end": c.end, "text": "\n".join(c.lines)}
                     for c in cues]}
    broken_count = sum(1 for b in problems if b)
    edited_count = sum(1 for c in cues if any(i in enhanced for i in c.segment_ids))
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return _PAGE.format(
        title=html.escape(title), language=html.escape(language),
        audio=html.escape(audio_name, quote=True), rows="\n".join(rows), cue_count=len(cues),
        broken=broken_count, edited=edited_count, payload=payload)


def write_preview(path: Path, **page: object) -> None:
    """Write the page (atomically) to ``path``; see :func:`render` for the fields."""
    text = render(**page)  # type: ignore[arg-type]
    write_with(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


_PAGE = """<!doctype html>
<html lang="{language}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — subtitles preview</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 0; color: #222; }}
header {{ padding: 12px 16px; background: #1f2937; color: #fff; }}
header h1 {{ font-size: 17px; margin: 0 0 4px; }}
header p {{ margin: 0; opacity: .8; }}
main {{ display: grid; grid-template-columns: minmax(320px, 1fr) minmax(320px, 1fr);
        gap: 16px; padding: 16px; }}
#player {{ position: sticky; top: 16px; align-self: start; }}
audio {{ width: 100%; }}
#wave {{ width: 100%; height: 90px; background: #f3f4f6; cursor: pointer; display: block; }}
#now {{ min-height: 3.2em; margin-top: 10px; padding: 8px; background: #111; color: #fff;
        text-align: center; white-space: pre-line; border-radius: 4px; }}
table {{ border-collapse: collapse; width: 100%; }}
td {{ border-bottom: 1px solid #e5e7eb; padding: 6px; vertical-align: top; }}
td.n {{ color: #6b7280; width: 2.5em; }}
td.t {{ font: 12px monospace; width: 8em; color: #374151; }}
tr {{ cursor: pointer; }}
tr.active {{ background: #fef3c7; }}
tr.broken td.x {{ border-left: 3px solid #dc2626; }}
tr.enhanced td.n {{ color: #2563eb; font-weight: 600; }}
.rule, .llm {{ display: inline-block; margin: 2px 4px 0 0; padding: 0 6px; font-size: 12px;
              border-radius: 8px; }}
.rule {{ background: #fee2e2; color: #991b1b; }}
.llm {{ background: #dbeafe; color: #1e40af; }}
#selftest {{ display: none; }}
</style></head>
<body>
<header><h1>{title}</h1>
<p>{cue_count} cues · {broken} break a style rule · {edited} post-edited by an LLM ·
language {language}</p></header>
<main>
<section id="player">
<audio id="audio" controls preload="auto" src="{audio}"></audio>
<canvas id="wave" width="1200" height="90"></canvas>
<div id="now"></div>
</section>
<section><table id="cues">
{rows}
</table></section>
</main>
<pre id="selftest"></pre>
<script id="data" type="application/json">{payload}</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("data").textContent);
const audio = document.getElementById("audio");
const track = document.createElement("track");
track.kind = "subtitles"; track.srclang = document.documentElement.lang;
track.label = "subtitles"; track.default = true;
track.src = URL.createObjectURL(new Blob([data.vtt], {{type: "text/vtt"}}));
audio.appendChild(track);
track.track.mode = "hidden";
const rows = Array.from(document.querySelectorAll("#cues tr"));
const now = document.getElementById("now");
const wave = document.getElementById("wave");

function draw(position) {{
  const g = wave.getContext("2d"), w = wave.width, h = wave.height, n = data.peaks.length;
  g.clearRect(0, 0, w, h);
  g.fillStyle = "#dbeafe";
  for (const c of data.cues) {{
    g.fillRect(c.start / data.duration * w, 0, (c.end - c.start) / data.duration * w, h);
  }}
  g.fillStyle = "#374151";
  for (let i = 0; i < n; i++) {{
    const v = data.peaks[i] * (h / 2 - 2);
    g.fillRect(i / n * w, h / 2 - v, Math.max(1, w / n), 2 * v);
  }}
  g.fillStyle = "#dc2626";
  g.fillRect(position / data.duration * w, 0, 2, h);
}}

function show() {{
  const active = Array.from(track.track.activeCues || []);
  now.textContent = active.map(c => c.text).join("\\n");
  const starts = active.map(c => c.startTime.toFixed(3));
  for (const r of rows) {{
    r.classList.toggle("active", starts.includes(Number(r.dataset.start).toFixed(3)));
  }}
}}

track.track.addEventListener("cuechange", show);
audio.addEventListener("timeupdate", () => draw(audio.currentTime));
for (const r of rows) {{
  r.addEventListener("click", () => {{ audio.currentTime = Number(r.dataset.start) + 0.01; }});
}}
wave.addEventListener("click", e => {{
  const box = wave.getBoundingClientRect();
  audio.currentTime = (e.clientX - box.left) / box.width * data.duration;
}});
draw(0);

async function selftest() {{
  const out = {{loaded: 0, expected: data.cues.length, shown: [], errors: []}};
  const report = () => {{ document.getElementById("selftest").textContent = JSON.stringify(out); }};
  try {{
    if (track.readyState !== 2) {{
      await new Promise((ok, bad) => {{
        track.addEventListener("load", ok); track.addEventListener("error", bad);
      }});
    }}
    const cues = Array.from(track.track.cues);
    out.loaded = cues.length;
    out.in_order = cues.every((c, i) => i === 0 || cues[i - 1].startTime <= c.startTime);
    for (const c of cues) {{
      const middle = (c.startTime + c.endTime) / 2;
      const active = Array.from(cues).filter(x => x.startTime <= middle && middle < x.endTime);
      out.shown.push(active.map(x => x.text).join(" | "));
    }}
    out.texts_match = out.shown.every((t, i) => t.split(" | ").includes(data.cues[i].text));
    // The audio plays (muted) ...
    audio.muted = true;
    await audio.play();
    await new Promise(done => {{
      const check = () => audio.currentTime > 0.2 ? done() : setTimeout(check, 50);
      check(); setTimeout(done, 3000);
    }});
    audio.pause();
    out.plays = audio.currentTime > 0;
    // ... and, seeking to the middle of each cue in turn, the player shows the cues in their
    // order. Chromium updates activeCues a moment after "seeked", so each step waits (up to a
    // second) until the player shows what is on screen at that time.
    out.played = [];
    const onScreen = t => cues.filter(c => c.startTime <= t && t < c.endTime);
    // Headless Chromium's virtual time can run ahead of its media pipeline on a busy machine,
    // so a step that still shows the wrong cues seeks again (a little later in the cue).
    for (const cue of data.cues) {{
      for (let attempt = 0; attempt < 5; attempt++) {{
        const t = cue.start + (cue.end - cue.start) * (0.5 + 0.05 * attempt);
        audio.currentTime = t;
        await new Promise(done => {{
          audio.addEventListener("seeked", done, {{once: true}}); setTimeout(done, 1000);
        }});
        const want = onScreen(audio.currentTime).map(c => c.text).join("\\n");
        let shown = "";
        for (let waited = 0; waited < 1000; waited += 20) {{
          shown = Array.from(track.track.activeCues || []).map(c => c.text).join("\\n");
          if (shown === want) break;
          await new Promise(done => setTimeout(done, 20));
        }}
        if (shown === want) break;
      }}
      for (const c of Array.from(track.track.activeCues || [])) {{
        if (!out.played.includes(c.text)) out.played.push(c.text);
      }}
    }}
  }} catch (error) {{
    out.errors.push(String(error && error.message || error));
  }}
  report();
}}
if (location.hash === "#selftest") selftest();
</script>
</body></html>
"""
