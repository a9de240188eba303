"""``run_pipeline``: what ``edgeseg run`` does, as one function an application can call.

It opens the model, the source (:func:`~edgeseg.runtime.sources.open_source`) and every output
(:func:`~edgeseg.runtime.outputs.open_output`), and runs a
:class:`~edgeseg.runtime.pipeline.Pipeline` to the end. What to do comes in option objects
(:mod:`edgeseg.runtime.options`: camera, render, outputs, serve). Everything the user can get
wrong (missing files, unknown classes, a display that does not exist, an output that would
overwrite an input) is checked before the first frame is read, so a mistake costs no waiting.

>>> from edgeseg.runtime.options import OutputOptions
>>> summary = run_pipeline("model.onnx", "clip.mp4",                    # doctest: +SKIP
...                        outputs=OutputOptions(targets=("overlay.mp4",), stats="s.jsonl"))
>>> summary.media   # {'source': 'OpenCV FFmpeg', 'overlay.mp4': 'H.264, GStreamer x264enc'}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeseg.errors import EdgesegError
from edgeseg.foreign_onnx import ForeignModelOptions
from edgeseg.runtime.cameras import CSI_SIZE_HW
from edgeseg.runtime.frames import FrameSource, RetryPolicy
from edgeseg.runtime.images import ImageFolderSource
from edgeseg.runtime.options import CameraOptions, OutputOptions, RenderOptions, ServeOptions
from edgeseg.runtime.outputs import OutputContext, open_output, output_path
from edgeseg.runtime.overlay import Renderer
from edgeseg.runtime.paths import check_run_paths
from edgeseg.runtime.pipeline import Pipeline
from edgeseg.runtime.realtime import PacedSource
from edgeseg.runtime.records import ClassSharesSink, StatsSink
from edgeseg.runtime.results import Sink
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.serve import ServeSink
from edgeseg.runtime.sinks import MaskSink, is_frames_folder
from edgeseg.runtime.sources import open_source
from edgeseg.runtime.stats import StatsSnapshot

DISPLAY_HW = (720, 1280)  # the most a hardware scaler delivers camera frames at for rendering


@dataclass(frozen=True)
class RunSummary:
    """The outcome of :func:`run_pipeline`: final stats, why it stopped, the backend, the files
    written, and ``media``: which path decoded the source and encoded each output."""

    stats: StatsSnapshot
    stopped_by: str  # end, max_frames, user, stop
    backend: str
    outputs: tuple[str, ...]
    media: dict[str, str] = field(default_factory=dict)


def run_pipeline(
    model: str | Path,
    source: str | int | FrameSource,
    *,
    camera: CameraOptions | None = None,
    render: RenderOptions | None = None,
    outputs: OutputOptions | None = None,
    serve: ServeOptions | None = None,
    backend: str = "auto",
    foreign: ForeignModelOptions | None = None,
    realtime: bool = False,
    max_frames: int | None = None,
    retry: RetryPolicy | None = None,
    extra_sinks: Sequence[Sink] = (),
    on_ready: Callable[[Segmenter, FrameSource], None] | None = None,
    on_event: Callable[[str], None] | None = None,
) -> RunSummary:
    """Segment every frame of ``source`` (a URI, :func:`~edgeseg.runtime.sources.open_source`,
    or an open :class:`FrameSource`) with ``model`` into ``outputs``.

    ``camera`` sets up a camera source; ``render`` how overlays are drawn; ``outputs`` the
    targets (URIs, :func:`~edgeseg.runtime.outputs.open_output`), masks, stats and class
    shares; ``serve`` the browser view; ``foreign``: the labels (and colours, size,
    normalisation) of a segmentation ONNX edgeseg did not export (:mod:`edgeseg.foreign_onnx`).
    ``realtime`` plays a file at its own rate, as a camera
    would (:class:`~edgeseg.runtime.realtime.PacedSource`). ``on_ready`` is called once the
    model and the source are open; ``on_event`` receives the outputs' notes (where to watch,
    an mp4v fallback), reconnection reports and warnings. Raises EdgesegError for user mistakes
    (outputs that would overwrite an input or each other, before the first frame), OSError
    naming the output that could not be written; a stop signal (Ctrl-C, SIGTERM, SIGHUP)
    propagates as :class:`~edgeseg.interrupts.Interrupted` after the outputs are finalised.
    """
    if max_frames is not None and max_frames < 1:
        raise EdgesegError(f"max_frames must be at least 1, got {max_frames}")
    outputs = outputs or OutputOptions()
    render = render or RenderOptions()
    segmenter = Segmenter(model, backend=backend, foreign=foreign)
    try:
        renderer = Renderer(
            segmenter.card, mode=render.mode, alpha=render.alpha, legend=render.legend,
            classes=render.classes,
        )  # fmt: skip
        opened = _open_run_source(source, camera, outputs, segmenter, realtime)
        sinks: list[Sink] = []
        try:
            check_run_paths(model, opened, _output_paths(outputs), _named_outputs(outputs))
            sinks = _open_sinks(segmenter, model, opened, outputs, serve, on_event)
            sinks.extend(extra_sinks)
            if on_ready is not None:
                on_ready(segmenter, opened)
            pipeline = Pipeline(
                opened, segmenter, sinks, renderer=renderer, max_frames=max_frames,
                retry=retry, on_event=on_event,
            )  # fmt: skip
        except BaseException:  # nothing ran: remove the sinks' temporary files, free the source
            for sink in sinks:
                sink.discard()
            opened.close()
            raise
        stats = pipeline.run()  # closes the sinks and the source itself, whatever happens
    finally:
        segmenter.close()
    written = [str(p) for p in _output_paths(outputs).values() if Path(p).exists()]
    media = _media(opened, sinks)
    return RunSummary(stats, pipeline.stopped_by, segmenter.describe(), tuple(written), media)


def _open_run_source(
    source: str | int | FrameSource,
    camera: CameraOptions | None,
    outputs: OutputOptions,
    segmenter: Segmenter,
    realtime: bool,
) -> FrameSource:
    """The source, opened; a hardware scaler (csi://) delivers camera frames at the model's
    input size when only masks and records are kept, at most 1280x720 when frames are shown,
    written or streamed (never above the capture size)."""
    if isinstance(source, FrameSource):
        opened = source
    else:
        opened = open_source(source, camera=camera, scale_hw=_scale_hw(camera, outputs, segmenter))
    return PacedSource(opened) if realtime else opened


def _scale_hw(
    camera: CameraOptions | None, outputs: OutputOptions, segmenter: Segmenter
) -> tuple[int, int] | None:
    capture = (camera.size_hw if camera else None) or CSI_SIZE_HW
    wanted = DISPLAY_HW if outputs.targets else tuple(segmenter.card.input_hw)
    if wanted[0] * wanted[1] >= capture[0] * capture[1]:
        return None  # nothing to shrink: frames come at the capture size
    return (int(wanted[0]), int(wanted[1]))


def _output_paths(outputs: OutputOptions) -> dict[str, str | Path]:
    """Label -> path of every output that writes files (for the overwrite checks)."""
    paths: dict[str, str | Path] = {}
    files = [t for t in outputs.targets if output_path(t) is not None]
    for number, target in enumerate(files, 1):
        paths["output" if len(files) == 1 else f"output {number}"] = str(output_path(target))
    named = {"masks": outputs.masks, "stats": outputs.stats, "class shares": outputs.class_shares}
    paths.update({label: path for label, path in named.items() if path is not None})
    return paths


def _named_outputs(outputs: OutputOptions) -> tuple[str, ...]:
    """The outputs whose files are named after the input frames (frames folders, masks)."""
    labels = [
        label
        for label, path in _output_paths(outputs).items()
        if label.startswith("output") and is_frames_folder(path)
    ]
    return (*labels, "masks")


def _open_sinks(
    segmenter: Segmenter,
    model: str | Path,
    source: FrameSource,
    outputs: OutputOptions,
    serve: ServeOptions | None,
    on_event: Callable[[str], None] | None,
) -> list[Sink]:
    """The sinks the options ask for, in the order they see each frame; on a mistake, those
    already made are discarded (no temporary file stays behind)."""
    extra: dict[str, Any] = {"model": str(model), "backend": segmenter.describe()}
    context = OutputContext(
        fps=source.fps, live=source.live, one_image=_one_image(source), card=segmenter.card,
        extra=extra, encoding=outputs.encoding, serve=serve,
        title=f"edgeseg - {Path(str(model)).name}",
    )  # fmt: skip
    targets = list(outputs.targets)
    if serve is not None:
        targets.append(serve_uri(serve.address))
    sinks: list[Sink] = []
    try:
        for target in targets:
            sinks.append(open_output(target, context))
        if outputs.masks is not None:
            sinks.append(MaskSink(outputs.masks))
        if outputs.stats is not None:
            sinks.append(StatsSink(outputs.stats, extra={**extra, "media": _media(source, sinks)}))
        if outputs.class_shares is not None:
            sinks.append(ClassSharesSink(outputs.class_shares, tuple(segmenter.card.class_names)))
    except BaseException:
        for sink in sinks:
            sink.discard()
        raise
    for sink in sinks:  # once every output is open: a mistake in a later one says only itself
        _announce(sink, on_event)
    return sinks


def serve_uri(address: str | int) -> str:
    """``8080`` -> ``http://127.0.0.1:8080``; ``0.0.0.0:8080`` -> ``http://0.0.0.0:8080``."""
    text = str(address).strip()
    return f"http://{text}" if ":" in text else f"http://127.0.0.1:{text}"


def _one_image(source: FrameSource) -> bool:
    inner = getattr(source, "source", source)  # a PacedSource wraps one
    return isinstance(inner, ImageFolderSource) and len(inner.files) == 1


def _media(source: FrameSource, sinks: Sequence[Sink]) -> dict[str, str]:
    """Which path decoded the source and encoded each output, for the stats and the report."""
    inner = getattr(source, "source", source)
    media = {"source": getattr(inner, "media", type(inner).__name__)}
    for sink in sinks:
        target = getattr(sink, "target", None)  # extra sinks may be any object with write()
        if target is not None:
            media[target] = getattr(sink, "description", type(sink).__name__)
    return media


def _announce(sink: Sink, on_event: Callable[[str], None] | None) -> None:
    if on_event is None:
        return
    if isinstance(sink, ServeSink):
        for line in sink.notes():
            on_event(line)
    elif getattr(sink, "note", None):
        on_event(str(sink.note))  # type: ignore[attr-defined]
