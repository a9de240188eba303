"""Parity of an exported model with its PyTorch original: figures, gate and report.

Figures per artifact: the largest and the mean absolute logit difference, and the share of pixels
whose argmax class agrees. The gate: agreement at least ``min_agreement`` and the mean difference
at most ``tolerance`` times the largest reference logit magnitude.

The largest difference is reported but not gated, because for SegNet it is ill-conditioned: each
unpooling puts a decoder value at its window's first maximum, so two pre-pool values that differ
by less than rounding resolve to neighbouring positions under different, equally correct
convolution arithmetic. PyTorch itself, on the same random-weight SegNet at 360x480, differs from
its own float64 result by up to 5% of the largest logit at a few pixels (and between its two CPU
convolution paths by as much) while the mean stays near 1e-5 and 99.99% of pixels agree. A wrong
graph moves the mean and the agreement by orders of magnitude.

Below FP32 the gate is the one of :mod:`edgeseg.precision_gate`, shared with the INT8
calibration check: agreement on the pixels the FP32 reference decides (its two best logits
differ by at least ``DECISIVE_MARGIN`` of its largest logit), whatever the artifact outputs
(logits, or an ``--argmax`` class map: the margin comes from the FP32 logits, see
:func:`reference_logits`). FP16 and INT8 round near-ties either way, and which way depends on the
input size and content, not on the graph; the table says which share of pixels was decided and
the agreement on all of them. The mean logit difference is still gated on every pixel where both
sides hold logits, so a wrong graph fails as before. A failure names the figure that failed and
the option that changes it (``--tolerance`` only moves the FP32 mean-difference limit).

Graphs run through the core's :func:`edgeseg.backends.runner.run_onnx`; engines through its
TensorRT runner. :func:`check_forms` and :func:`engine_parity` are the two checks an export makes
(every written form against PyTorch, then the engine against ONNX Runtime); doctor's self-test
makes the second on each engine it builds. Sample inputs are synthetic frames (noise and smooth
colour ramps) run through the runtime's own :func:`edgeseg.preprocess.preprocess`, so they have
the value range of real network inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from edgeseg.backends.runner import run_onnx
from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.onnx_graph import logits_graph
from edgeseg.precision_gate import DECISIVE_MARGIN as GATE_MARGIN
from edgeseg.precision_gate import MIN_AGREEMENT, REMEDIES, decided_agreement
from edgeseg.preprocess import preprocess

if TYPE_CHECKING:
    import torch

    from edgeseg.export.forms import Form, Forms

#: (tolerance on the mean difference relative to the largest logit, min agreement) per
#: precision; the CLI's --tolerance overrides the first for FP32. The agreement floors are the
#: shared gate's (:data:`edgeseg.precision_gate.MIN_AGREEMENT`), counted on decided pixels.
#: INT8 is gated here as an engine against the INT8 ONNX: TensorRT's fused INT8 kernels
#: requantize where ONNX Runtime's Q/DQ emulation computes in float (unmeasured: no TensorRT
#: here). INT8 against FP32 is checked on real images in edgeseg.calibration.int8.
DEFAULT_GATES = {
    p: (t, MIN_AGREEMENT[p]) for p, t in (("fp32", 1e-4), ("fp16", 1e-2), ("int8", 5e-2))
}
#: Below FP32, agreement is counted on the pixels the FP32 reference decides (module doc).
DECISIVE_MARGIN = {"fp32": 0.0, "fp16": GATE_MARGIN, "int8": GATE_MARGIN}


@dataclass(frozen=True)
class ParityResult:
    """How one artifact compares with the reference on the sample inputs."""

    artifact: str
    method: str
    output: str  # "logits" or "class_map"
    samples: int
    max_abs_diff: float | None  # None for class maps
    mean_abs_diff: float | None
    logit_scale: float  # largest |reference logit|
    agreement: float  # share of pixels whose argmax class agrees
    tolerance: float
    min_agreement: float

    inputs: str = ""  # e.g. "2x45x67": count x height x width
    decided: float = 1.0  # share of pixels the agreement was counted on (DECISIVE_MARGIN)
    all_agreement: float | None = None  # agreement on every pixel, when not all were counted
    precision: str = "fp32"  # whose gate: fp32 (equal graphs), fp16 or int8

    @property
    def passed(self) -> bool:
        return not self.failure()

    def failure(self) -> str:
        """Which figure fails and the option that changes it; '' when both pass."""
        reasons = []
        if self.agreement < self.min_agreement:
            where = "on the pixels the FP32 reference decides"
            if self.precision == "fp32":
                where = "on every pixel"
            reasons.append(
                f"{self.precision.upper()} agreement {100 * self.agreement:.2f}% {where} is "
                f"below {100 * self.min_agreement:g}%"
            )
        limit = self.limit
        if limit is not None and self.mean_abs_diff > limit:
            reasons.append(
                f"mean |logit diff| {self.mean_abs_diff:.2e} is above its limit {limit:.2e} "
                f"({self.tolerance:g} x the largest logit)"
            )
        if not reasons:
            return ""
        if self.precision == "fp32":
            only_mean = self.agreement >= self.min_agreement
            remedy = (
                "raise --tolerance if the difference is expected, otherwise please report it"
                if only_mean
                else "the graphs should compute the same; please report it (--no-check writes "
                "the files unchecked)"
            )
        else:
            remedy = REMEDIES[self.precision]
        return f"{'; '.join(reasons)}: {remedy}"

    @property
    def limit(self) -> float | None:
        """The largest allowed mean logit difference (None for class maps)."""
        if self.mean_abs_diff is None:
            return None
        return self.tolerance * max(self.logit_scale, 1e-6)

    def row(self) -> str:
        def num(value: float | None) -> str:
            return "-" if value is None else f"{value:.2e}"

        verdict = "ok" if self.passed else "FAILED"
        counted = ""
        if self.decided < 1.0 and self.all_agreement is not None:
            counted = (
                f" (agreement on the {100 * self.decided:.0f}% of pixels the FP32 reference "
                f"decides; {100 * self.all_agreement:.2f}% on all)"
            )
        return (
            f"  {self.artifact:<20} {self.inputs:<12} {num(self.max_abs_diff):>10} "
            f"{num(self.mean_abs_diff):>11} {num(self.limit):>10} "
            f"{100 * self.agreement:>12.4f}% {100 * self.min_agreement:>4g}%  {verdict:<6}  "
            f"{self.method}{counted}"
        )


def sample_frames(input_hw: tuple[int, int], count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` synthetic BGR uint8 frames of size ``input_hw``: noise, then colour ramps."""
    height, width = input_hw
    rng = np.random.default_rng(seed)
    frames = []
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(count):
        if i % 2 == 0:
            frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        else:
            phase = rng.uniform(0, 2 * np.pi, 3)
            channels = [
                127.5 + 127.5 * np.sin(xx / (7 + 5 * c) + yy / (11 + 3 * c) + phase[c])
                for c in range(3)
            ]
            frame = np.stack(channels, axis=-1).round().astype(np.uint8)
        frames.append(frame)
    return frames


def sample_inputs(
    card: ModelCard, count: int = 2, input_hw: tuple[int, int] | None = None, seed: int = 0
) -> np.ndarray:
    """(count, 3, H, W) float32 network inputs at ``input_hw`` (default: the card's)."""
    hw = input_hw or card.input_hw
    sized = card.replace(input_hw=tuple(hw))
    return np.stack([preprocess(frame, sized) for frame in sample_frames(hw, count, seed)])


def compare(
    artifact: str,
    method: str,
    reference: np.ndarray,
    actual: np.ndarray,
    precision: str = "fp32",
    tolerance: float | None = None,
    min_agreement: float | None = None,
    decided_by: np.ndarray | None = None,
) -> ParityResult:
    """Compare ``actual`` with ``reference``: each logits (N,K,H,W) or a class map (N,H,W).

    Logit differences are reported when both hold logits; agreement always, counted below FP32
    on the pixels ``decided_by`` (the FP32 reference's logits; default ``reference`` when it
    holds logits) decides, whatever ``actual`` holds.
    """
    default_tolerance, default_agreement = DEFAULT_GATES[precision]
    reference = np.asarray(reference)
    if decided_by is None and reference.ndim == 4:
        decided_by = reference
    reference_classes = reference.argmax(axis=1) if reference.ndim == 4 else reference
    classes = actual.argmax(axis=1) if actual.ndim == 4 else actual
    if classes.shape != reference_classes.shape:
        raise EdgesegError(
            f"{artifact}: output shape {actual.shape} does not match the "
            f"reference's {reference.shape}"
        )
    max_diff = mean_diff = None
    scale = 0.0
    if actual.ndim == 4 and reference.ndim == 4:
        if actual.shape != reference.shape:
            raise EdgesegError(
                f"{artifact}: output shape {actual.shape}, expected {reference.shape}"
            )
        diff = np.abs(actual.astype(np.float32) - reference.astype(np.float32))
        max_diff, mean_diff = float(diff.max()), float(diff.mean())
        scale = float(np.abs(reference).max())
    figures = decided_agreement(
        reference if decided_by is None else decided_by,
        classes,
        reference_classes,
        DECISIVE_MARGIN[precision],
    )
    return ParityResult(
        artifact=artifact,
        method=method,
        output="logits" if actual.ndim == 4 else "class_map",
        samples=int(reference.shape[0]),
        max_abs_diff=max_diff,
        mean_abs_diff=mean_diff,
        logit_scale=scale,
        agreement=figures.agreement,
        tolerance=default_tolerance if tolerance is None else tolerance,
        min_agreement=default_agreement if min_agreement is None else min_agreement,
        inputs="x".join(str(v) for v in (reference.shape[0], *reference.shape[-2:])),
        decided=figures.decided,
        all_agreement=figures.all_pixels,
        precision=precision,
    )


def decisive_pixels(reference: np.ndarray, margin: float) -> np.ndarray:
    """(N, H, W) mask of pixels whose two best reference logits differ by at least ``margin``
    (an absolute logit difference; :func:`edgeseg.precision_gate.decided_pixels` takes a share)."""
    if margin <= 0 or reference.shape[1] < 2:
        return np.ones((reference.shape[0], *reference.shape[2:]), dtype=bool)
    top2 = np.partition(reference.astype(np.float32), -2, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) >= margin


def reference_logits(model: onnx.ModelProto, inputs: np.ndarray) -> np.ndarray:
    """The FP32 reference's logits on ``inputs``, also for an ``--argmax`` graph (whose margins
    decide which pixels the gate counts)."""
    return run_onnx(logits_graph(model), inputs)


def format_report(results: list[ParityResult], header: str = "parity with PyTorch") -> str:
    """A table: one row per artifact and input set."""
    if not results:
        return f"{header}: not checked"
    title = (
        f"  {'file':<20} {'inputs':<12} {'max |diff|':>10} {'mean |diff|':>11} {'limit':>10} "
        f"{'argmax agrees':>13} {'min':>5}  {'result':<6}  checked with"
    )
    return "\n".join([f"{header}:", title, *(r.row() for r in results)])


def require_parity(
    results: list[ParityResult],
    log: Callable[[str], None] | None = None,
    consequence: str = "nothing was written",
) -> None:
    """Raise a one-line EdgesegError naming, per failed artifact, the figure that failed and
    the option that changes it."""
    failed = [r for r in results if not r.passed]
    if not failed:
        return
    if log is not None:
        log(format_report(results))
    reasons = "; ".join(f"{r.artifact}: {r.failure()}" for r in failed)
    raise EdgesegError(f"parity check failed ({consequence}): {reasons}")


def check_forms(
    forms: Forms,
    wanted: list[Form],
    model: torch.nn.Module,
    *,
    samples: int,
    dynamic: bool,
    tolerance: float | None,
    log: Callable[[str], None],
) -> list[ParityResult]:
    """ONNX Runtime against the PyTorch ``model`` for every form in ``wanted`` (plugin graphs
    with their plugin nodes re-expanded); INT8's TensorRT graph against the INT8 ONNX (INT8
    against FP32 is checked on real images by calibration). With ``dynamic`` another batch size
    and another (odd) input size go through the same files. Logs the table; raises EdgesegError
    naming the failed figures when one fails."""
    card = forms.card
    cases = [sample_inputs(card, samples)]
    if dynamic:
        height, width = card.input_hw
        low = min_input_side(forms.get("portable", "fp32").model)
        cases.append(sample_inputs(card, 1, (max(low, height + 33), max(low, width - 31)), seed=7))
    results = []
    for inputs in cases:
        expected = torch_outputs(model, inputs)
        int8_expected = None
        for form in wanted:
            method, want, gate = "ONNX Runtime", expected, form.precision
            limit = tolerance if form.precision == "fp32" else None
            if form.kind == "plugin":
                method = "ONNX Runtime, plugin re-expanded to standard ops"
            if form.precision == "int8":
                if form.kind != "plugin":
                    continue
                int8_onnx = forms.get("portable", "int8")
                if int8_expected is None:
                    int8_expected = run_onnx(int8_onnx.model, inputs)
                method = f"ONNX Runtime against {int8_onnx.file_name}, plugin re-expanded"
                want, gate, limit = int8_expected, "fp32", tolerance
            actual = run_onnx(form.model, inputs)  # plugin nodes re-expanded there
            results.append(compare(form.file_name, method, want, actual, gate, tolerance=limit))
    require_parity(results, log)
    log(format_report(results))
    return results


def engine_parity(
    engine: Path,
    reference: onnx.ModelProto,
    inputs: np.ndarray,
    precision: str,
    *,
    plugin_library: Path | None = None,
    tolerance: float | None = None,
    decided_by: onnx.ModelProto | None = None,
) -> ParityResult:
    """A TensorRT ``engine`` against ONNX Runtime running ``reference`` on ``inputs``. Below FP32
    the pixels counted are those the FP32 graph ``decided_by`` decides (also for an ``--argmax``
    engine); default: ``reference``'s own logits."""
    from edgeseg.backends.tensorrt_runner import TensorRTRunner

    expected = run_onnx(reference, inputs)
    logits = None if decided_by is None else reference_logits(decided_by, inputs)
    with TensorRTRunner(engine, plugin_library=plugin_library, use_cuda_graph=False) as runner:
        actual = runner.infer(inputs)
    return compare(
        engine.name, "TensorRT against ONNX Runtime", expected, actual, precision,
        tolerance=tolerance, decided_by=logits,
    )  # fmt: skip


def torch_outputs(model: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
    """What the PyTorch original computes on ``inputs``: the reference of every written form.
    torch is imported here, not with the module, so the engine check runs without it."""
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(inputs)).numpy()


def min_input_side(graph: onnx.ModelProto) -> int:
    """Smallest height/width ``graph`` accepts: each 2x2 pooling halves it, and 1x1 must remain."""
    return 2 ** sum(node.op_type == "MaxPool" for node in graph.graph.node)


__all__ = [
    "DECISIVE_MARGIN",
    "DEFAULT_GATES",
    "ParityResult",
    "check_forms",
    "compare",
    "decisive_pixels",
    "engine_parity",
    "format_report",
    "min_input_side",
    "reference_logits",
    "require_parity",
    "sample_frames",
    "sample_inputs",
]
