"""What ``edgeseg bench`` reports: rows, the machine they were measured on, a table and a chart.

A latency means little without the machine, its load and the library versions, so each report
carries them. ``bench.json`` and ``bench.png`` are written through a temporary file and a rename,
so a reader (``benchmarks/performance.py``) never sees half a file.
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from edgeseg import __version__
from edgeseg.files import atomic_write_bytes

JSON_NAME = "bench.json"
CHART_NAME = "bench.png"


@dataclass
class BenchRow:
    """One backend x precision x size: timings in ms when measured, else the reason it was not."""

    backend: str
    precision: str
    input_hw: tuple[int, int]
    status: str = "ok"  # "ok" or "skipped"
    reason: str = ""
    device: str = ""
    p50_ms: float | None = None
    p95_ms: float | None = None
    mean_ms: float | None = None
    fps: float | None = None
    miou: float | None = None  # with --data: mean IoU on its split through this combination

    @property
    def size(self) -> str:
        return f"{self.input_hw[0]}x{self.input_hw[1]}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "input_hw": list(self.input_hw), "size": self.size}


@dataclass
class BenchReport:
    """Everything ``bench.json`` holds: what ran, where, when, and one row per combination."""

    model: str
    card: dict[str, Any]
    runs: int
    warmup: int
    machine: dict[str, Any]
    date: str
    command: str = ""
    rows: list[BenchRow] = field(default_factory=list)
    data: str | None = None  # the dataset the mIoU column was measured on

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows"] = [row.to_dict() for row in self.rows]
        return data


# --- machine, table, chart -------------------------------------------------------------------


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str | None:
    """The GPU's name if a CUDA device is visible to torch (when already loaded) or cuda-python."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return str(torch.cuda.get_device_name(0))
    try:
        from edgeseg.backends.cuda import load_cuda

        return load_cuda().device_identity()[0]
    except Exception:  # no binding, no driver, no device: all mean "no GPU to report"
        return None


def machine_info(threads: int | None) -> dict[str, Any]:
    """Where the figures were taken; a latency means little without it."""
    torch = sys.modules.get("torch")
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "edgeseg": __version__,
        "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
        "torch": _version("torch"),
        "tensorrt": _version("tensorrt"),
        "gpu": gpu_name(),
    }


def table_lines(report: BenchReport) -> list[tuple[str, ...]]:
    """(backend, precision, size, figures...) per line: one per measured row, and one per
    backend for rows skipped for one reason (TensorRT absent says so once, not per row)."""
    accuracy = any(row.miou is not None for row in report.rows)
    lines: list[tuple[str, ...]] = []
    grouped: dict[tuple[str, str], list[BenchRow]] = {}
    for row in report.rows:
        if row.status != "ok":
            grouped.setdefault((row.backend, row.reason), []).append(row)
    shown: set[tuple[str, str]] = set()
    for row in report.rows:
        if row.status == "ok":
            figures = [f"{row.p50_ms:.2f}", f"{row.p95_ms:.2f}", f"{row.fps:.1f}"]
            if accuracy:
                figures.append("-" if row.miou is None else f"{row.miou:.4f}")
            lines.append((row.backend, row.precision, row.size, *figures, row.device))
            continue
        key = (row.backend, row.reason)
        if key in shown:
            continue
        shown.add(key)
        same = grouped[key]
        precisions = ",".join(dict.fromkeys(r.precision for r in same))
        sizes = ",".join(dict.fromkeys(r.size for r in same))
        dashes = ["-"] * (4 if accuracy else 3)
        lines.append((row.backend, precisions, sizes, *dashes, f"skipped: {row.reason}"))
    return lines


def format_table(report: BenchReport) -> str:
    """The rows as an aligned text table (what the CLI prints)."""
    header: tuple[str, ...] = ("backend", "precision", "size", "p50 ms", "p95 ms", "frames/s")
    if any(row.miou is not None for row in report.rows):
        header += ("mIoU",)
    header += ("device",)
    lines = table_lines(report)
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header) - 1)]
    right = set(range(3, len(header) - 1))

    def render(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells[:-1])
        ]
        return "  ".join([*parts, cells[-1]])

    return "\n".join([render(header), *(render(line) for line in lines)])


def chart_png(report: BenchReport) -> bytes:
    """A bar chart: p50 bars with p95 whiskers, one group per input size, one colour per
    backend x precision. matplotlib's object API (no pyplot), so no global backend is set."""
    from matplotlib.figure import Figure

    measured = [row for row in report.rows if row.status == "ok"]
    sizes = list(dict.fromkeys(row.size for row in report.rows))
    series = list(dict.fromkeys((row.backend, row.precision) for row in measured))
    figure = Figure(figsize=(max(6.0, 1.2 + 0.5 * len(series) * len(sizes)), 4.2))
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(series))
    for index, (backend, precision) in enumerate(series):
        rows = {r.size: r for r in measured if (r.backend, r.precision) == (backend, precision)}
        xs = [i + (index - (len(series) - 1) / 2) * width for i, s in enumerate(sizes) if s in rows]
        p50 = [rows[s].p50_ms for s in sizes if s in rows]
        p95 = [rows[s].p95_ms for s in sizes if s in rows]
        whiskers = [[0.0] * len(p50), [hi - lo for lo, hi in zip(p50, p95, strict=True)]]
        axes.bar(xs, p50, width, yerr=whiskers, capsize=3, label=f"{backend} {precision}")
    axes.set_xticks(range(len(sizes)), sizes)
    axes.set_xlabel("input size (H x W)")
    axes.set_ylabel("latency, ms (bar p50, whisker p95)")
    machine = report.machine
    where = machine.get("gpu") or f"{machine.get('cpu')}, {machine.get('cores')} cores"
    axes.set_title(f"edgeseg bench: {Path(report.model).name} on {where}", fontsize=9)
    if series:
        axes.legend(fontsize=8)
    else:
        axes.text(
            0.5, 0.5, "nothing measured (see bench.json)", ha="center", transform=axes.transAxes
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def write_report(report: BenchReport, out_dir: str | Path) -> list[Path]:
    """Write ``bench.json`` and, with matplotlib installed, ``bench.png`` (each atomically).

    Returns the paths written; a missing matplotlib leaves the chart out rather than losing a
    finished measurement.
    """
    out = Path(out_dir)
    written = [out / JSON_NAME]
    atomic_write_bytes(written[0], (json.dumps(report.to_dict(), indent=1) + "\n").encode())
    try:
        png = chart_png(report)
    except ImportError:
        return written
    atomic_write_bytes(out / CHART_NAME, png)
    return [*written, out / CHART_NAME]
