"""Real faulty file systems for the fault tests: a small tmpfs that fills up, a read-only one.

Mounting needs root (CI runs as root); elsewhere the full-disk tests skip with that reason and
a read-only folder is a folder without write permission (which root would ignore). Importable
as ``fault_helpers`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``folder`` with ``options`` (skips with the reason where this process
    may not mount one); unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    folder.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]
    result = subprocess.run(mount, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip() or result.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@contextlib.contextmanager
def read_only_folder(parent: Path) -> Iterator[Path]:
    """A folder nothing can be written into: a read-only tmpfs as root, else mode 0555."""
    folder = parent / "ro"
    if os.geteuid() == 0:
        with mounted_tmpfs(folder, "ro,size=64k") as mounted:
            yield mounted
        return
    folder.mkdir()
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)
