"""``edgeseg doctor``: what this machine can run, and the fix for what it cannot."""

from __future__ import annotations

import json

import click


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON on stdout.")
@click.option(
    "--no-self-test",
    is_flag=True,
    help="Skip building the tiny test engines (they take a minute on a Jetson).",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False),
    help="Check this edgeseg ONNX or engine on this device against ONNX Runtime instead "
    "(agreement, latency, precision built, equivalent trtexec/polygraphy commands).",
)
@click.option("--source", help="With --model: an image or video to take the frames from.")
def doctor_command(
    as_json: bool, no_self_test: bool, model_path: str | None, source: str | None
) -> None:
    """Check Python, the installed extras, JetPack, GPU, CUDA, torch, ONNX Runtime, TensorRT,
    the plugin, cameras, OpenCV's video I/O and the display; each line says how to fix it.

    Where TensorRT and a GPU are present, a tiny engine is built with the plugin and without it
    (--unpool native) in FP32, FP16 and INT8 and compared with ONNX Runtime. Exits 1 when a
    check failed (something an installed extra needs, or a broken plugin), else 0.

    \b
    Examples:
      edgeseg doctor
      edgeseg doctor --json > doctor.json
      edgeseg doctor --model export/model.trt.onnx --source clip.mp4
    """
    if model_path is not None:
        from edgeseg.apps.doctor_model import run_model_doctor

        raise click.exceptions.Exit(run_model_doctor(model_path, source, log=click.echo))
    if source is not None:
        from edgeseg.errors import EdgesegError

        raise EdgesegError("--source applies with --model")
    from edgeseg.apps.doctor import format_report, run_doctor

    report = run_doctor(self_test=not no_self_test)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(format_report(report))
    raise click.exceptions.Exit(report.exit_code())
