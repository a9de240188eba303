"""``--serve`` of a multi-stream run: one page with the mosaic of every stream and their stats.

:class:`StreamsServeSink` is the single-source :class:`~edgeseg.runtime.serve.ServeSink` (same
server, token, viewer limit, MJPEG stream that never makes the pipeline wait) fed with the
mosaic; its ``/stats`` answers the multi-stream record
(:func:`~edgeseg.runtime.stream_stats.streams_record`: every stream's stats and the batch's), and
its page shows one row per stream (FPS, capture-to-output p50/p95, dropped frames, frames done,
its three largest classes) under the mosaic, and the batch line.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from edgeseg.runtime.serve import ServeSink
from edgeseg.runtime.serve_page import _card_facts, model_name, page_head
from edgeseg.runtime.stream_stats import StreamsSnapshot, streams_record

_SCRIPT = """
const q = location.search;
document.getElementById('view').src = 'stream.mjpg' + q;
const put = (id, text) => { document.getElementById(id).textContent = text; };
const cell = (text) => { const td = document.createElement('td'); td.className = 'v';
  td.textContent = text; return td; };
async function poll() {
  try {
    const s = await (await fetch('stats' + q, {cache: 'no-store'})).json();
    const body = document.getElementById('streams'); body.replaceChildren();
    for (const [name, r] of Object.entries(s.streams || {})) {
      const to = r.capture_to_output_ms || {p50: 0, p95: 0}, tr = document.createElement('tr');
      const top = Object.entries(r.class_share || {}).sort((a, b) => b[1] - a[1]).slice(0, 3)
        .map(([k, v]) => `${k} ${(100 * v).toFixed(0)}%`).join(', ');
      const th = document.createElement('td'); th.textContent = name; tr.appendChild(th);
      [(r.fps ?? 0).toFixed(1), `${to.p50.toFixed(0)} / ${to.p95.toFixed(0)} ms`, r.dropped ?? 0,
       r.frames_done ?? 0, top, r.stopped_by || 'running'].forEach(t => tr.appendChild(cell(t)));
      body.appendChild(tr);
    }
    const b = s.batch || {}, ms = b.infer_ms_per_batch || {p50: 0, p95: 0};
    put('batch', `${(b.mean_batch ?? 0).toFixed(1)} frames per step (engine ` +
      `${b.engine_batch ?? '-'} per call), inference p50 ${ms.p50.toFixed(0)} ms, p95 ` +
      `${ms.p95.toFixed(0)} ms per batch; ${(s.aggregate_fps ?? 0).toFixed(1)} fps in all`);
    put('status', 'live');
  } catch (e) { put('status', 'not reachable: the run may have ended'); }
  setTimeout(poll, 1000);
}
poll();
"""

_HEADS = ("stream", "FPS", "capture to output p50 / p95", "dropped", "frames", "top classes", "")


def render_streams_page(card: Any, extra: dict[str, Any]) -> str:
    """The whole page as one HTML string: the mosaic, a row per stream, the batch, the model."""
    facts = "".join(
        f"<tr><td>{html.escape(k)}</td><td class=v>{html.escape(v)}</td></tr>"
        for k, v in _card_facts(card, extra)
    )
    heads = "".join(f"<th>{html.escape(h)}</th>" for h in _HEADS)
    title = html.escape(f"edgeseg - {model_name(extra)} - {extra.get('streams', '')} streams")
    return (
        page_head(title) + f'<img id=view alt="every stream, tiled (/stream.mjpg)" src="">'
        f"<section><h2>Streams</h2><table><thead><tr>{heads}</tr></thead>"
        f"<tbody id=streams></tbody></table><h2>Batch</h2><p id=batch>-</p>"
        f"<h2>Model</h2><table>{facts}</table></section></main>"
        f"<script>{_SCRIPT}</script></body></html>"
    )


class StreamsServeSink(ServeSink):
    """A ServeSink for the mosaic whose ``/stats`` and page cover every stream.

    ``snapshot``: the StreamsPipeline's ``snapshot`` (given with :meth:`attach`)."""

    _snapshot: Callable[..., StreamsSnapshot] | None = None

    def attach(self, snapshot: Callable[..., StreamsSnapshot]) -> None:
        self._snapshot = snapshot

    def page(self) -> str:
        return render_streams_page(self.card, self.extra)

    def stats_json(self) -> dict[str, Any]:
        if self._snapshot is None:
            return {**self.extra, "streams": {}, "final": False}
        return streams_record(self._snapshot(class_share=True), self.extra, final=False)
