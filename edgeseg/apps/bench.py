"""``edgeseg bench``: inference latency and throughput per backend x precision x input size.

What is timed is :meth:`edgeseg.runtime.Segmenter.infer` on one preprocessed (1, 3, H, W) frame,
back to back: the same backend objects ``edgeseg run`` uses, and the only step a precision
changes. Decoding, preprocessing and overlays cost the same at every precision and are measured
with the whole pipeline by ``benchmarks/runtime_pipeline.py``. Figures are p50/p95 latency over
``runs`` calls after ``warmup`` untimed ones (first calls allocate and autotune), and throughput
as 1000 / mean latency (a mean, not the median, so a slow tail costs frames as it does in use).

A checkpoint is measured at its own input size (what ``edgeseg run`` runs) unless sizes are
given, and re-targeted to each: exported to ONNX at that size (no parity check, this is a
benchmark), from which the export's artifact planner derives FP16, INT8 (min-max on random
frames: latency does not depend on calibration data) and the TensorRT engines' graphs where
TensorRT, a GPU and the plugin are present. The torch backend runs the checkpoint itself, FP16
through CUDA autocast only. An ONNX file or engine is static: only its own precision and size
can be measured. With a dataset (``data``), each measured row also gets its mIoU on that split,
computed through the same segmenter.

A combination that cannot run here becomes a row ``skipped: <reason>``, never a crash, so one
command gives the whole picture on a laptop, a Jetson or a desktop GPU. The request is
:mod:`edgeseg.apps.bench_request`, building the artifacts :mod:`edgeseg.apps.bench_artifacts`,
the report :mod:`edgeseg.apps.bench_report`; the export and runtime stages are imported inside
functions, so importing this stays light.
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

from edgeseg.apps.bench_artifacts import Artifacts, Skip, first_line, note
from edgeseg.apps.bench_report import BenchReport, BenchRow, machine_info
from edgeseg.apps.bench_request import (
    BENCH_BACKENDS,
    BenchOptions,
    BenchPlan,
    plan_bench,
    resolve_model,
)
from edgeseg.card import PRECISIONS
from edgeseg.errors import EdgesegError

__all__ = ["BENCH_BACKENDS", "BenchOptions", "plan_bench", "resolve_model", "run_bench"]


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
        asked_sizes = list(dict.fromkeys(sizes or [own_hw]))  # what `edgeseg run` runs
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
    options: BenchOptions | BenchPlan,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> BenchReport:
    """Measure every backend x precision x size; rows that cannot run here are skipped rows.

    Raises EdgesegError, before any slow work, for a missing or unknown model file, an unknown
    backend or precision, a missing dataset or a size below what the model takes (each a
    :func:`plan_bench` check; pass its plan to check first, e.g. before creating a folder).
    """
    from tqdm import tqdm

    say = log or note
    plan = options if isinstance(options, BenchPlan) else plan_bench(options)
    request = plan.options
    with tempfile.TemporaryDirectory(prefix="edgeseg-bench-") as folder:
        artifacts = Artifacts(plan.model, Path(folder), say)
        combos = plan_combinations(artifacts, plan.backends, plan.precisions, request.sizes, say)
        eval_set = accuracy_set(plan, artifacts.card, progress)
        report = new_report(plan, artifacts.card)
        calls = request.warmup + request.runs
        with tqdm(
            total=len(combos) * calls, unit="call", file=sys.stderr, disable=not progress
        ) as bar:
            for hw, group in itertools.groupby(combos, key=lambda combo: combo[2]):
                bar.set_description(f"{hw[0]}x{hw[1]}")
                rows = [BenchRow(backend, precision, hw) for backend, precision, _ in group]
                report.rows.extend(rows)
                with contextlib.ExitStack() as stack:
                    entries = open_group(stack, artifacts, rows, request.threads, bar, calls)
                    tick = lambda: bar.update(1)  # noqa: E731
                    time_interleaved(entries, request.runs, request.warmup, tick)
                    for entry in entries:
                        finish_row(entry, eval_set)
    report.machine = machine_info(request.threads)
    return report


def new_report(plan: BenchPlan, card: Any) -> BenchReport:
    """An empty report: what is measured, with what, and when."""
    return BenchReport(
        model=str(plan.model),
        card={
            "architecture": card.architecture,
            "num_classes": card.num_classes,
            "input_hw": list(card.input_hw),
            "precision": card.precision,
            "arch_args": card.arch_args,
        },
        runs=plan.options.runs,
        warmup=plan.options.warmup,
        machine={},
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=plan.options.command,
        data=str(plan.options.data) if plan.samples else None,
    )


def accuracy_set(plan: BenchPlan, card: Any, progress: bool) -> Any:
    """The images and labels the accuracy column is measured on (None without ``data``)."""
    if not plan.samples:
        return None
    from edgeseg.evaluate import load_eval_set

    if plan.spec.num_classes != card.num_classes:
        raise EdgesegError(
            f"the dataset has {plan.spec.num_classes} classes but the model predicts "
            f"{card.num_classes}"
        )
    return load_eval_set(plan.samples, plan.spec, progress=progress)


def finish_row(entry: Timed, eval_set: Any) -> None:
    """A measured row's figures; with ``eval_set`` its mIoU, through the same segmenter."""
    if entry.row.status != "ok":
        return
    for key, value in summarize_ms(entry.times).items():
        setattr(entry.row, key, round(value, 3))
    if eval_set is not None:
        from edgeseg.evaluate import evaluate_predictor

        segmenter = entry.segmenter
        with entry.context():
            metrics, _, _ = evaluate_predictor(eval_set, segmenter.card, segmenter.infer, 1)
        entry.row.miou = round(float(metrics["miou"]), 4)
