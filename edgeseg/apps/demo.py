"""``edgeseg demo``: the whole toolkit on the bundled model, with no data and no GPU.

One call walks every stage a user would: the bundled checkpoint (its card says what it is) ->
ONNX and INT8 ONNX with parity checks (:func:`edgeseg.export.pipeline.export_checkpoint`) ->
the runtime (:func:`edgeseg.runtime.run.run_pipeline`) over a clip once per backend and
precision -> an overlay video and a table of FPS and per-stage milliseconds. Without
``--source`` the clip is one edgeseg draws itself (:mod:`edgeseg.apps.synthetic_clip`), said so
plainly in the output, in ``demo.json`` and on every frame.

Sized for a 2-core CPU: 120 frames at 360x480 through a 216x288 model take several seconds per
backend; the export with INT8 calibration dominates. The total stays well under 5 minutes.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeseg import __version__
from edgeseg.errors import EdgesegError
from edgeseg.files import atomic_write_bytes

if TYPE_CHECKING:
    from edgeseg.card import ModelCard
    from edgeseg.export.pipeline import ExportResult
    from edgeseg.runtime.frames import FrameSource
    from edgeseg.runtime.results import FrameResult, Sink
    from edgeseg.runtime.segmenter import Segmenter
    from edgeseg.runtime.stats import PipelineStats, StatsSnapshot

DEFAULT_OUT = "runs/demo"
DEFAULT_FRAMES = 120
DEFAULT_CALIB_COUNT = 60
CLIP_NAME = "synthetic_clip.mp4"
OVERLAY_NAME = "overlay.mp4"
SUMMARY_NAME = "demo.json"
#: Per-stage columns of the table: runtime stage name -> column heading.
STAGE_COLUMNS = {
    "capture": "decode",
    "preprocess": "pre",
    "infer": "infer",
    "postprocess": "post",
    "render": "draw",
}
TENSORRT_MISSING = "TensorRT is not installed (JetPack, or pip install tensorrt, plus a GPU)"


@dataclass
class DemoRun:
    """One row of the table: a backend and precision, measured or skipped with a reason."""

    backend: str  # "ONNX Runtime", "PyTorch", "TensorRT"
    precision: str  # "FP32", "INT8", "FP16"
    artifact: str = ""
    device: str = ""
    stats: StatsSnapshot | None = None  # once measured
    skipped: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"backend": self.backend, "precision": self.precision}
        if self.skipped:
            return {**data, "skipped": self.skipped}
        return {**data, "artifact": self.artifact, "device": self.device, **self.stats.to_dict()}


@dataclass
class DemoResult:
    """What :func:`run_demo` did: the rows, the files it wrote, how long it took."""

    out_dir: Path
    clip: Path
    synthetic: bool
    runs: list[DemoRun]
    overlay: Path | None
    summary: Path
    wall_s: float


def probe_video(path: str | Path) -> tuple[int, tuple[int, int]]:
    """Check that ``path`` is a video OpenCV decodes; returns (frame count from the header,
    (height, width)). One-line EdgesegError otherwise, before any slow step runs."""
    import cv2  # here, so that importing this module (edgeseg --help) stays light

    video = Path(path)
    if not video.exists():
        raise EdgesegError(f"--source {video} not found")
    if not video.is_file():
        raise EdgesegError(f"--source {video} is not a file; give a video file")
    capture = cv2.VideoCapture(str(video))
    try:
        ok, image = capture.read() if capture.isOpened() else (False, None)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        capture.release()
    if not ok or image is None:
        raise EdgesegError(f"cannot read video {video}: not a video OpenCV can decode")
    return count, image.shape[:2]


def format_table(runs: list[DemoRun]) -> str:
    """The FPS table: one row per backend and precision, skipped rows with their reason."""
    head = ["backend", "precision", "device", "frames", "FPS", *STAGE_COLUMNS.values()]
    rows = []
    for run in runs:
        if run.skipped:
            rows.append([run.backend, run.precision, f"skipped: {run.skipped}"])
            continue
        s = run.stats
        rows.append(
            [
                run.backend,
                run.precision,
                run.device,
                str(s.frames_done),
                f"{s.mean_fps:.1f}",
                *(f"{s.stage_ms[k]:.1f}" if k in s.stage_ms else "-" for k in STAGE_COLUMNS),
            ]
        )
    widths = [len(h) for h in head]
    for row in rows:
        if len(row) == len(head):
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: list[str]) -> str:
        text = [
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ]
        return "  ".join(text).rstrip()

    return "\n".join([line(head), *(line(r) for r in rows)])


class _DrawOnly:
    """A sink that asks for the overlay and drops it: every row then does the same drawing work
    as the one that writes ``overlay.mp4`` (less the encoding), so their FPS compare."""

    stop_requested = False
    needs_render = True

    def write(self, result: FrameResult) -> None:
        pass

    def finish(self, stats: PipelineStats) -> None:
        pass

    def close(self) -> None:
        pass


def _export(
    checkpoint: Path, export_dir: Path, clip: Path, calib_count: int, log: Callable[[str], None]
) -> tuple[ExportResult, str]:
    """ONNX + INT8 ONNX with parity checks; returns (ExportResult, why INT8 is missing or "").

    ``edgeseg export --int8`` refuses an INT8 model whose predictions agree with FP32 less than
    its gate; the demo reports that agreement instead of enforcing it, because its clip (often
    the synthetic one) is not data anyone deploys on: the point is to show INT8 running and
    what the check measures. Should the INT8 step fail for another reason, the demo exports
    FP32 alone and reports the INT8 row as skipped with that reason, rather than stopping.
    """
    from edgeseg.calibration.settings import DEFAULT_METHOD, Int8Options
    from edgeseg.export import ExportOptions, export_checkpoint

    int8 = Int8Options(data=clip, method=DEFAULT_METHOD, count=calib_count, min_agreement=0.0)
    try:
        result = export_checkpoint(ExportOptions(checkpoint, export_dir, int8=int8), log=log)
    except EdgesegError as exc:
        log(f"        INT8 export failed ({exc}); exporting FP32 alone")
        result = export_checkpoint(ExportOptions(checkpoint, export_dir), log=log)
        return result, f"INT8 export failed: {exc}"
    from edgeseg.precision_gate import gate_failure

    if gate_failure("int8", result.int8.gate):
        log(
            f"        INT8 on this clip: {result.int8.gate.describe()}, below what edgeseg "
            "export --int8 requires: the demo runs it anyway; a deployment calibrates on its "
            "own data"
        )
    return result, ""


def _tensorrt_engine(export: ExportResult, log: Callable[[str], None]) -> tuple[Path | None, str]:
    """Build an FP16 engine from the export's TensorRT graph when TensorRT is here, else say
    why not (the row is then skipped with that reason)."""
    if importlib.util.find_spec("tensorrt") is None:
        return None, TENSORRT_MISSING
    from edgeseg.export import ExportOptions, export_checkpoint

    options = ExportOptions(export.files["trt_onnx"], export.out_dir, format="engine", fp16=True)
    try:
        built = export_checkpoint(options, log=log)
    except EdgesegError as exc:
        return None, str(exc)
    return built.files["engine"], ""


def _measure(
    run: DemoRun,
    backend: str,
    clip: Path,
    frames: int,
    overlay: Path | None,
    progress: Callable[[int], Any] | None,
) -> None:
    from edgeseg.runtime.options import OutputOptions
    from edgeseg.runtime.run import run_pipeline

    sinks: list[Sink | _DrawOnly] = [] if overlay is not None else [_DrawOnly()]
    if progress is not None:
        sinks.append(progress(frames))

    def on_ready(segmenter: Segmenter, _source: FrameSource) -> None:
        run.device = segmenter.device

    summary = run_pipeline(
        run.artifact,
        str(clip),
        backend=backend,
        outputs=OutputOptions(targets=(str(overlay),) if overlay is not None else ()),
        max_frames=frames,
        extra_sinks=sinks,
        on_ready=on_ready,
    )
    run.stats = summary.stats


def _describe_model(card: ModelCard, metrics: dict, splits: str, checkpoint: Path) -> list[str]:
    width = card.arch_args.get("width")
    arch = f"{card.architecture}" + (f" width {width}" if width is not None else "")
    trained = f"trained on {card.dataset or 'an unnamed dataset'} {splits}".rstrip()
    if isinstance(metrics.get("miou"), int | float):
        trained += f", val mIoU {metrics['miou']:.3f}"
    elif "+" in splits:
        trained += " (no held-out split: its figures are in docs/training.md)"
    return [
        f"model   the bundled default: {arch}, {card.num_classes} classes, input "
        f"{card.input_hw[0]}x{card.input_hw[1]} ({checkpoint.name})",
        f"        {trained}; licence: {card.license or 'not stated'}",
        "        a demo of the toolkit, not a production model: train and export your own "
        "(README, 'The bundled model')",
    ]


def _prepare_clip(
    out: Path, source: str | Path | None, frames: int, log: Callable[[str], None]
) -> Path:
    """The clip to run: ``source``, or a synthetic one drawn into ``out`` (said so plainly)."""
    if source is not None:
        log(f"clip    {source} (the first {frames} frames)")
        return Path(source)
    from edgeseg.apps.synthetic_clip import write_synthetic_clip

    clip = out / CLIP_NAME
    log(f"clip    SYNTHETIC: drawing {frames} frames of a made-up road scene into {clip}")
    write_synthetic_clip(clip, frames=frames)
    log(
        "        not real footage: it shows the pipeline works, not how well the model "
        "segments; give --source VIDEO for your own"
    )
    return clip


def _run_all(
    runs: list[DemoRun],
    clip: Path,
    frames: int,
    out: Path,
    progress: Callable[[int], Any] | None,
    log: Callable[[str], None],
) -> Path | None:
    """Measure every row that is not skipped; the first writes ``overlay.mp4``."""
    backends = {"ONNX Runtime": "onnxruntime", "PyTorch": "torch", "TensorRT": "tensorrt"}
    overlay: Path | None = None
    for run in runs:
        if run.skipped:
            continue
        target = out / OVERLAY_NAME if overlay is None else None
        log(f"run     {run.backend} {run.precision}: {Path(run.artifact).name}")
        _measure(run, backends[run.backend], clip, frames, target, progress)
        overlay = overlay or target
    return overlay


def _summary(
    card: ModelCard,
    metrics: dict,
    splits: str,
    checkpoint: Path,
    clip: Path,
    synthetic: bool,
    frames: int,
    calib_count: int,
    export: ExportResult,
) -> dict[str, Any]:
    """``demo.json`` without the rows: what ran, on what, from which files."""
    return {
        "edgeseg_version": __version__,
        "model": {
            "checkpoint": str(checkpoint),
            "architecture": card.architecture,
            "arch_args": card.arch_args,
            "dataset": card.dataset,
            "license": card.license,
            "weights_sha256": card.weights_sha256,
            "trained_on": splits,
            "val_miou": metrics.get("miou"),  # None when val was trained on (no held-out figure)
            "note": "a demo of the toolkit, not a production model",
        },
        "clip": {"path": str(clip), "synthetic": synthetic, "frames": frames},
        "export": {
            "files": {role: str(path) for role, path in export.files.items()},
            "parity": [
                {**dataclasses.asdict(p), "passed": p.passed} for p in getattr(export, "parity", [])
            ],
            "int8_calibration": f"{calib_count} frames of the demo clip",
            "int8_check": vars(export.int8.check) if getattr(export, "int8", None) else None,
        },
    }


def check_demo_inputs(source: str | Path | None, frames: int, calib_count: int) -> None:
    """EdgesegError, before anything is written or a run folder is claimed, for a missing or
    unreadable ``source``, counts below 1, or missing torch/onnx (naming the extra)."""
    from edgeseg.apps.default_model import require_export_tools

    if frames < 1 or calib_count < 1:
        raise EdgesegError("--frames and --calib-count must be at least 1")
    if source is not None:
        probe_video(source)
    require_export_tools()


def run_demo(
    out_dir: str | Path = DEFAULT_OUT,
    *,
    source: str | Path | None = None,
    frames: int = DEFAULT_FRAMES,
    calib_count: int = DEFAULT_CALIB_COUNT,
    log: Callable[[str], None] = print,
    progress: Callable[[int], Any] | None = None,
) -> DemoResult:
    """Export the bundled model, run it per backend over a clip, write overlay and summary.

    ``source``: a video file (default: a synthetic clip of ``frames`` frames written to
    ``out_dir``); ``frames``: frames run through each backend (the first ``frames`` of
    ``source``); ``calib_count``: frames of the clip INT8 calibration reads. ``progress``, given
    the frame count, returns a runtime sink that shows progress (the CLI's bar). Writes
    ``out_dir/export/``, ``overlay.mp4`` and ``demo.json``. Raises EdgesegError for a missing or
    unreadable ``source`` or a missing torch/onnx, before any slow step.
    """
    from edgeseg.apps.default_model import default_card, default_checkpoint

    started = time.perf_counter()
    check_demo_inputs(source, frames, calib_count)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = default_checkpoint()
    card, metrics, splits = default_card()
    for line in _describe_model(card, metrics, splits, checkpoint):
        log(line)

    clip = _prepare_clip(out, source, frames, log)
    export_dir = out / "export"
    log(f"export  {checkpoint.name} -> {export_dir}/ (ONNX, INT8 ONNX; parity against PyTorch)")
    log(
        f"        INT8 is calibrated on {calib_count} frames of this clip itself: fine for a "
        "demo; a real deployment calibrates on its own data"
    )
    export, int8_missing = _export(checkpoint, export_dir, clip, calib_count, log)

    runs = [
        DemoRun("ONNX Runtime", "FP32", str(export.files["onnx"])),
        DemoRun(
            "ONNX Runtime", "INT8", str(export.files.get("int8_onnx", "")), skipped=int8_missing
        ),
        DemoRun("PyTorch", "FP32", str(checkpoint)),
    ]
    engine, trt_missing = _tensorrt_engine(export, log)
    runs.append(DemoRun("TensorRT", "FP16", str(engine or ""), skipped=trt_missing))

    overlay = _run_all(runs, clip, frames, out, progress, log)
    log("")
    log(format_table(runs))
    log(
        "FPS: frames per second through the whole pipeline; decode..draw: mean ms per frame in "
        "each stage (they run in parallel threads, so the slowest, not their sum, sets the FPS)"
    )
    wall_s = time.perf_counter() - started
    summary = out / SUMMARY_NAME
    data = _summary(
        card, metrics, splits, checkpoint, clip, source is None, frames, calib_count, export
    )
    data.update(runs=[run.to_dict() for run in runs], overlay=overlay and str(overlay))
    data["wall_s"] = round(wall_s, 1)
    atomic_write_bytes(summary, (json.dumps(data, indent=2) + "\n").encode())
    log(f"wrote {overlay} and {summary}" if overlay else f"wrote {summary}")
    log(f"total {wall_s:.0f} s")
    return DemoResult(out, clip, source is None, runs, overlay, summary, wall_s)
