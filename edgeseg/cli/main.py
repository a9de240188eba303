"""The ``edgeseg`` click group and the error boundary.

A user mistake (:class:`~edgeseg.errors.EdgesegError`, or a click usage error) becomes one line on
stderr and exit code 2; so does an ``OSError`` of the file system at a path (a full or read-only
disk, a missing folder, no permission: :func:`os_error_line`), whichever command hit it. Anything
else is a bug and keeps its traceback. A stop signal (Ctrl-C, SIGTERM, SIGHUP) exits with 128 +
its number (130, 143, 129) after the command finalised what it could.

Exit codes every command keeps (scripts may rely on them):

- 0: done; ``doctor``: every check passed (warnings allowed);
- 1: ``doctor``: a check failed; or a bug (with its traceback);
- 2: a user mistake, a value refused by :mod:`edgeseg.validate`, an unusable path or an
  export whose accuracy gate failed: one ``edgeseg: error:`` line;
- 128 + N: stopped by signal N after finalising the outputs (130 Ctrl-C, 143 SIGTERM, 129
  SIGHUP).

Command modules import
their heavy dependencies (torch, onnx, TensorRT) inside the command, so ``edgeseg --help`` and the
runtime commands start without torch.
"""

from __future__ import annotations

import errno
import sys

import click

from edgeseg import __version__
from edgeseg.errors import EdgesegError
from edgeseg.validate import broken_import_line

EXIT_USER_ERROR = 2

#: File-system errnos that mean "this path cannot be used as asked", with what to do about it.
#: Other OSErrors (a socket, a library's internals, no path) are bugs and keep their traceback.
PATH_ERRNOS = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere",
    errno.EFBIG: "the file system cannot hold a file this large: write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "check the permissions, or use another path",
    errno.EPERM: "check the permissions, or use another path",
    errno.EIO: "the device reported an I/O error: check the disk (dmesg) and try again",
    errno.ENOENT: "check the path",
    errno.EISDIR: "a folder is there: give a file path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EEXIST: "something is already there: move it or choose another path",
}


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
    from edgeseg.cli.foreign import card_command
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
    cli.add_command(card_command)


_register()


def fail(message: str) -> None:
    """Print one error line and exit with the user-error code."""
    click.echo(f"edgeseg: error: {message}", err=True)
    sys.exit(EXIT_USER_ERROR)


def interrupted(exc: KeyboardInterrupt) -> None:
    """Say which signal stopped the command and exit with 128 + its number (130 for Ctrl-C)."""
    from edgeseg.interrupts import exit_code, signal_name

    name = signal_name(getattr(exc, "signum", 2))
    click.echo(f"edgeseg: interrupted ({name})", err=True)
    sys.exit(exit_code(exc))


def os_error_line(exc: OSError) -> str | None:
    """``out.mp4: No space left on device (the disk is full: ...)`` for a file-system error
    at a path, else None (the error is then a bug and keeps its traceback)."""
    path = exc.filename2 if exc.filename2 is not None else exc.filename
    if exc.errno not in PATH_ERRNOS or path is None:
        return None
    return f"{path}: {exc.strerror or errno.errorcode[exc.errno]} ({PATH_ERRNOS[exc.errno]})"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        # standalone_mode=False lets this boundary see every exception, but click then *returns*
        # the code of a ``click.exceptions.Exit`` (doctor's 1) instead of exiting with it.
        code = cli.main(args=argv, prog_name="edgeseg", standalone_mode=False)
    except EdgesegError as exc:
        fail(str(exc).replace("\n", " "))
    except ImportError as exc:
        # An optional module that is missing or broken (onnx, cv2 against numpy 2): one line
        # naming the extra or recipe; any other import failure is a bug.
        from edgeseg.installs import missing_module_line

        line = missing_module_line(exc) or broken_import_line(exc)
        if line is None:
            raise
        fail(line)
    except OSError as exc:
        line = os_error_line(exc) or broken_import_line(exc)
        if line is None:
            raise
        fail(line)
    except click.UsageError as exc:
        if type(exc).__name__.startswith("NoArgsIsHelp") and exc.ctx is not None:
            # A bare ``edgeseg`` (the class was renamed NoArgsIsHelpError in click 8.2).
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        fail(f"{exc.format_message()}{hint}")
    except click.ClickException as exc:
        fail(exc.format_message())
    except click.exceptions.Abort as exc:
        # click turns a KeyboardInterrupt (our Interrupted too) into Abort, raised from it.
        cause = exc.__cause__ if isinstance(exc.__cause__, KeyboardInterrupt) else None
        if cause is None:
            click.echo("edgeseg: aborted", err=True)
            sys.exit(130)
        interrupted(cause)
    except KeyboardInterrupt as exc:
        interrupted(exc)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug keeps its traceback; a broken install is one line
        line = broken_import_line(exc)
        if line is None:
            raise
        fail(line)
    # Without standalone mode, click returns a command's Exit code (edgeseg doctor's 1)
    # instead of exiting with it.
    if isinstance(code, int) and code != 0:
        sys.exit(code)
