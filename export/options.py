"""``edgeseg export``'s options: one object from the command line to the library, checked first.

The CLI parses its flags once into :class:`ExportOptions` (INT8 settings in
:class:`~edgeseg.calibration.settings.Int8Options`); :func:`plan_export` checks it before any
slow step or import (no torch, no onnx): a missing source, an unknown format, an option that does
not apply, a missing ``--calib-data`` folder are each one line within a fraction of a second.
:func:`edgeseg.export.pipeline.export_checkpoint` takes the options or the checked plan.

Without ``--calib-data``, INT8 calibrates on the dataset the checkpoint records (its training
configuration's ``data``, or ``--data`` in the card's training command) when that folder is on
disk; else the one-line error names ``--calib-data``.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgeseg.backends.tensorrt import check_unpool
from edgeseg.calibration.readers import CalibrationSource, is_dataset_root
from edgeseg.calibration.settings import Int8Options, check_options
from edgeseg.errors import EdgesegError

FORMATS = ("onnx", "engine")
#: Where an export goes without ``out``, relative to the working directory.
DEFAULT_OUT = Path("runs/export")


@dataclass(frozen=True)
class ExportOptions:
    """What one export is asked to do; every field is a flag of ``edgeseg export``.

    ``source``: a checkpoint, or an ONNX written by edgeseg (to build its engine where torch is
    absent). ``out``: the folder written (None: :data:`DEFAULT_OUT`, or the next free name when
    that holds an earlier export; never the source tree's ``export/``). ``format``: ``onnx``,
    or ``engine`` for a TensorRT engine too. ``tolerance``: the FP32 gate on the mean |logit
    difference| relative to the largest logit (None: the default of
    :data:`edgeseg.export.parity.DEFAULT_GATES`). ``int8``: INT8 settings, None for no INT8.
    """

    source: Path
    out: Path | None = None
    format: str = "onnx"
    unpool: str = "plugin"
    fp16: bool = False
    dynamic: bool = False
    argmax: bool = False
    opset: int | None = None
    check: bool = True
    tolerance: float | None = None
    workspace_mb: int | None = None
    samples: int = 2
    int8: Int8Options | None = None
    max_batch: int | None = None  # the engine profile's largest batch (dynamic graphs)

    #: Derived: the source is an edgeseg ONNX; an engine is asked for.
    from_onnx: bool = field(init=False)
    engine: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", Path(self.source))
        if self.out is not None:
            object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "from_onnx", self.source.suffix.lower() == ".onnx")
        object.__setattr__(self, "engine", self.format == "engine")


@dataclass(frozen=True)
class ExportPlan:
    """Checked options and what checking them found: the calibration data, resolved."""

    options: ExportOptions
    calibration: CalibrationSource | None = None


def plan_export(options: ExportOptions, log: Callable[[str], None] = print) -> ExportPlan:
    """Check ``options`` before any slow step; one-line EdgesegError for a mistake."""
    if options.format not in FORMATS:
        raise EdgesegError(
            f"unknown format {options.format!r}; choose one of: {', '.join(FORMATS)}"
        )
    source = options.source
    if not source.is_file():
        kind = "ONNX file" if options.from_onnx else "checkpoint"
        raise EdgesegError(f"{kind} {source} not found")
    if options.from_onnx and not options.engine:
        raise EdgesegError(f"{source} is already ONNX; use --format engine to build an engine")
    if options.from_onnx and (
        options.dynamic or options.argmax or options.opset is not None or options.int8
    ):
        raise EdgesegError(
            "--dynamic, --argmax, --opset and --int8 apply when exporting a checkpoint; "
            f"{source.name} keeps the options it was exported with"
        )
    if options.opset is not None:
        from edgeseg.export.onnx_io import check_opset

        check_opset(int(options.opset))
    check_unpool(options.unpool)
    if options.unpool != "plugin" and not options.engine:
        raise EdgesegError(
            f"--unpool {options.unpool} chooses how an engine unpools; add --format engine"
        )
    if options.max_batch is not None and (not options.engine or options.max_batch < 1):
        raise EdgesegError(
            f"--max-batch {options.max_batch}: the largest batch of an engine's profile, at "
            "least 1; it applies with --format engine (and a dynamic graph: --dynamic)"
        )
    if options.samples < 1:
        raise EdgesegError(f"samples must be at least 1, got {options.samples}")
    calibration = None
    if options.int8 is not None:
        int8 = options.int8
        if int8.data is None:
            int8 = dataclasses.replace(int8, data=recorded_dataset(source, log))
            options = dataclasses.replace(options, int8=int8)
        calibration = check_options(int8)
    _check_outputs(options)
    return ExportPlan(options, calibration)


def _check_outputs(options: ExportOptions) -> None:
    """No file the export writes may be the source or lie inside the calibration data
    (:func:`edgeseg.outputs.check_outputs`); an ONNX source the export builds from in place is
    read, not rewritten, so its own name is left out."""
    from edgeseg.calibration.int8 import REPORT_JSON, REPORT_PNG
    from edgeseg.export.forms import FILE_NAMES
    from edgeseg.outputs import check_outputs

    out = options.out or DEFAULT_OUT
    names = [*FILE_NAMES.values(), "model.engine.json", REPORT_JSON, REPORT_PNG]
    if options.from_onnx:
        names = [n for n in names if (out / n).resolve() != options.source.resolve()]
    calib = options.int8.data if options.int8 is not None else None
    check_outputs(
        {"the source": options.source, "--calib-data": calib}, {}, {"--out": (out, names)}
    )


def recorded_dataset(checkpoint: Path, log: Callable[[str], None] = print) -> Path:
    """The dataset ``checkpoint`` was trained on, when that folder is on disk (said in one
    line); else EdgesegError naming ``--calib-data``."""
    from edgeseg.checkpoint import read_checkpoint  # torch: only when the default is needed

    payload = read_checkpoint(checkpoint)
    candidates = [str((payload.get("config") or {}).get("data") or "")]
    candidates += _data_flags(str(payload["card"].get("training_command", "")))
    for text in dict.fromkeys(c for c in candidates if c):
        path = Path(text).expanduser()
        if path.is_dir() and is_dataset_root(path):
            log(f"INT8 calibration data: {path}, the dataset {checkpoint.name} was trained on")
            return path
    recorded = next((c for c in candidates if c), "")
    where = f" ({recorded} is not here)" if recorded else ""
    raise EdgesegError(
        f"--int8 needs --calib-data: the dataset {checkpoint.name} was trained on is not on "
        f"disk{where}; pass an image folder, a video or a dataset root like the deployment's"
    )


def _data_flags(command: str) -> list[str]:
    """Values of ``--data`` in a recorded command line (``--data X`` or ``--data=X``)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return []
    found: list[str] = []
    for index, word in enumerate(words):
        if word == "--data" and index + 1 < len(words):
            found.append(words[index + 1])
        elif word.startswith("--data="):
            found.append(word.split("=", 1)[1])
    return found
