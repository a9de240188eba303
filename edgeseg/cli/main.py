"""The ``edgeseg`` click group and the error boundary.

A user mistake (:class:`~edgeseg.errors.EdgesegError`, or a click usage error) becomes one line on
stderr and exit code 2; anything else is a bug and keeps its traceback. Command modules import
their heavy dependencies (torch, onnx, TensorRT) inside the command, so ``edgeseg --help`` and the
runtime commands start without torch.
"""

from __future__ import annotations

import sys

import click

from edgeseg import __version__
from edgeseg.errors import EdgesegError

EXIT_USER_ERROR = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edgeseg")
def cli() -> None:
    """SegNet segmentation from training to real-time video on Jetson and desktop GPUs.

    \b
    edgeseg train --data ../shared/datasets/camvid --model segnet --width 0.25 --out runs/camvid
    edgeseg eval runs/camvid/best.pt --data ../shared/datasets/camvid --split val
    """


def _register() -> None:
    from edgeseg.cli.bench import bench_command
    from edgeseg.cli.demo import demo_command
    from edgeseg.cli.doctor import doctor_command
    from edgeseg.cli.evaluate import eval_command
    from edgeseg.cli.export import export_command
    from edgeseg.cli.plugin import plugin_group
    from edgeseg.cli.run import run_command
    from edgeseg.cli.train import train_command

    cli.add_command(train_command)
    cli.add_command(eval_command)
    cli.add_command(export_command)
    cli.add_command(plugin_group)
    cli.add_command(run_command)
    cli.add_command(demo_command)
    cli.add_command(bench_command)
    cli.add_command(doctor_command)


_register()


def fail(message: str) -> None:
    """Print one error line and exit with the user-error code."""
    click.echo(f"edgeseg: error: {message}", err=True)
    sys.exit(EXIT_USER_ERROR)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="edgeseg", standalone_mode=False)
    except EdgesegError as exc:
        fail(str(exc).replace("\n", " "))
    except click.UsageError as exc:
        if type(exc).__name__.startswith("NoArgsIsHelp") and exc.ctx is not None:
            # A bare ``edgeseg`` (the class was renamed NoArgsIsHelpError in click 8.2).
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        fail(f"{exc.format_message()}{hint}")
    except click.ClickException as exc:
        fail(exc.format_message())
    except click.exceptions.Abort:
        click.echo("edgeseg: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("edgeseg: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
