"""edgeseg's runtime: class masks and overlays for images, video files, cameras and streams.

Installed as ``edgeseg.runtime``. Needs numpy, OpenCV and one inference engine (ONNX Runtime,
TensorRT, or PyTorch for checkpoints), never torch for ONNX files and engines.

>>> from edgeseg.runtime import Segmenter, overlay
>>> segmenter = Segmenter("model.onnx")            # the card inside says classes, palette, size
>>> mask = segmenter.predict(frame_bgr)             # (H, W) uint8 class indices
>>> shown = overlay(frame_bgr, mask, segmenter.card, alpha=0.5, legend=True)
>>> class_shares(mask, segmenter.card)              # {"Road": 0.41, "Sky": 0.17, ...}

Media by URI both ways: ``open_source("rtsp://cam/live")`` and ``open_output("rtp://host:5000")``
(one table of schemes each, :data:`SOURCE_SCHEMES` and :data:`OUTPUT_SCHEMES`).
``Pipeline(open_source("clip.mp4"), segmenter, [open_output("out.mp4")]).run()`` runs the threaded
capture -> inference -> render loop that ``edgeseg run`` uses; ``ServeSink(8080)`` among the sinks
serves it to a browser. See ``docs/runtime.md``.
"""

from edgeseg.masks import argmax_classes, resize_mask
from edgeseg.media import FLIP_METHODS
from edgeseg.runtime.cameras import CameraSettings, csi_pipeline
from edgeseg.runtime.frames import CorruptFrame, Frame, FrameSource, RetryPolicy, SourceLost
from edgeseg.runtime.options import (
    CameraOptions,
    EncodingOptions,
    OutputOptions,
    RenderOptions,
    ServeOptions,
)
from edgeseg.runtime.outputs import OUTPUT_SCHEMES, OutputContext, open_output
from edgeseg.runtime.overlay import (
    MODES,
    Renderer,
    colorize,
    draw_text,
    legend_image,
    overlay,
    palette_bgr,
    select_classes,
)
from edgeseg.runtime.pipeline import Pipeline
from edgeseg.runtime.realtime import PacedSource
from edgeseg.runtime.records import ClassSharesSink, StatsSink
from edgeseg.runtime.results import FrameResult, Sink
from edgeseg.runtime.run import RunSummary, run_pipeline
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.serve import ServeSink
from edgeseg.runtime.shares import class_shares
from edgeseg.runtime.sinks import DisplaySink, FramesSink, MaskSink, display_available, output_sink
from edgeseg.runtime.sources import SOURCE_SCHEMES, open_source
from edgeseg.runtime.stats import PipelineStats, StatsSnapshot
from edgeseg.runtime.video_sink import VideoSink

__all__ = [
    "FLIP_METHODS",
    "MODES",
    "OUTPUT_SCHEMES",
    "SOURCE_SCHEMES",
    "CameraOptions",
    "CameraSettings",
    "ClassSharesSink",
    "CorruptFrame",
    "DisplaySink",
    "EncodingOptions",
    "Frame",
    "FrameResult",
    "FrameSource",
    "FramesSink",
    "MaskSink",
    "OutputContext",
    "OutputOptions",
    "PacedSource",
    "Pipeline",
    "PipelineStats",
    "RenderOptions",
    "Renderer",
    "RetryPolicy",
    "RunSummary",
    "Segmenter",
    "ServeOptions",
    "ServeSink",
    "Sink",
    "SourceLost",
    "StatsSink",
    "StatsSnapshot",
    "VideoSink",
    "argmax_classes",
    "class_shares",
    "colorize",
    "csi_pipeline",
    "display_available",
    "draw_text",
    "legend_image",
    "open_output",
    "open_source",
    "output_sink",
    "overlay",
    "palette_bgr",
    "resize_mask",
    "run_pipeline",
    "select_classes",
]
