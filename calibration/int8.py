"""The INT8 step of ``edgeseg export --int8``: read, calibrate, quantize, analyse, check.

1. Resolve ``--calib-data`` and decode up to ``--calib-count`` images through the runtime's
   preprocessing (cached, :mod:`edgeseg.calibration.cache`).
2. Hold out every k-th image (about one in eight, 4 to 32 of them) for the check; calibrate on
   the rest. Checking on images the ranges were computed from would flatter the result.
3. Quantize (:func:`edgeseg.calibration.quantize.quantize_int8`), keeping ONNX Runtime's range
   file so that step 4 re-quantizes without another calibration pass.
4. With ``report`` or ``keep_float``: the per-layer analysis, and the ``keep_float`` worst layers
   left in float.
5. The check, INT8 against FP32 on the held-out images (:mod:`edgeseg.calibration.agreement`).
   Labelled data (a dataset root): the mIoU of both against the labels; a drop of more than
   ``max_drop`` points fails the export. Unlabelled data: the consistency mIoU of INT8 scored
   against FP32's predictions; below ``min_consistency`` fails it. A failed check writes
   nothing but the report.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgeseg.calibration.agreement import Agreement, agreement, class_maps, labelled_miou
from edgeseg.calibration.cache import load_images
from edgeseg.calibration.quantize import DEFAULT_METHOD, quantizable_layers, quantize_int8
from edgeseg.calibration.readers import resolve_source
from edgeseg.calibration.sensitivity import (
    LayerSensitivity,
    format_sensitivity,
    layer_sensitivity,
    sensitivity_record,
)
from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.files import atomic_write_bytes
from edgeseg.preprocess import normalize

#: Gate with labels: the largest mIoU drop, in points, INT8 may cost on the held-out images.
DEFAULT_MAX_DROP = 1.0
#: Gate without labels: the lowest consistency mIoU. Near-tie pixels flip freely without costing
#: accuracy (docs/int8.md: 0.75-0.8 on CamVid models that lose no mIoU against labels), so this
#: only catches a broken quantization, not a small loss.
DEFAULT_MIN_CONSISTENCY = 0.5
DEFAULT_COUNT = 300
#: Below this many images none is held out: all calibrate and all check.
HOLDOUT_MIN_IMAGES = 8
REPORT_JSON = "int8_report.json"
REPORT_PNG = "int8_sensitivity.png"


@dataclass(frozen=True)
class Int8Options:
    """``edgeseg export`` INT8 settings (the ``--calib-*``, ``--keep-float``, ``--report``
    flags)."""

    data: str | Path
    method: str = DEFAULT_METHOD
    count: int = DEFAULT_COUNT
    split: str = "train"
    keep_float: int = 0
    report: bool = False
    max_drop: float = DEFAULT_MAX_DROP
    min_consistency: float = DEFAULT_MIN_CONSISTENCY
    use_cache: bool = True


@dataclass
class Int8Result:
    """The quantized graph and how it was made and checked."""

    model: onnx.ModelProto
    source: str
    calibration_images: int
    check: Agreement
    kept_float: list[str] = field(default_factory=list)
    sensitivity: list[LayerSensitivity] = field(default_factory=list)
    from_cache: bool = False
    #: With labelled data: {"fp32_miou", "int8_miou", "drop_points"} on the held-out images.
    labelled: dict[str, float] | None = None

    def record(self, options: Int8Options) -> dict[str, Any]:
        return {
            "method": options.method,
            "source": self.source,
            "calibration_images": self.calibration_images,
            "from_cache": self.from_cache,
            "check": vars(self.check),
            "labelled": self.labelled,
            "max_drop": options.max_drop,
            "min_consistency": options.min_consistency,
            "kept_float": self.kept_float,
            "sensitivity": sensitivity_record(self.sensitivity),
        }


def holdout_split(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(calibration indices, check indices): every k-th image checks, 4 to 32 of them. Below 8
    images there is nothing to spare and all of them serve both (the result says so)."""
    indices = np.arange(count)
    if count < HOLDOUT_MIN_IMAGES:
        return indices, indices
    held = max(4, min(32, count // 8))
    check = np.unique(np.linspace(0, count - 1, held).round().astype(int))
    return np.setdiff1d(indices, check), check


def quantize_checked(
    portable: onnx.ModelProto,
    card: ModelCard,
    options: Int8Options,
    report_dir: Path | None = None,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
    progress: bool = True,
) -> Int8Result:
    """Steps 1-5 of the module doc. Raises EdgesegError (one line) when the check fails; the
    report (with ``report`` or ``keep_float``) is written to ``report_dir`` first, since it is
    what tells the user which layers to keep in float."""
    layers = quantizable_layers(portable)
    if options.keep_float < 0 or options.keep_float >= len(layers):
        raise EdgesegError(
            f"--keep-float must be between 0 and {len(layers) - 1} (the model has {len(layers)} "
            f"quantizable layers), got {options.keep_float}"
        )
    if not 0 <= options.min_consistency <= 1:
        raise EdgesegError(
            f"--int8-min-consistency must be in [0, 1], got {options.min_consistency}"
        )
    if options.max_drop < 0:
        raise EdgesegError(f"--int8-max-drop must be at least 0, got {options.max_drop}")
    source = resolve_source(options.data, options.count, options.split)
    log(f"INT8 calibration data: {source.description}")
    images, hit = load_images(
        source, card.input_hw, use_cache=options.use_cache, progress=progress, warn=warn
    )
    inputs = np.stack([normalize(image, card) for image in images])
    calibrate_on, check_on = holdout_split(len(inputs))
    if len(inputs) < HOLDOUT_MIN_IMAGES:
        warn(f"only {len(inputs)} images: the INT8 check runs on the calibration images themselves")
    check_inputs = inputs[check_on]
    reference = class_maps(portable, check_inputs)
    with tempfile.TemporaryDirectory(prefix="edgeseg-ranges-") as tmp:
        ranges = Path(tmp) / "ranges.json"
        log(f"calibrating ({options.method}) on {len(calibrate_on)} images ...")
        model = quantize_int8(
            portable, inputs[calibrate_on], method=options.method, ranges_cache=ranges
        )
        sensitivity: list[LayerSensitivity] = []
        kept: list[str] = []
        if options.report or options.keep_float:
            sensitivity = layer_sensitivity(
                portable, options.method, ranges, check_inputs, reference, card.num_classes,
                progress,
            )  # fmt: skip
            log("INT8 sensitivity, worst layers first:\n" + format_sensitivity(sensitivity))
            kept = [item.layer for item in sensitivity[: options.keep_float]]
            if kept:
                log(f"keeping in float: {', '.join(kept)}")
                model = quantize_int8(
                    portable, None, method=options.method, keep_float=kept, ranges_cache=ranges
                )
    predicted = class_maps(model, check_inputs)
    check = agreement(reference, predicted, card.num_classes)
    result = Int8Result(model, source.description, len(calibrate_on), check, kept, sensitivity, hit)
    log(f"INT8 against FP32: {check.describe()}")
    # Labels line up with the images only when every image could be read.
    aligned = len(images) == len(source.files)
    labels = source.read_labels(check_on, card.input_hw) if aligned else None
    if labels is not None:
        ignore = source.spec.ignore_index
        fp32_miou = labelled_miou(reference, labels, card.num_classes, ignore)
        int8_miou = labelled_miou(predicted, labels, card.num_classes, ignore)
        drop = 100 * (fp32_miou - int8_miou)
        result.labelled = {"fp32_miou": fp32_miou, "int8_miou": int8_miou, "drop_points": drop}
        log(
            f"against the labels of those images (at {card.input_hw[0]}x{card.input_hw[1]}): "
            f"FP32 mIoU {fp32_miou:.4f}, INT8 {int8_miou:.4f} ({-drop:+.2f} points)"
        )
    if report_dir is not None and sensitivity:
        write_report(result, options, report_dir)
        log(f"wrote {report_dir / REPORT_JSON} and {report_dir / REPORT_PNG}")
    failure = _check_failure(result, options)
    if failure:
        raise EdgesegError(
            f"{failure}; nothing was written. Try another --calib-method, more --calib-count "
            "images like the deployment's, or --keep-float N (--report lists the most sensitive "
            "layers)"
        )
    return result


def _check_failure(result: Int8Result, options: Int8Options) -> str:
    """Why the check fails, or ''. Labels decide when there are any (module doc, step 5)."""
    if result.labelled is not None:
        drop = result.labelled["drop_points"]
        if drop > options.max_drop:
            return f"INT8 loses {drop:.2f} mIoU points against FP32, more than {options.max_drop}"
        return ""
    if result.check.consistency_miou < options.min_consistency:
        return (
            f"INT8 consistency mIoU {result.check.consistency_miou:.4f} is below "
            f"{options.min_consistency}"
        )
    return ""


def write_report(result: Int8Result, options: Int8Options, folder: Path) -> None:
    """``int8_report.json`` and the per-layer bar chart."""
    from edgeseg.plots import plot_layer_sensitivity

    atomic_write_bytes(folder / REPORT_JSON, json.dumps(result.record(options), indent=1).encode())
    plot_layer_sensitivity(
        [f"{item.layer} ({item.weight})" for item in result.sensitivity],
        [item.loss for item in result.sensitivity],
        folder / REPORT_PNG,
        title=f"INT8 per-layer sensitivity ({options.method}, {result.check.images} images)",
    )
