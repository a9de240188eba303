"""``edgeseg bench``: inference latency and throughput per backend x precision x input size.

What is timed is :meth:`edgeseg.runtime.Segmenter.infer` on one preprocessed (1, 3, H, W) frame,
back to back: the same backend objects ``edgeseg run`` uses, and the only step a precision
changes. Decoding, preprocessing and overlays cost the same at every precision and are measured
with the whole pipeline by ``benchmarks/runtime_pipeline.py``. Figures are p50/p95 latency over
``runs`` calls after ``warmup`` untimed ones (first calls allocate and autotune), and throughput
as 1000 / mean latency (a mean, not the median, so a slow tail costs frames as it does in use).

A checkpoint is re-targeted to each size: exported to ONNX at that size (no parity check, this is
a benchmark), converted to FP16 (:func:`edgeseg.export.fp16.to_fp16`) or quantized to INT8
(:func:`edgeseg.calibration.quantize.quantize_int8`, min-max on random frames: latency does not
depend on calibration data), and built into a TensorRT engine where TensorRT, a GPU and the
plugin are present. The torch backend runs the checkpoint itself, FP16 through CUDA autocast
only. An ONNX file or engine is static: only its own precision and size can be measured.

A combination that cannot run here becomes a row ``skipped: <reason>``, never a crash, so one
command gives the whole picture on a laptop, a Jetson or a desktop GPU. Building the artifacts is
:mod:`edgeseg.apps.bench_artifacts`, the report :mod:`edgeseg.apps.bench_report`; the export and
runtime stages are imported inside functions, so importing this stays light.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.apps.bench_artifacts import Artifacts, Skip, first_line
from edgeseg.apps.bench_report import BenchReport, BenchRow, machine_info
from edgeseg.card import PRECISIONS
from edgeseg.errors import EdgesegError

#: ``tensorrt`` unpools with edgeseg's plugin, ``tensorrt-native`` with TensorRT's own layers
#: (``--unpool native``): side by side, the plugin's benefit.
BENCH_BACKENDS = ("onnxruntime", "torch", "tensorrt", "tensorrt-native")
DEFAULT_SIZES = ((360, 480), (720, 960))


# --- request ---------------------------------------------------------------------------------


def check_choices(values: Sequence[str], valid: Sequence[str], what: str) -> tuple[str, ...]:
    """``values`` without repeats, in order; EdgesegError naming the valid ones for an unknown."""
    unknown = [v for v in values if v not in valid]
    if unknown or not values:
        given = ", ".join(unknown) if unknown else "(none)"
        raise EdgesegError(f"unknown {what} {given}; choose from: {', '.join(valid)}")
    return tuple(dict.fromkeys(values))


def resolve_model(model: str | Path | None) -> Path:
    """The artifact to measure: ``model``, or the bundled default checkpoint when None."""
    if model is None:
        try:
            from edgeseg.apps.default_model import default_checkpoint
        except ModuleNotFoundError as exc:
            if exc.name != "edgeseg.apps.default_model":
                raise
            raise EdgesegError(
                "this install has no bundled default model; pass --model CHECKPOINT_OR_ONNX"
            ) from None
        return Path(default_checkpoint())
    path = Path(model)
    if not path.exists():
        raise EdgesegError(f"model {path} not found")
    if path.is_dir():
        raise EdgesegError(f"model {path} is a folder; pass a .pt, .onnx or .engine file")
    from edgeseg.backends.runner import artifact_backend

    artifact_backend(path)  # an unknown suffix is refused here, before any slow work
    return path


# --- measuring -------------------------------------------------------------------------------


def summarize_ms(times_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean of per-call latencies, and throughput as 1000 / mean (frames/s)."""
    values = np.asarray(times_ms, dtype=np.float64)
    p50, p95 = np.percentile(values, [50, 95])
    mean = float(values.mean())
    return {"p50_ms": float(p50), "p95_ms": float(p95), "mean_ms": mean, "fps": 1000.0 / mean}


@dataclass(eq=False)
class Timed:
    """One open combination being timed: its row, segmenter, per-call context and latencies."""

    row: BenchRow
    segmenter: Any
    context: Callable[[], contextlib.AbstractContextManager[Any]]
    batch: Any = None
    times: list[float] = field(default_factory=list)

    def call(self) -> float:
        """Milliseconds of one ``infer`` call on the prepared frame."""
        with self.context():
            start = time.perf_counter()
            self.segmenter.infer(self.batch)
            return (time.perf_counter() - start) * 1000.0


def time_interleaved(
    entries: Sequence[Timed], runs: int, warmup: int, tick: Callable[[], None]
) -> None:
    """Fill each entry's ``times`` with ``runs`` latencies, the entries taking turns call by call.

    Timing one combination after another lets a drift of the machine (another VM on the host, a
    thermal limit, a background job) land on one backend only and decide a comparison; taking
    turns spreads it over all of them, so the ratios of one run hold. Each round starts with the
    next entry, so none always follows the same one. The frame is random pixels through the
    runtime's own preprocessing (latency does not depend on the content); warm-up calls
    (allocation, autotuning) come first and are not timed.
    """
    live = list(entries)
    for entry in entries:
        height, width = entry.segmenter.card.input_hw
        frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        entry.batch = entry.segmenter.preprocess(frame)
        for _ in range(warmup):
            _call_or_drop(entry, live, timed=False)
            tick()
    for index in range(runs):
        shift = index % max(1, len(live))
        for entry in [*live[shift:], *live[:shift]]:
            _call_or_drop(entry, live)
            tick()


def _call_or_drop(entry: Timed, live: list[Timed], timed: bool = True) -> None:
    """One call, its latency kept when ``timed``; a call that fails with an EdgesegError makes
    its row a skipped row and takes it out of the turns."""
    if entry not in live:
        return
    try:
        elapsed = entry.call()
        if timed:
            entry.times.append(elapsed)
    except EdgesegError as exc:
        entry.row.status, entry.row.reason = "skipped", first_line(exc)
        entry.times.clear()
        live.remove(entry)


# --- one combination -------------------------------------------------------------------------


@contextlib.contextmanager
def open_segmenter(
    artifacts: Artifacts, backend: str, precision: str, hw: tuple[int, int], threads: int | None
) -> Iterator[tuple[Any, Callable[[], contextlib.AbstractContextManager[Any]]]]:
    """The runtime Segmenter for one combination and the context each timed call runs in.

    Raises Skip (or EdgesegError, which the caller treats alike) when the combination cannot run
    here, with the reason.
    """
    from edgeseg.runtime import Segmenter

    if artifacts.static:
        own = (tuple(artifacts.card.input_hw), artifacts.card.precision)
        if (hw, precision) != own:
            raise Skip(
                f"{artifacts.path.name} is {own[1]} at {own[0][0]}x{own[0][1]} (one precision and "
                "size per file); pass the checkpoint to measure others"
            )
    context: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
    if backend == "onnxruntime":
        if artifacts.kind == "engine":
            raise Skip("an engine runs on TensorRT only")
        path = artifacts.onnx_file(hw, precision)
        # Idle threads must not spin into the next backend's call: they take turns (see
        # time_interleaved).
        segmenter = Segmenter(path, "onnxruntime", threads=threads, spinning=False)
    elif backend == "torch":
        if artifacts.kind != "pt":
            raise Skip("the torch backend runs checkpoints (.pt), not this file")
        if precision == "int8":
            raise Skip("INT8 runs as a Q/DQ ONNX (onnxruntime, tensorrt); torch has no INT8 path")
        if precision == "fp16":
            import torch

            if not torch.cuda.is_available():
                raise Skip("torch FP16 runs on CUDA only (autocast); no CUDA GPU here")
            context = functools.partial(torch.autocast, "cuda", dtype=torch.float16)
        segmenter = Segmenter(artifacts.checkpoint(hw), "torch", threads=threads)
    else:
        unpool = "native" if backend == "tensorrt-native" else "plugin"
        segmenter = Segmenter(artifacts.engine(hw, precision, unpool), "tensorrt")
    try:
        yield segmenter, context
    finally:
        segmenter.close()


def plan_combinations(
    artifacts: Artifacts,
    backends: Sequence[str],
    precisions: Sequence[str] | None,
    sizes: Sequence[tuple[int, int]] | None,
    say: Callable[[str], None],
) -> list[tuple[str, str, tuple[int, int]]]:
    """(backend, precision, size) to measure, grouped by size: every size is one group of bars.

    A static artifact is always measured at its own precision and size; what else was asked of
    it stays in the list, to show up as skipped rows that say why. EdgesegError for a size below
    what a checkpoint's model takes (each pooling halves the input).
    """
    card = artifacts.card
    own_hw = (int(card.input_hw[0]), int(card.input_hw[1]))
    if artifacts.static:
        asked_sizes = list(dict.fromkeys([own_hw, *(sizes or [])]))
        asked_precisions = list(dict.fromkeys([card.precision, *(precisions or [])]))
        if len(asked_sizes) > 1 or len(asked_precisions) > 1:
            say(
                f"{artifacts.path.name} is static ({card.precision}, {own_hw[0]}x{own_hw[1]}): "
                "only that is measured; pass the checkpoint for other sizes and precisions"
            )
    else:
        asked_sizes = list(dict.fromkeys(sizes or DEFAULT_SIZES))
        asked_precisions = list(precisions or PRECISIONS)
        low = artifacts.min_side()
        for height, width in asked_sizes:
            if min(height, width) < low:
                raise EdgesegError(
                    f"size {height}x{width} is below what {card.architecture} takes "
                    f"(each side at least {low})"
                )
    return [
        (backend, precision, (int(hw[0]), int(hw[1])))
        for hw in asked_sizes
        for backend in backends
        for precision in asked_precisions
    ]


def open_group(
    stack: contextlib.ExitStack,
    artifacts: Artifacts,
    rows: Sequence[BenchRow],
    threads: int | None,
    bar: Any,
    calls: int,
) -> list[Timed]:
    """Open every combination of one size at once (closed by ``stack``), to be timed in turns.

    A combination that cannot run here becomes a skipped row with the reason, its calls counted
    as done on the progress bar.
    """
    entries: list[Timed] = []
    for row in rows:
        try:
            segmenter, context = stack.enter_context(
                open_segmenter(artifacts, row.backend, row.precision, row.input_hw, threads)
            )
        except (Skip, EdgesegError) as exc:
            row.status, row.reason = "skipped", first_line(exc)
            bar.update(calls)
            continue
        row.device = segmenter.describe()
        entries.append(Timed(row, segmenter, context))
    return entries


# --- the whole run ---------------------------------------------------------------------------


def run_bench(
    model: str | Path | None = None,
    *,
    backends: Sequence[str] = BENCH_BACKENDS,
    precisions: Sequence[str] | None = None,
    sizes: Sequence[tuple[int, int]] | None = None,
    runs: int = 50,
    warmup: int = 5,
    threads: int | None = None,
    command: str = "",
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> BenchReport:
    """Measure every backend x precision x size; rows that cannot run here are skipped rows.

    ``precisions``/``sizes`` None: FP32, FP16 and INT8 at 360x480 and 720x960 for a checkpoint,
    the file's own for an ONNX file or engine (more asked of one gives skipped rows saying so).
    Raises EdgesegError, before any slow work, for a missing or unknown model file, an unknown
    backend or precision, or a size below what the model takes.
    """
    from tqdm import tqdm

    say = log or (lambda message: tqdm.write(f"edgeseg: {message}", file=sys.stderr))
    backends = check_choices(list(backends), BENCH_BACKENDS, "backend")
    if precisions is not None:
        precisions = check_choices(list(precisions), PRECISIONS, "precision")
    if runs < 1 or warmup < 0:
        raise EdgesegError(f"runs must be at least 1 and warmup at least 0 (got {runs}, {warmup})")
    path = resolve_model(model)
    with tempfile.TemporaryDirectory(prefix="edgeseg-bench-") as folder:
        artifacts = Artifacts(path, Path(folder), say)
        card = artifacts.card
        combos = plan_combinations(artifacts, backends, precisions, sizes, say)
        report = BenchReport(
            model=str(path),
            card={
                "architecture": card.architecture,
                "num_classes": card.num_classes,
                "input_hw": list(card.input_hw),
                "precision": card.precision,
                "arch_args": card.arch_args,
            },
            runs=runs,
            warmup=warmup,
            machine={},
            date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            command=command,
        )
        calls = warmup + runs
        with tqdm(
            total=len(combos) * calls, unit="call", file=sys.stderr, disable=not progress
        ) as bar:
            for hw, group in itertools.groupby(combos, key=lambda combo: combo[2]):
                bar.set_description(f"{hw[0]}x{hw[1]}")
                rows = [BenchRow(backend, precision, hw) for backend, precision, _ in group]
                report.rows.extend(rows)
                with contextlib.ExitStack() as stack:
                    entries = open_group(stack, artifacts, rows, threads, bar, calls)
                    time_interleaved(entries, runs, warmup, lambda: bar.update(1))
                for entry in entries:
                    if entry.row.status != "ok":
                        continue
                    for key, value in summarize_ms(entry.times).items():
                        setattr(entry.row, key, round(value, 3))
    report.machine = machine_info(threads)
    return report
