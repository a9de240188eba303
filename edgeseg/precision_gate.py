"""The one accuracy gate for reduced precision (FP16 and INT8): one metric, one wording.

The figure: the share of pixels whose class agrees with the FP32 reference, counted on the
pixels the reference *decides*: those whose two best FP32 logits differ by at least
``DECISIVE_MARGIN`` of the largest FP32 logit magnitude. Near-ties (a smaller margin) flip under
any rounding, and which way depends on input size and content, not on the graph, so they are
reported, not gated. The artifact's own output does not matter: logits are reduced to their
argmax, an ``--argmax`` class map is compared as it is; the margin always comes from the FP32
reference's logits. With labelled images (INT8 calibration on a dataset root) the mIoU drop
against the labels is gated as well.

Export parity (FP16 and INT8 graphs and engines, :mod:`edgeseg.export.parity`) and the INT8
calibration check (:mod:`edgeseg.calibration.int8`) both judge with :func:`gate_failure`; the
thresholds and the measurements behind them are in docs/export.md ("One accuracy gate").
It lives in the core because calibration may not import the export stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A pixel is decided when its two best FP32 logits differ by at least this share of the
#: largest FP32 logit magnitude (over the images compared).
DECISIVE_MARGIN = 0.01
#: The lowest agreement on decided pixels each precision may have (FP32: every pixel).
MIN_AGREEMENT = {"fp32": 0.999, "fp16": 0.995, "int8": 0.97}
#: With labels: the largest mIoU drop, in points, against the FP32 reference.
DEFAULT_MAX_DROP = 1.0
#: The options that really change each figure, named in a failure.
REMEDIES = {
    "fp16": (
        "FP16 rounding changes decisions FP32 makes clearly; export without --fp16 (FP32), or "
        "pass --no-check to write it unchecked"
    ),
    "int8": (
        "try --keep-float N (--report lists the layers that lose most), another --calib-method, "
        "or more --calib-count images like the deployment's; --int8-min-agreement and "
        "--int8-max-drop set the thresholds"
    ),
}


@dataclass(frozen=True)
class Agreement:
    """How one artifact's classes agree with the FP32 reference's."""

    agreement: float  # on the decided pixels
    decided: float  # share of pixels the reference decides
    all_pixels: float  # on every pixel
    images: int

    def describe(self) -> str:
        return (
            f"agreement {100 * self.agreement:.2f}% on the {100 * self.decided:.1f}% of pixels "
            f"the FP32 reference decides ({100 * self.all_pixels:.2f}% on all, {self.images} "
            "images)"
        )


def classes_of(output: np.ndarray) -> np.ndarray:
    """(N, H, W) classes of logits (N, K, H, W) or of a class map (N, H, W)."""
    output = np.asarray(output)
    return output.argmax(axis=1) if output.ndim == 4 else output


def decided_pixels(
    reference_logits: np.ndarray, margin_share: float = DECISIVE_MARGIN
) -> np.ndarray:
    """(N, H, W) mask of the pixels whose two best reference logits differ by at least
    ``margin_share`` of the largest reference logit magnitude (all pixels for a share of 0,
    a single class or a class-map reference)."""
    reference_logits = np.asarray(reference_logits)
    if reference_logits.ndim != 4:
        return np.ones(reference_logits.shape, dtype=bool)
    shape = (reference_logits.shape[0], *reference_logits.shape[2:])
    if margin_share <= 0 or reference_logits.shape[1] < 2:
        return np.ones(shape, dtype=bool)
    values = reference_logits.astype(np.float32)
    margin = margin_share * float(np.abs(values).max())
    top2 = np.partition(values, -2, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) >= margin


def decided_agreement(
    reference_logits: np.ndarray,
    predicted: np.ndarray,
    reference: np.ndarray | None = None,
    margin_share: float = DECISIVE_MARGIN,
) -> Agreement:
    """Agreement of ``predicted`` (logits or class map) with ``reference`` (default: the FP32
    logits' classes) on the pixels ``reference_logits`` decides."""
    wanted = classes_of(reference_logits if reference is None else reference)
    got = classes_of(predicted)
    if got.shape != wanted.shape:
        raise ValueError(f"classes of shape {got.shape} against {wanted.shape}")
    agrees = got == wanted
    counted = decided_pixels(reference_logits, margin_share)
    all_pixels = float(agrees.mean())
    return Agreement(
        agreement=float(agrees[counted].mean()) if counted.any() else all_pixels,
        decided=float(counted.mean()),
        all_pixels=all_pixels,
        images=int(wanted.shape[0]),
    )


def gate_failure(
    precision: str,
    figures: Agreement,
    min_agreement: float | None = None,
    drop_points: float | None = None,
    max_drop: float = DEFAULT_MAX_DROP,
) -> str:
    """Why ``figures`` fail the gate of ``precision``, naming the figure and what changes it;
    '' when they pass."""
    floor = MIN_AGREEMENT[precision] if min_agreement is None else min_agreement
    label = precision.upper()
    reasons = []
    if figures.agreement < floor:
        reasons.append(
            f"{label} agreement {100 * figures.agreement:.2f}% on the pixels the FP32 reference "
            f"decides is below {100 * floor:g}%"
        )
    if drop_points is not None and drop_points > max_drop:
        reasons.append(
            f"{label} loses {drop_points:.2f} mIoU points against FP32 on the labelled images, "
            f"more than {max_drop:g}"
        )
    if not reasons:
        return ""
    remedy = REMEDIES.get(precision, "please report it")
    return f"{'; '.join(reasons)}: {remedy}"
