"""Running the ``edgeseg`` command in tests, and the one-line error check.

Shared by the CLI tests of every stage (pytest puts ``tests/`` on ``sys.path``).

- :class:`CliRunner` (the ``cli`` fixture of ``tests/conftest.py``) calls the console script's
  entry point, :func:`edgeseg.cli.main.main`, in the test's own process: the same argument
  parsing, error boundary and exit codes, with stdout and stderr captured at the file-descriptor
  level (so a C library's warning on stderr counts, as it would in a terminal). It saves the
  ~2 s of a new Python importing torch per command.
- :func:`edgeseg` starts a real ``python -m edgeseg`` process: for the tests where the process
  is the point (signals, the exit status of a real process, torch made unimportable before
  anything is imported, several processes racing on one cache).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest


class CliRunner:
    """``runner("export", "best.pt", env={...}, cwd=...)`` -> a ``CompletedProcess``.

    During the call the process-wide state a command sees or changes is what it would be in a
    process of its own (:func:`_as_its_own_process`), and is restored after. An exception that
    escapes the entry point is a bug: it propagates and fails the test with its traceback, where
    a process would have printed it and exited with 1.
    """

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self._capfd = capfd

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        from edgeseg.cli.main import main

        self._capfd.readouterr()  # what the test printed before is not the command's output
        with _as_its_own_process(["edgeseg", *args], env or {}, cwd):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = _exit_status(exc)
        out, err = self._capfd.readouterr()
        return subprocess.CompletedProcess(["edgeseg", *args], code, out, err)


@contextlib.contextmanager
def _as_its_own_process(argv: list[str], env: dict[str, str], cwd: Path | None) -> Iterator[None]:
    """``sys.argv`` (commands record it), ``env`` added to ``os.environ``, the working directory,
    torch's thread count (``--threads`` sets it process-wide), and what a user's terminal would
    show but pytest would otherwise keep to itself: warnings (Python's default filters, printed
    to stderr as they happen) and log records with no handler of their own (stderr
    through :data:`logging.lastResort`, not pytest's log capture). A stray warning or log line
    beside an error therefore still breaks the one-line check."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    threads = _torch_threads()
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.showwarning = _show_warning
        for action, category, module in _PYTHON_WARNING_FILTERS:
            warnings.filterwarnings(action, category=category, module=module, append=True)
        patch.setattr(sys, "argv", argv)
        for name, value in env.items():
            patch.setenv(name, value)
        if cwd is not None:
            patch.chdir(cwd)
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for handler in handlers:
                root.addHandler(handler)
            root.setLevel(level)
            _set_torch_threads(threads)


#: ``warnings.filters`` of a Python started without ``-W`` (3.12): what a user's process has.
_PYTHON_WARNING_FILTERS = [
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
]


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Python's own printing of a warning, to the stderr of the moment (which is captured)."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _exit_status(exc: SystemExit) -> int:
    """The status a process exiting with ``exc`` would have (``sys.exit``'s rules)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)  # sys.exit("message") prints it and exits with 1
    return 1


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def _set_torch_threads(threads: int | None) -> None:
    torch = sys.modules.get("torch")
    if threads is not None and torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def edgeseg(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """A real ``python -m edgeseg ARGS`` process, ``env`` added to this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "edgeseg", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=timeout,
    )


def console_script() -> Path:
    """The installed ``edgeseg`` console script (skips the test where there is none)."""
    beside = Path(sys.executable).with_name("edgeseg")
    if beside.is_file():
        return beside
    found = shutil.which("edgeseg")
    if found is None:
        pytest.skip("no installed 'edgeseg' console script (pip install -e .)")
    return Path(found)


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    """A user mistake: exit code 2, one ``edgeseg: error:`` line naming ``fragment``, no trace."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("edgeseg: error:") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr


#: The signals edgeseg treats as "stop": Ctrl-C, systemd/docker stop, a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def default_signals() -> None:
    """A shell's background job starts with SIGINT ignored and nohup ignores SIGHUP; edgeseg
    leaves ignored signals alone, so give the child the defaults a terminal would."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


def start_run(
    args: list[str], total: int, umask: int | None = None, ready: str | None = None
) -> tuple:
    """Start a real ``edgeseg run ARGS`` over a source of ``total`` frames; returns (process,
    stderr chunks) once its progress bar shows frames going through (read in a thread, so the
    pipe never fills): the moment a signal test interrupts it. ``ready``: another pattern that
    means frames are going through (a multi-stream run announces its streams instead)."""
    pattern = ready or rf"\| *[1-9][0-9]*/{total} "

    def setup() -> None:
        default_signals()
        if umask is not None:
            os.umask(umask)

    process = subprocess.Popen(
        [sys.executable, "-m", "edgeseg", "run", *args],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=setup,
    )
    seen: list[str] = []
    started = threading.Event()

    def read_stderr() -> None:
        assert process.stderr is not None
        while chunk := process.stderr.read(64):
            seen.append(chunk)
            if re.search(pattern, "".join(seen[-8:])):
                started.set()

    threading.Thread(target=read_stderr, daemon=True).start()
    assert started.wait(timeout=60), "".join(seen)
    return process, seen
