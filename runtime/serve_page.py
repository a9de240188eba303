"""The page ``/`` of :mod:`edgeseg.runtime.serve`: the live overlay and what the run reports.

Plain HTML and CSS and a few lines of JavaScript that poll ``/stats`` once a second; no
framework, no file from elsewhere, so it works on a vehicle's network without the internet.
URLs are relative and carry the page's own query (its ``?token=``), so the page works behind a
proxy and with a token. Text from the model card is escaped; the card's JSON is embedded with
``<`` escaped so that a class name cannot close the script element.
"""

from __future__ import annotations

import html
import json
from typing import Any

from edgeseg.card import ModelCard

_STYLE = """
body{margin:0;font:14px system-ui,sans-serif;background:#111;color:#eee}
header{padding:8px 14px;background:#222;display:flex;gap:16px;align-items:baseline}
h1{font-size:16px;margin:0}#status{color:#9c9}
main{display:flex;flex-wrap:wrap;align-items:flex-start;gap:14px;padding:14px}
#view{max-width:100%;height:auto;background:#000;min-width:320px;min-height:240px}
section{min-width:260px;flex:1}table{border-collapse:collapse;width:100%}
td{padding:2px 6px;border-bottom:1px solid #333}
td.v{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:flex;align-items:center;gap:6px;margin:3px 0}.sw{width:12px;height:12px;flex:none}
.name{width:96px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.track{flex:1;background:#333;height:12px}.fill{height:12px}.pct{width:48px;text-align:right}
"""


def model_name(extra: dict[str, Any]) -> str:
    """The model file's name (no folders) a page's title shows; ``live`` when none is known."""
    return str(extra.get("model", "live")).replace("\\", "/").rsplit("/", 1)[-1]


def page_head(title: str) -> str:
    """The start of a served page up to its ``<main>``: the one-frame and multi-stream pages
    share head, style and header (``title`` already escaped)."""
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{title}</h1><span id=status>connecting</span></header><main>"
    )


_SCRIPT = """
const q = location.search, card = JSON.parse(document.getElementById('card').textContent);
document.getElementById('view').src = 'stream.mjpg' + q;
const bars = document.getElementById('bars');
card.classes.forEach((name, i) => {
  const [r, g, b] = card.palette[i] || [128, 128, 128], c = `rgb(${r},${g},${b})`;
  const row = document.createElement('div'); row.className = 'bar';
  row.innerHTML = `<span class="sw" style="background:${c}"></span><span class="name"></span>` +
    `<span class="track"><span class="fill" style="background:${c};display:block;width:0"></span>` +
    `</span><span class="pct">0%</span>`;
  row.querySelector('.name').textContent = name; bars.appendChild(row);
});
const put = (id, text) => { document.getElementById(id).textContent = text; };
async function poll() {
  try {
    const s = await (await fetch('stats' + q, {cache: 'no-store'})).json();
    const to = s.capture_to_output_ms || {p50: 0, p95: 0};
    put('fps', (s.fps ?? 0).toFixed(1));
    put('c2o', `${to.p50.toFixed(0)} / ${to.p95.toFixed(0)} ms`);
    put('lat', `${(s.latency_p50_ms ?? 0).toFixed(0)} / ${(s.latency_p95_ms ?? 0).toFixed(0)} ms`);
    put('dropped', s.dropped ?? 0); put('frames', s.frames_done ?? 0);
    put('policy', s.policy ?? ''); put('status', 'live');
    const shares = s.class_share || {};
    card.classes.forEach((name, i) => {
      const share = shares[name] || 0, row = bars.children[i];
      row.querySelector('.fill').style.width = (100 * share).toFixed(1) + '%';
      row.querySelector('.pct').textContent = (100 * share).toFixed(1) + '%';
    });
  } catch (e) { put('status', 'not reachable: the run may have ended'); }
  setTimeout(poll, 1000);
}
poll();
"""


def _card_facts(card: ModelCard | None, extra: dict[str, Any]) -> list[tuple[str, str]]:
    facts = [("model", str(extra.get("model", "")))]
    if card is not None:
        facts += [
            ("architecture", card.architecture),
            ("classes", f"{card.num_classes}: {', '.join(card.class_names)}"),
            ("input", f"{card.input_hw[0]}x{card.input_hw[1]}"),
            ("precision", card.precision),
        ]
    facts.append(("backend", str(extra.get("backend", ""))))
    return [(k, v) for k, v in facts if v]


def render_page(card: ModelCard | None, extra: dict[str, Any]) -> str:
    """The whole page as one HTML string."""
    names = list(card.class_names) if card else []
    palette = [list(c) for c in card.palette] if card else []
    embedded = json.dumps({"classes": names, "palette": palette}).replace("<", "\\u003c")
    facts = "".join(
        f"<tr><td>{html.escape(k)}</td><td class=v>{html.escape(v)}</td></tr>"
        for k, v in _card_facts(card, extra)
    )
    rows = "".join(
        f'<tr><td>{label}</td><td class=v id="{key}">-</td></tr>'
        for key, label in (
            ("fps", "FPS"),
            ("c2o", "capture to output p50 / p95"),
            ("lat", "latency p50 / p95"),
            ("dropped", "dropped frames"),
            ("frames", "frames done"),
            ("policy", "policy"),
        )
    )
    title = html.escape(f"edgeseg - {model_name(extra)}")
    return (
        page_head(title) + f'<img id=view alt="live overlay (/stream.mjpg)" src="">'
        f"<section><h2>Now</h2><table>{rows}</table><h2>Class shares</h2><div id=bars></div>"
        f"<h2>Model</h2><table>{facts}</table></section></main>"
        f'<script id=card type="application/json">{embedded}</script>'
        f"<script>{_SCRIPT}</script></body></html>"
    )
