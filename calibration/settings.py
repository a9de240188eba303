"""INT8 settings (``edgeseg export``'s ``--calib-*`` flags) and their checks, importable
without onnx or onnxruntime: the export checks them before any slow import or step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeseg.calibration.readers import CalibrationSource, resolve_source
from edgeseg.errors import EdgesegError
from edgeseg.precision_gate import DEFAULT_MAX_DROP as GATE_MAX_DROP
from edgeseg.precision_gate import MIN_AGREEMENT

METHODS = ("entropy", "percentile", "minmax")
#: Percentile by measurement (docs/int8.md): on the bundled CamVid model it lost 0.06 mIoU points
#: on held-out images, min-max 0.17, entropy 11 (its KL threshold clips post-ReLU tensors, whose
#: histograms pile up at zero, to a third of their range).
DEFAULT_METHOD = "percentile"
#: Gate with labels: the largest mIoU drop, in points, INT8 may cost on the held-out images.
DEFAULT_MAX_DROP = GATE_MAX_DROP
#: Gate with or without labels: the lowest agreement with FP32 on the pixels FP32 decides
#: (the FP16 export's figure; docs/export.md, "One accuracy gate", gives the measurements).
DEFAULT_MIN_AGREEMENT = MIN_AGREEMENT["int8"]
DEFAULT_COUNT = 300


@dataclass(frozen=True)
class Int8Options:
    """``edgeseg export`` INT8 settings (the ``--calib-*``, ``--keep-float``, ``--report``
    flags). ``data`` None: the dataset the model card records (the export planner finds it)."""

    data: str | Path | None = None
    method: str = DEFAULT_METHOD
    count: int = DEFAULT_COUNT
    split: str = "train"
    keep_float: int = 0
    report: bool = False
    max_drop: float = DEFAULT_MAX_DROP
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    use_cache: bool = True


def check_options(options: Int8Options) -> CalibrationSource:
    """The settings that need no model, checked, and ``data`` resolved: fast, so a mistake is
    reported before any slow step (an export calls this before it exports the ONNX)."""
    if not 0 <= options.min_agreement <= 1:
        raise EdgesegError(f"--int8-min-agreement must be in [0, 1], got {options.min_agreement}")
    if options.max_drop < 0:
        raise EdgesegError(f"--int8-max-drop must be at least 0, got {options.max_drop}")
    if options.data is None:
        raise EdgesegError("INT8 calibration needs data: pass --calib-data")
    return resolve_source(options.data, options.count, options.split)
