"""The INT8 step of ``edgeseg export --int8``: read, calibrate, quantize, analyse, check.

1. Resolve ``--calib-data`` and decode up to ``--calib-count`` images through the runtime's
   preprocessing (cached, :mod:`edgeseg.calibration.cache`).
2. Hold out every k-th image (about one in eight, 4 to 32 of them) for the check; calibrate on
   the rest. Checking on images the ranges were computed from would flatter the result.
3. Quantize (:func:`edgeseg.calibration.quantize.quantize_int8`), keeping ONNX Runtime's range
   file so that step 4 re-quantizes without another calibration pass.
4. With ``report`` or ``keep_float``: the per-layer analysis, and the ``keep_float`` worst layers
   left in float.
5. The check, INT8 against FP32 on the held-out images, by the gate FP16 exports pass too
   (:mod:`edgeseg.precision_gate`): agreement on the pixels the FP32 model decides below
   ``min_agreement`` fails the export, and with labelled data (a dataset root) so does an mIoU
   drop of more than ``max_drop`` points against the labels. The consistency mIoU
   (:mod:`edgeseg.calibration.agreement`) is reported, not gated. A failed check writes
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

from edgeseg.backends.runner import run_onnx
from edgeseg.calibration.agreement import Agreement, agreement, class_maps, labelled_miou
from edgeseg.calibration.cache import load_images
from edgeseg.calibration.quantize import quantizable_layers, quantize_int8
from edgeseg.calibration.readers import CalibrationSource
from edgeseg.calibration.sensitivity import (
    LayerSensitivity,
    format_sensitivity,
    layer_sensitivity,
    sensitivity_record,
)
from edgeseg.calibration.settings import Int8Options, check_options
from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.files import atomic_write_bytes
from edgeseg.onnx_graph import logits_graph
from edgeseg.precision_gate import decided_agreement, gate_failure
from edgeseg.preprocess import normalize

#: Below this many images none is held out: all calibrate and all check.
HOLDOUT_MIN_IMAGES = 8
REPORT_JSON = "int8_report.json"
REPORT_PNG = "int8_sensitivity.png"


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
    #: The gate's figure: agreement on the pixels the FP32 model decides.
    gate: Any = None  # edgeseg.precision_gate.Agreement
    #: With labelled data: {"fp32_miou", "int8_miou", "drop_points"} on the held-out images.
    labelled: dict[str, float] | None = None

    def record(self, options: Int8Options) -> dict[str, Any]:
        return {
            "method": options.method,
            "source": self.source,
            "calibration_images": self.calibration_images,
            "from_cache": self.from_cache,
            "check": vars(self.check),
            "gate": vars(self.gate) if self.gate is not None else None,
            "labelled": self.labelled,
            "max_drop": options.max_drop,
            "min_agreement": options.min_agreement,
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
    source: CalibrationSource | None = None,
) -> Int8Result:
    """Steps 1-5 of the module doc. Raises EdgesegError (one line) when the check fails; the
    report (with ``report`` or ``keep_float``) is written to ``report_dir`` first, since it is
    what tells the user which layers to keep in float. ``source``: ``options.data`` already
    resolved by :func:`check_options`."""
    layers = quantizable_layers(portable)
    if options.keep_float < 0 or options.keep_float >= len(layers):
        raise EdgesegError(
            f"--keep-float must be between 0 and {len(layers) - 1} (the model has {len(layers)} "
            f"quantizable layers), got {options.keep_float}"
        )
    if source is None:
        source = check_options(options)
    log(f"INT8 calibration data: {source.description}")
    images, hit = load_images(
        source, card.input_hw, use_cache=options.use_cache, progress=progress, warn=warn
    )
    inputs = np.stack([normalize(image, card) for image in images])
    calibrate_on, check_on = holdout_split(len(inputs))
    if len(inputs) < HOLDOUT_MIN_IMAGES:
        warn(f"only {len(inputs)} images: the INT8 check runs on the calibration images themselves")
    check_inputs = inputs[check_on]
    fp32_logits = run_onnx(logits_graph(portable), check_inputs)  # margins for the gate
    reference = fp32_logits.argmax(axis=1)
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
    result.gate = decided_agreement(fp32_logits, predicted, reference)
    log(
        f"INT8 against FP32: {result.gate.describe()}; consistency mIoU "
        f"{check.consistency_miou:.4f}"
    )
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
        raise EdgesegError(f"nothing was written: {failure}")
    return result


def _check_failure(result: Int8Result, options: Int8Options) -> str:
    """Why the check fails, or '': the shared precision gate (module doc, step 5)."""
    drop = result.labelled["drop_points"] if result.labelled is not None else None
    return gate_failure("int8", result.gate, options.min_agreement, drop, options.max_drop)


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
