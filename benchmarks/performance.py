"""Refresh docs/performance.md: run every figure-producing benchmark, write one table.

    python benchmarks/performance.py                          # all of them (long: an idle machine)
    python benchmarks/performance.py --only bench,runtime_overlay
    python benchmarks/performance.py --quick --only runtime_overlay   # smoke run, tiny sizes

Each benchmark runs in its own process (``python benchmarks/NAME.py ... --json FILE``, and
``edgeseg bench --out DIR``), so a crash, a timeout or a missing script costs its rows only, and
memory figures stay the benchmark's own. Its JSON record is turned into rows of one markdown
table: figure, value, command, machine, date. The records behind the table are kept in
``docs/performance.json``; ``--only`` re-runs some benchmarks and keeps the other rows as they
were. ``--quick`` writes to ``out/performance/`` unless ``--doc`` says otherwise, so smoke figures
never replace reference ones. Raw records and logs: ``out/performance/raw/``.

A benchmark script may put a ``"figures": [{"figure": ..., "value": ...}]`` list in its record
to choose its rows itself (``int8_latency.py`` is read that way); otherwise its rows come from the
reader below. Each script is called with ``--json FILE``; in ``--quick`` mode with the small
arguments listed in :data:`BENCHMARKS` (``int8_latency.py``: ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeseg.apps.bench_report import cpu_model, gpu_name
from edgeseg.files import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
QUICK_DOC = ROOT / "out" / "performance" / "performance.md"
RAW = ROOT / "out" / "performance" / "raw"
DEFAULT_TIMEOUT_S = 3 * 3600

Rows = list[tuple[str, str]]


# --- readers: one benchmark's JSON record -> (figure, value) rows ------------------------------


def train_speed_rows(record: dict) -> Rows:
    setup = f"{record['size']}, batch {record['batch_size']}, {record['device']}"
    setup += ", AMP" if record.get("amp") else ""
    return [
        (f"training throughput, {label} ({setup})", f"{r['images_per_s']:.2f} images/s")
        for label, r in record["results"].items()
    ]


def export_parity_rows(record: dict) -> Rows:
    by_file: dict[str, list[dict]] = {}
    for result in record["results"]:
        by_file.setdefault(result["file"], []).append(result)
    rows = []
    for name, results in by_file.items():
        worst_mean = max(r["mean_abs_diff"] / max(r["max_logit"], 1e-12) for r in results)
        worst_agreement = min(r["argmax_agreement"] for r in results)
        passed = sum(bool(r["passed"]) for r in results)
        rows.append(
            (
                f"export parity, {name} against PyTorch, worst of {len(results)} model and BN "
                f"cases ({record['size']}, {record['samples']} frame"
                f"{'s' if record['samples'] != 1 else ''})",
                f"mean abs diff {worst_mean:.1e} of the largest logit, argmax agrees "
                f"{100 * worst_agreement:.4f}%, gate passed {passed}/{len(results)}",
            )
        )
    return rows


def runtime_pipeline_rows(record: dict) -> Rows:
    height, width = record["input_hw"]
    return [
        (
            f"pipeline against model alone, {Path(record['model']).name} ({record['output']}, "
            f"{height}x{width}, {record['backend']})",
            f"{record['median_pipeline_fps']:.2f} against {record['median_model_only_fps']:.2f} "
            f"fps, ratio {record['median_ratio']:.3f} (target 0.9 or more)",
        )
    ]


def runtime_overlay_rows(record: dict) -> Rows:
    threads = record["opencv_threads"]
    return [
        (
            f"overlay per {record['frame']} frame, {case} (OpenCV threads {threads})",
            f"median {r['median_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms",
        )
        for case, r in record["results"].items()
    ]


def runtime_memory_rows(record: dict) -> Rows:
    return [
        (
            f"resident memory growth after warm-up, {record['frames']} frames of the whole "
            f"pipeline ({record['model']})",
            f"{record['growth_after_warm_up_mib']:+.1f} MiB (frame 500: "
            f"{record['rss_mib_at_frame_500']} MiB, max {record['rss_mib_max']} MiB, "
            f"{record['fps']} fps)",
        )
    ]


def runtime_torch_cuda_rows(record: dict) -> Rows:
    if "skipped" in record:
        return [("PyTorch CUDA model-only latency", f"not measured: {record['skipped']}")]
    return [
        (
            f"PyTorch CUDA model-only latency, {record['model']}, {precision}",
            f"median {record[precision]['median_ms']:.2f} ms, p95 "
            f"{record[precision]['p95_ms']:.2f} ms, {record[precision]['fps']} fps",
        )
        for precision in ("fp32", "fp16")
    ]


def bench_rows(record: dict) -> Rows:
    """Measured rows one by one; skipped ones folded into one row per backend and reason."""
    model = Path(record["model"]).name
    rows: Rows = []
    skipped: dict[tuple[str, str], list[dict]] = {}
    for row in record["rows"]:
        if row["status"] != "ok":
            skipped.setdefault((row["backend"], row["reason"]), []).append(row)
            continue
        rows.append(
            (
                f"inference latency, {row['backend']} {row['precision']} {row['size']} ({model})",
                f"p50 {row['p50_ms']:.2f} ms, p95 {row['p95_ms']:.2f} ms, "
                f"{row['fps']:.1f} frames/s",
            )
        )
    for (backend, reason), group in skipped.items():
        precisions = "/".join(dict.fromkeys(r["precision"] for r in group))
        sizes = ", ".join(dict.fromkeys(r["size"] for r in group))
        rows.append((f"inference latency, {backend} {precisions} {sizes}", f"skipped: {reason}"))
    return rows


def generic_rows(record: dict) -> Rows:
    """A record's own ``figures`` list, else its top-level numbers and strings, one per row."""
    if isinstance(record.get("figures"), list):
        return [
            (str(f["figure"]), f"{f['value']} {f.get('unit', '')}".strip())
            for f in record["figures"]
        ]
    return [
        (key, str(value))
        for key, value in record.items()
        if isinstance(value, (int, float, str)) and key not in ("machine", "date")
    ]


# --- the benchmarks ------------------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark:
    """One figure-producing benchmark: how to run it (full and ``--quick``) and read it."""

    name: str
    quick: tuple[str, ...]  # arguments for --quick, after the script (or ``edgeseg bench``)
    rows: Callable[[dict], Rows]
    about: str

    @property
    def script(self) -> Path | None:
        """The script it runs; None for ``edgeseg bench``, which is a command."""
        return None if self.name == "bench" else ROOT / "benchmarks" / f"{self.name}.py"

    def shown_command(self, quick: bool) -> str:
        """The command as a reader would type it (without the record's path)."""
        args = list(self.quick if quick else ())
        head = ["edgeseg", "bench"] if self.script is None else ["python", self.relative()]
        return shlex.join([*head, *args])

    def relative(self) -> str:
        return str(self.script.relative_to(ROOT)) if self.script else "edgeseg bench"

    def argv(self, quick: bool, record: Path) -> list[str]:
        """What runs, and where its record lands: ``--json FILE`` or bench's ``--out DIR``."""
        args = list(self.quick if quick else ())
        if self.script is None:
            out = record.with_suffix("")
            return [sys.executable, "-m", "edgeseg", "bench", *args, "--out", str(out)]
        return [sys.executable, str(self.script), *args, "--json", str(record)]

    def record_path(self, record: Path) -> Path:
        return record.with_suffix("") / "bench.json" if self.script is None else record


BENCHMARKS = (
    Benchmark(
        "train_speed",
        ("--size", "64x96", "--steps", "1", "--warmup", "0", "--models", "segnet --width 0.25"),
        train_speed_rows,
        "forward, backward and SGD step on synthetic inputs, images per second (the model, "
        "not data loading)",
    ),
    Benchmark(
        "export_parity",
        ("--size", "64x96", "--samples", "1", "--no-fp16"),
        export_parity_rows,
        "ONNX Runtime on the exported files against PyTorch, random seeded weights; the worst "
        "case over segnet, segnet-basic and segnet width 0.25 with default and randomised "
        "BatchNorm statistics (docs/export.md has every case)",
    ),
    Benchmark(
        "runtime_pipeline",
        ("--rounds", "1", "--frames", "8", "--model-iterations", "3"),
        runtime_pipeline_rows,
        "edgeseg run's threaded pipeline on a video file (decode, preprocess, inference, "
        "overlay, MP4 encode) against Segmenter.infer alone, SegNet width 0.25",
    ),
    Benchmark(
        "runtime_overlay",
        ("--iterations", "20"),
        runtime_overlay_rows,
        "drawing the class overlay on a 1920x1080 frame (target under 3 ms on 2 cores)",
    ),
    Benchmark(
        "runtime_memory",
        ("--frames", "750"),
        runtime_memory_rows,
        "resident memory of a long pipeline run, which must stay flat",
    ),
    Benchmark(
        "runtime_torch_cuda",
        ("--iterations", "20"),
        runtime_torch_cuda_rows,
        "PyTorch CUDA latency of SegNet at 360x480, the reference a TensorRT engine must beat "
        "(needs a GPU)",
    ),
    Benchmark(
        "bench",
        ("--sizes", "64x96", "--runs", "3", "--warmup", "1"),
        bench_rows,
        "the bundled model (SegNet width 0.25, CamVid): the backend's inference call on one "
        "preprocessed frame per backend, precision and input size, p50/p95 latency and "
        "frames/s (1000 / mean latency), the combinations of a size taking turns call by call; "
        "combinations that cannot run here say why",
    ),
    Benchmark(
        "int8_latency",
        ("--quick",),
        generic_rows,
        "INT8 against FP32 latency; its rows are the script's own `figures` list",
    ),
)
NAMES = tuple(b.name for b in BENCHMARKS)


# --- running ---------------------------------------------------------------------------------


def machine_line() -> str:
    """CPU model and cores, and the GPU when one is visible: the machine column's stem."""
    gpu = gpu_name()
    return f"{cpu_model()}, {os.cpu_count()} cores" + (f", {gpu}" if gpu else "")


def run_one(benchmark: Benchmark, quick: bool, timeout_s: float, machine: str) -> dict[str, Any]:
    """Run ``benchmark`` and return its entry: status, rows, command, machine (with the load
    average just before it ran), date. A failure is an entry too, never an exception."""
    entry: dict[str, Any] = {
        "command": benchmark.shown_command(quick),
        "quick": quick,
        "machine": f"{machine}, load {os.getloadavg()[0]:.1f}",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "rows": [],
    }
    if benchmark.script is not None and not benchmark.script.is_file():
        entry["status"] = f"not run: {benchmark.relative()} is not in this checkout"
        return entry
    RAW.mkdir(parents=True, exist_ok=True)
    record_file = RAW / f"{benchmark.name}{'.quick' if quick else ''}.json"
    record_path = benchmark.record_path(record_file)
    record_path.unlink(missing_ok=True)
    log = RAW / f"{benchmark.name}{'.quick' if quick else ''}.log"
    started = time.perf_counter()
    print(f"performance: running {entry['command']}", file=sys.stderr, flush=True)
    with log.open("w") as handle:
        try:
            result = subprocess.run(
                benchmark.argv(quick, record_file),
                cwd=ROOT,
                stdout=handle,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                check=False,
            )
            code: int | None = result.returncode
        except subprocess.TimeoutExpired:
            code = None
    seconds = time.perf_counter() - started
    entry["seconds"] = round(seconds, 1)
    if code is None:
        entry["status"] = f"failed: timed out after {timeout_s:.0f} s (log: {log})"
    elif not record_path.is_file():
        last = (log.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
        entry["status"] = f"failed: exit code {code}, no record: {last[:200]}"
    else:
        record = json.loads(record_path.read_text())
        entry["rows"] = [list(row) for row in benchmark.rows(record)]
        entry["status"] = "ok" if code == 0 else f"ok, exit code {code} (log: {log})"
    print(f"performance: {benchmark.name}: {entry['status']} ({seconds:.0f} s)", file=sys.stderr)
    return entry


# --- the document ----------------------------------------------------------------------------


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_doc(entries: dict[str, dict[str, Any]]) -> str:
    """The whole markdown page: how to refresh it, one table, what each figure is."""
    lines = [
        "# Performance",
        "",
        "Every figure on this page comes from one command, run from the repository root on an",
        "idle machine (the figures move with the load; the machine column gives the load average",
        "when each benchmark started):",
        "",
        "```bash",
        "python benchmarks/performance.py                           # every benchmark",
        "python benchmarks/performance.py --only bench,runtime_overlay  # some; other rows kept",
        "```",
        "",
        "It runs each benchmark below in its own process, reads its JSON record and rewrites this",
        "page; the records behind it go to `docs/performance.json`. `--quick` is a smoke run",
        "(tiny sizes, few iterations) written to `out/performance/`, never here. A row saying",
        "*not run yet* has not been measured since this page was set up.",
        "",
    ]
    if any(entry.get("quick") for entry in entries.values()):
        lines += ["**Smoke run (`--quick`): these figures are not reference figures.**", ""]
    lines += ["| figure | value | command | machine | date |", "| --- | --- | --- | --- | --- |"]
    for benchmark in BENCHMARKS:
        entry = entries.get(benchmark.name)
        if entry is None:
            command = cell(benchmark.shown_command(False))
            lines.append(f"| {benchmark.name} | not run yet | `{command}` | - | - |")
            continue
        command, machine, date = cell(entry["command"]), cell(entry["machine"]), entry["date"]
        rows = entry["rows"] or [[benchmark.name, entry["status"]]]
        for figure, value in rows:
            lines.append(f"| {cell(figure)} | {cell(value)} | `{command}` | {machine} | {date} |")
    lines += ["", "## What the figures are", ""]
    for benchmark in BENCHMARKS:
        lines.append(f"- `{benchmark.relative()}`: {benchmark.about}.")
    lines += [
        "",
        "Older, annotated figures with the reasoning behind them: `docs/runtime.md` (pipeline,",
        "overlay, memory), `docs/export.md` (parity), `docs/training.md` (training speed,",
        "the bundled model's accuracy), `docs/int8.md` (FP32 / FP16 / INT8 accuracy on CamVid).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and few iterations")
    parser.add_argument("--only", help=f"comma-separated, from: {', '.join(NAMES)}")
    parser.add_argument("--doc", type=Path, help=f"page to write (default {DOC.relative_to(ROOT)})")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per benchmark"
    )
    args = parser.parse_args()
    names = NAMES
    if args.only:
        names = tuple(n.strip() for n in args.only.split(",") if n.strip())
        unknown = [n for n in names if n not in NAMES]
        if unknown or not names:
            parser.error(
                f"unknown benchmark {', '.join(unknown) or '(none)'}; from: {', '.join(NAMES)}"
            )
    doc = args.doc or (QUICK_DOC if args.quick else DOC)
    store = doc.with_suffix(".json")
    entries: dict[str, dict[str, Any]] = {}
    if store.is_file():
        entries = json.loads(store.read_text()).get("benchmarks", {})
    machine = machine_line()
    for benchmark in BENCHMARKS:
        if benchmark.name in names:
            entries[benchmark.name] = run_one(benchmark, args.quick, args.timeout, machine)
    record = {"benchmarks": entries}
    atomic_write_bytes(store, (json.dumps(record, indent=1) + "\n").encode())
    atomic_write_bytes(doc, render_doc(entries).encode())
    print(f"performance: wrote {doc} and {store}", file=sys.stderr)


if __name__ == "__main__":
    main()
