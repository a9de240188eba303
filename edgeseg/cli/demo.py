"""``edgeseg demo``: the README's first command; a thin layer over
:func:`edgeseg.apps.demo.run_demo`."""

from __future__ import annotations

from typing import Any

import click

from edgeseg.apps.demo import DEFAULT_CALIB_COUNT, DEFAULT_FRAMES, DEFAULT_OUT
from edgeseg.cli.options import exist_ok_option, run_folder

#: Files that mean a folder holds an earlier demo (the next free name is used then).
DEMO_MARKERS = ("demo.json", "overlay.mp4", "export")


@click.command("demo")
@click.option(
    "--source",
    type=click.Path(dir_okay=False),
    help="A video file to run on.  [default: a synthetic road clip edgeseg draws itself, "
    "labelled as such]",
)
@click.option(
    "--out",
    default=DEFAULT_OUT,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Output folder: export/, overlay.mp4, demo.json (and the synthetic clip); one that "
    "holds an earlier demo is left alone and the next free name is used (runs/demo2).",
)
@exist_ok_option()
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    default=DEFAULT_FRAMES,
    show_default=True,
    help="Frames through each backend: the synthetic clip's length, or the first N of --source.",
)
@click.option(
    "--calib-count",
    type=click.IntRange(min=1),
    default=DEFAULT_CALIB_COUNT,
    show_default=True,
    help="Frames of the clip that INT8 calibration reads (every k-th frame).",
)
def demo_command(
    source: str | None, out: str, frames: int, calib_count: int, exist_ok: bool
) -> None:
    """Run the whole toolkit on the bundled model: no data, no GPU needed.

    Exports the bundled demo model (SegNet width 0.25, CamVid) to ONNX and INT8 ONNX with
    parity checks, runs the runtime over a clip with every backend and precision present,
    writes an overlay video and prints FPS per backend. A few minutes on a 2-core CPU.

    \b
    Examples:
      edgeseg demo
      edgeseg demo --source ../shared/datasets/camvid/clip_val.mp4 --out runs/demo-camvid
    """
    from edgeseg.apps.demo import check_demo_inputs, run_demo
    from edgeseg.cli.run import _Progress

    check_demo_inputs(source, frames, calib_count)  # before a run folder is claimed or named

    def progress(total: int) -> Any:
        bar = _Progress(max_frames=total)
        bar.configure(total, live=False)
        return bar

    with run_folder(out, DEMO_MARKERS, exist_ok, inputs={"--source": source}) as folder:
        run_demo(
            folder,
            source=source,
            frames=frames,
            calib_count=calib_count,
            log=click.echo,
            progress=progress,
        )
