"""``edgeseg run``: segment a camera, video, image folder or stream in real time.

A thin layer over :func:`edgeseg.runtime.run.run_pipeline`; the runtime is imported inside the
command so ``edgeseg --help`` stays fast and torch-free.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from edgeseg.cli.foreign import foreign_model_options, foreign_options
from edgeseg.media import FLIP_METHODS, V4L2_FORMATS

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
MODES = ("overlay", "mask", "side-by-side")
LIVE_LINE_INTERVAL_S = 1.0


class _Progress:
    """A tqdm bar for file sources, a live stats line for cameras and streams (stderr).

    A sink by duck typing (the runtime's Sink interface), so this module need not import the
    runtime before the command runs. ``configure`` is called once the source is open.
    """

    stop_requested = False
    needs_render = False

    def __init__(self, max_frames: int | None) -> None:
        self.max_frames = max_frames
        self.total: int | None = None
        self.live = False
        self.bar: Any = None
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def configure(self, total: int | None, live: bool) -> None:
        limits = [n for n in (total, self.max_frames) if n]
        self.total = min(limits) if limits else None
        self.live = live

    def write(self, result: Any) -> None:
        now = time.perf_counter()
        if self.live:
            if now - self.last >= LIVE_LINE_INTERVAL_S:
                self.last = now
                line = result.stats.snapshot().line()
                if self.tty:
                    click.echo(f"\r{line}\x1b[K", err=True, nl=False)
                else:
                    click.echo(line, err=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="frame", file=sys.stderr, dynamic_ncols=True)
        self.bar.update(1)
        if now - self.last >= 0.5:
            self.last = now
            snap = result.stats.snapshot()
            self.bar.set_postfix_str(
                f"p50 {snap.latency_p50_ms:.0f} ms p95 {snap.latency_p95_ms:.0f} ms", refresh=False
            )

    def finish(self, stats: Any) -> None:
        pass

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.live and self.tty and self.last:
            click.echo("", err=True)


def _info(message: str) -> None:
    click.echo(f"edgeseg: {message}", err=True)


@click.command("run")
@foreign_options
@click.option(
    "--model",
    "model",
    type=click.Path(dir_okay=False),
    help="Model artifact: checkpoint (.pt), ONNX file (.onnx) or TensorRT engine "
    "(.engine with its .engine.json card).  [default: the bundled demo model, SegNet "
    "width 0.25 on CamVid: its ONNX file (no torch needed), or its checkpoint with "
    "--backend torch]",
)
@click.option(
    "--source",
    "source",
    required=True,
    multiple=True,
    help="csi://N (Jetson CSI camera), /dev/videoN, v4l2:///dev/videoN or a camera index, a "
    "video file or file://PATH, an image folder or glob, rtsp:// or http:// URL, or a "
    "GStreamer pipeline (contains '!'). Give it again, or a .streams file (one source per "
    "line), to run several streams through one model (NAME=SOURCE names a stream; "
    "docs/runtime.md, 'Several streams').",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="auto",
    show_default=True,
    help="Inference engine; auto picks by file type and the fastest device present.",
)
@click.option(
    "--output",
    "output",
    multiple=True,
    help="Where the overlay goes; repeat for several: a video file (.mp4/.mkv/.mov: H.264 "
    "where an encoder exists; .avi: MJPEG), an image (for an image source), a folder for JPEG "
    "frames (end with /), rtp://HOST:PORT, rtsp://@:PORT/PATH, display://0, http://@:PORT.",
)
@click.option(
    "--codec",
    type=click.Choice(("auto", "h264", "mjpeg", "mp4v")),
    default="auto",
    show_default=True,
    help="Video codec of video outputs; auto: H.264 where an encoder exists, else mp4v (said).",
)
@click.option(
    "--bitrate",
    "bitrate_kbps",
    type=click.IntRange(16, 200_000),
    help="Video bitrate in kbit/s.  [default: the encoder's for files, 4000 for streams]",
)
@click.option(
    "--save-masks",
    "save_masks",
    type=click.Path(file_okay=False),
    help="Folder for PNG class-index masks, one per frame.",
)
@click.option(
    "--display/--headless",
    "display",
    default=None,
    help="Show a window (q quits).  [default: display when a screen exists]",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="overlay",
    show_default=True,
    help="What to draw: colours over the frame, colours only, or frame and overlay.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0.0, 1.0),
    default=0.5,
    show_default=True,
    help="Overlay opacity: 0 shows the frame, 1 the class colours.",
)
@click.option(
    "--legend/--no-legend", default=True, show_default=True, help="Draw class names and colours."
)
@click.option("--classes", help="Show only these classes, comma-separated (e.g. road,car).")
@click.option(
    "--camera-width",
    type=click.IntRange(min=1),
    help="Camera capture width.  [default: the camera's; 1920 for csi://]",
)
@click.option(
    "--camera-height",
    type=click.IntRange(min=1),
    help="Camera capture height.  [default: the camera's; 1080 for csi://]",
)
@click.option(
    "--camera-fps",
    type=click.FloatRange(min=0, min_open=True),
    help="Camera capture rate.  [default: the camera's; 30 for csi://]",
)
@click.option(
    "--camera-format",
    type=click.Choice(tuple(V4L2_FORMATS), case_sensitive=False),
    help="V4L2 pixel format: mjpg (more frames over USB) or yuyv (uncompressed).",
)
@click.option(
    "--flip",
    type=click.Choice(FLIP_METHODS),
    default="none",
    show_default=True,
    help="Turn camera frames (nvvidconv's flip-method for csi://, on the CPU for V4L2).",
)
@click.option(
    "--realtime",
    is_flag=True,
    help="Play a video file at its own frame rate, as a camera delivers frames (newest frame "
    "only, stale ones dropped): shows the latency a camera would get.",
)
@click.option(
    "--mosaic",
    type=click.Path(),
    help="Several streams: the tiled view of all of them, as a video file or a folder of frames.",
)
@click.option(
    "--max-frames", type=click.IntRange(min=1), help="Stop after N frames (of each stream)."
)
@click.option(
    "--stats",
    "stats_path",
    type=click.Path(dir_okay=False),
    help="JSON lines, one per second: FPS, capture-to-output and latency p50/p95, per-stage "
    "ms, dropped, class shares of the latest frame.",
)
@click.option(
    "--class-shares",
    "class_shares_path",
    type=click.Path(dir_okay=False),
    help="CSV, one row per frame: the fraction of pixels of each class.",
)
@click.option(
    "--serve",
    metavar="[HOST:]PORT",
    help="Serve a live page (/), the overlay as MJPEG (/stream.mjpg) and the stats (/stats) "
    "over HTTP; binds 127.0.0.1 unless a host is given (0.0.0.0: every interface).",
)
@click.option(
    "--serve-token",
    envvar="EDGESEG_SERVE_TOKEN",
    help="Require this token on every request (?token=... or Authorization: Bearer).  "
    "[env: EDGESEG_SERVE_TOKEN]",
)
@click.option(
    "--serve-max-viewers",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Streams served at once; more get 503.",
)
@click.option(
    "--serve-allow-host",
    "serve_allow_host",
    multiple=True,
    metavar="NAME",
    help="Without a token, requests must name the server by IP address, localhost or this "
    "machine's name; add a name here (e.g. jetson.lan).  [env: EDGESEG_SERVE_HOSTS]",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    envvar="EDGESEG_MAX_PIXELS",
    help="Refuse frames with more pixels than this (checked before decoding where the image "
    "header says).  [default: 50000000; env: EDGESEG_MAX_PIXELS]",
)
def run_command(
    model: str | None,
    source: tuple[str, ...],
    display: bool | None,
    camera_width: int | None,
    camera_height: int | None,
    max_frames: int | None,
    **options: Any,
) -> None:
    """Segment a camera, video, image folder or stream, with class overlays.

    Files are processed frame by frame, none dropped (a progress bar shows how far); cameras and
    streams keep only the newest frame so latency stays low (a stats line shows FPS, the delay
    from capture to output p50/p95 and dropped frames). Ctrl-C, SIGTERM, SIGHUP or q stop
    cleanly with the outputs finalised. Without --model, the bundled demo model runs (a demo of
    the toolkit, not a production model).

    \b
    Sources (--source) and outputs (--output), as jetson-inference names them:
      csi://0               Jetson CSI camera 0 (nvarguscamerasrc; needs OpenCV with GStreamer)
      /dev/video0, v4l2:///dev/video0, 0     V4L2 (USB) camera
      clip.mp4, file://clip.mp4              video file (--realtime: at its own rate)
      frames/, 'frames/*.png', photo.jpg     image folder, glob or one image
      rtsp://host/stream, http://host/x.mjpg network stream
      gst:videotestsrc ! appsink             GStreamer pipeline ending in appsink
      out.mp4, out.jpg, frames/              H.264 video, one image, JPEG frames
      rtp://192.168.1.20:5000, rtsp://@:8554/live, display://0, http://@:8080

    \b
    Watch a headless device from a browser: --serve 0.0.0.0:8080 --serve-token SECRET, then open
    http://DEVICE:8080/?token=SECRET (docs/runtime.md, "Watching from a laptop").

    \b
    Examples:
      edgeseg run --model model.onnx --source ../shared/datasets/camvid/clip_val.mp4 --output out.mp4
      edgeseg run --model deeplab.onnx --labels voc.txt --source clip.mp4 --output out.mp4
      edgeseg run --model model.engine --source csi://0 --camera-width 1280 --camera-height 720 --display
    """  # noqa: E501
    from edgeseg.errors import EdgesegError
    from edgeseg.interrupts import SignalGuard
    from edgeseg.runtime.sinks import display_available
    from edgeseg.runtime.stream_specs import is_streams_file

    if (camera_width is None) != (camera_height is None):
        raise EdgesegError("give both --camera-width and --camera-height, or neither")
    allowed = options.pop("serve_allow_host")
    if allowed:  # read by ServeSink, as the token is (EDGESEG_SERVE_HOSTS)
        os.environ["EDGESEG_SERVE_HOSTS"] = ",".join(allowed)
    max_pixels = options.pop("max_pixels")
    if max_pixels is not None:  # the one budget every frame check reads (edgeseg.validate)
        os.environ["EDGESEG_MAX_PIXELS"] = str(max_pixels)
    camera_size = (camera_height, camera_width) if camera_width else None
    options["foreign"] = foreign_model_options(options)
    options["display"] = display_available() if display is None else display
    mosaic = options.pop("mosaic")
    if len(source) > 1 or is_streams_file(source[0]):
        from edgeseg.cli.run_streams import run_streams_command

        run_streams_command(model, source, max_frames, mosaic, camera_size, options)
        return
    if mosaic is not None:
        raise EdgesegError(
            "--mosaic tiles several streams; give --source more than once, or a .streams file"
        )
    # Stop signals (Ctrl-C, SIGTERM from systemd or docker stop, SIGHUP) during the setup too:
    # whatever was created is removed; once frames flow the pipeline finalises the outputs.
    with SignalGuard(final=True):
        summary = _run(model, source[0], max_frames, camera_size, options)
    s = summary.stats
    _info(
        f"{s.frames_done} frames in {s.elapsed_s:.1f} s ({s.mean_fps:.1f} fps); latency p50 "
        f"{s.latency_p50_ms:.0f} ms p95 {s.latency_p95_ms:.0f} ms; dropped {s.dropped}, corrupt "
        f"{s.corrupt}, reconnects {s.reconnects}; stopped by {summary.stopped_by}"
    )
    for what, how in summary.media.items():
        _info(f"{'decoded' if what == 'source' else what}: {how}")
    for path in summary.outputs:
        _info(f"wrote {path}")


def bundled_model(model: str | None, backend: str) -> str:
    """``model``, or the bundled demo model's path when none was given (said on stderr)."""
    if model is not None:
        return model
    from edgeseg.apps.default_model import default_checkpoint, default_onnx

    # --backend torch runs the bundled checkpoint itself; the rest run the bundled ONNX.
    path = str(default_checkpoint() if backend == "torch" else default_onnx())
    _info("no --model: running the bundled demo model (see README, 'The bundled model')")
    return path


def _option_objects(camera_size: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The CLI's flags as the runtime's option objects (edgeseg.runtime.options)."""
    from edgeseg.runtime.options import (
        CameraOptions,
        EncodingOptions,
        OutputOptions,
        RenderOptions,
        ServeOptions,
    )

    targets = list(options["output"])
    if options["display"]:
        targets.append("display://0")
    serve = None
    if options["serve"] is not None:
        viewers = options["serve_max_viewers"]
        serve = ServeOptions(options["serve"], options["serve_token"], viewers)
    return {
        "camera": CameraOptions(
            camera_size, options["camera_fps"], options["camera_format"], options["flip"]
        ),
        "render": RenderOptions(
            options["mode"], options["alpha"], options["legend"], options["classes"]
        ),
        "outputs": OutputOptions(
            tuple(targets),
            options["save_masks"],
            options["stats_path"],
            options["class_shares_path"],
            EncodingOptions(options["codec"], options["bitrate_kbps"]),
        ),
        "serve": serve,
        "foreign": options["foreign"],
        "backend": options["backend"],
        "realtime": options["realtime"],
    }


def _run(
    model: str | None,
    source: str,
    max_frames: int | None,
    camera_size: Any,
    options: dict[str, Any],
) -> Any:
    """Run the pipeline with progress (the bundled model when no --model is given)."""
    from edgeseg.runtime.run import run_pipeline

    backend = options["backend"]
    model = bundled_model(model, backend)
    progress = _Progress(max_frames)
    objects = _option_objects(camera_size, options)
    kept = objects["outputs"].any or objects["serve"] is not None

    def on_ready(segmenter: Any, opened: Any) -> None:
        card = segmenter.card
        how = "chosen by --backend auto" if backend == "auto" else "as requested"
        _info(
            f"model {model}: {card.architecture}, {card.num_classes} classes, input "
            f"{card.input_hw[0]}x{card.input_hw[1]}, {card.precision}; backend "
            f"{segmenter.describe()}, {how}"
        )
        policy = "live: newest frame only" if opened.live else "file: every frame"
        _info(f"source {opened.description} ({policy})")
        if not kept:
            _info(
                "no --output, --save-masks, --display, --stats, --class-shares or --serve: "
                "results are not kept"
            )
        progress.configure(opened.frame_count, opened.live)

    return run_pipeline(
        model,
        source,
        max_frames=max_frames,
        extra_sinks=[progress],
        on_ready=on_ready,
        on_event=_info,
        **objects,
    )
