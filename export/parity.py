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

FP16 (and INT8) round near-ties: where the reference's two best classes are closer than the
rounding, either answer is right, and which one comes out depends on the input size and content,
not on the graph. The bundled model's FP16 ONNX agrees with FP32 on 99.1% of pixels at 180x240,
98.8% at 213x209 and 98.6% at 360x480 (synthetic inputs below); the disagreeing pixels' median
FP32 margin is 0.02 against 0.5 overall. So below FP32, agreement is counted on the pixels the
reference decides by at least ``DECISIVE_MARGIN`` of its largest logit (about 86% of them; there
FP16 agrees on 99.8-99.9% at all four sizes), and the table says which share that was. The mean
difference is still gated on every pixel, so a wrong graph fails as before.

Graphs run through the core's :func:`edgeseg.backends.onnxruntime.run_onnx` (re-exported here
for the export steps). Sample inputs are synthetic frames (noise and smooth colour ramps) run
through the runtime's own :func:`edgeseg.preprocess.preprocess`, so they have the value range of
real network inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeseg.backends.onnxruntime import run_onnx
from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.preprocess import preprocess

#: (tolerance on the mean difference relative to the largest logit, min agreement) per
#: precision; the CLI's --tolerance overrides the first for FP32. INT8 is gated here only as an
#: engine against the INT8 ONNX: TensorRT's fused INT8 kernels requantize where ONNX Runtime's
#: Q/DQ emulation computes in float, so small logit differences are expected (unmeasured: no
#: TensorRT here). INT8 against FP32 is checked on real images in edgeseg.calibration.int8.
DEFAULT_GATES = {"fp32": (1e-4, 0.999), "fp16": (1e-2, 0.995), "int8": (5e-2, 0.97)}
#: Below FP32, pixels whose reference top-2 logit margin is under this share of the largest
#: reference logit are near-ties either answer fits: reported, not gated (see the module doc).
DECISIVE_MARGIN = {"fp32": 0.0, "fp16": 0.01, "int8": 0.01}


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

    @property
    def passed(self) -> bool:
        if self.agreement < self.min_agreement:
            return False
        limit = self.limit
        return limit is None or self.mean_abs_diff <= limit

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
                f" (agreement on the {100 * self.decided:.0f}% of pixels the reference decides; "
                f"{100 * self.all_agreement:.2f}% on all)"
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
) -> ParityResult:
    """Compare ``actual`` with ``reference``: each logits (N,K,H,W) or a class map (N,H,W).

    Logit differences are reported when both hold logits; agreement always.
    """
    default_tolerance, default_agreement = DEFAULT_GATES[precision]
    reference = np.asarray(reference)
    reference_classes = reference.argmax(axis=1) if reference.ndim == 4 else reference
    classes = actual.argmax(axis=1) if actual.ndim == 4 else actual
    if classes.shape != reference_classes.shape:
        raise EdgesegError(
            f"{artifact}: output shape {actual.shape} does not match the "
            f"reference's {reference.shape}"
        )
    max_diff = mean_diff = None
    scale = 0.0
    agrees = classes == reference_classes
    counted = np.ones(agrees.shape, dtype=bool)
    if actual.ndim == 4 and reference.ndim == 4:
        if actual.shape != reference.shape:
            raise EdgesegError(
                f"{artifact}: output shape {actual.shape}, expected {reference.shape}"
            )
        diff = np.abs(actual.astype(np.float32) - reference.astype(np.float32))
        max_diff, mean_diff = float(diff.max()), float(diff.mean())
        scale = float(np.abs(reference).max())
        counted = decisive_pixels(reference, DECISIVE_MARGIN[precision] * scale)
    output = "logits" if actual.ndim == 4 else "class_map"
    all_agreement = float(agrees.mean())
    return ParityResult(
        artifact=artifact,
        method=method,
        output=output,
        samples=int(reference.shape[0]),
        max_abs_diff=max_diff,
        mean_abs_diff=mean_diff,
        logit_scale=scale,
        agreement=float(agrees[counted].mean()) if counted.any() else all_agreement,
        tolerance=default_tolerance if tolerance is None else tolerance,
        min_agreement=default_agreement if min_agreement is None else min_agreement,
        inputs="x".join(str(v) for v in (reference.shape[0], *reference.shape[-2:])),
        decided=float(counted.mean()),
        all_agreement=all_agreement,
    )


def decisive_pixels(reference: np.ndarray, margin: float) -> np.ndarray:
    """(N, H, W) mask of pixels whose two best reference logits differ by at least ``margin``."""
    if margin <= 0 or reference.shape[1] < 2:
        return np.ones((reference.shape[0], *reference.shape[2:]), dtype=bool)
    top2 = np.partition(reference.astype(np.float32), -2, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) >= margin


def format_report(results: list[ParityResult], header: str = "parity with PyTorch") -> str:
    """A table: one row per artifact and input set."""
    if not results:
        return f"{header}: not checked"
    title = (
        f"  {'file':<20} {'inputs':<12} {'max |diff|':>10} {'mean |diff|':>11} {'limit':>10} "
        f"{'argmax agrees':>13} {'min':>5}  {'result':<6}  checked with"
    )
    return "\n".join([f"{header}:", title, *(r.row() for r in results)])


def require_parity(results: list[ParityResult], log: Callable[[str], None] | None = None) -> None:
    """Raise a one-line EdgesegError naming every artifact beyond its tolerance."""
    failed = [r for r in results if not r.passed]
    if not failed:
        return
    if log is not None:
        log(format_report(results))
    names = ", ".join(r.artifact for r in failed)
    raise EdgesegError(
        f"parity check failed for {names} (see the report above); nothing was written. If the "
        "difference is expected, raise --tolerance; otherwise please report it"
    )


__all__ = [
    "DECISIVE_MARGIN",
    "DEFAULT_GATES",
    "ParityResult",
    "compare",
    "decisive_pixels",
    "format_report",
    "require_parity",
    "run_onnx",
    "sample_frames",
    "sample_inputs",
]
