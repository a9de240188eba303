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
    from edgeseg.cli.evaluate import eval_command
    from edgeseg.cli.train import train_command

    cli.add_command(train_command)
    cli.add_command(eval_command)


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
    except click.exceptions.NoArgsIsHelp as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        sys.exit(EXIT_USER_ERROR)
    except click.UsageError as exc:
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
