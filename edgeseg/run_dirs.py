"""Run folders that never overwrite each other: ``runs/train`` taken, ``runs/train2`` next.

``edgeseg train``, ``edgeseg demo`` and ``edgeseg bench`` write a folder of results per run, with
defaults (``runs/train``, ``runs/demo``, ``runs/bench``) that make a second run land on the
first. A folder that already holds a run (one of its ``markers`` files) is therefore never
written into unless asked (``--exist-ok``); the run takes the next free name instead, the way
Ultralytics' ``increment_path`` does (the number appended to the name as given: ``runs/train``
-> ``runs/train2``, ``runs/train3``...), and the command says which folder it uses. An existing
folder without a run in it (made by hand, empty) is used as it is.

The new folder is claimed with an exclusive ``mkdir``, so two runs started together get two
folders.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

MAX_RUNS = 9999  # Ultralytics' bound too


def holds_run(folder: str | os.PathLike[str], markers: tuple[str, ...]) -> bool:
    """Whether ``folder`` holds one of the files a run writes (``config.yaml``, ``last.pt``...)."""
    root = Path(folder)
    return root.is_dir() and any((root / name).exists() for name in markers)


def claim_run_dir(
    path: str | os.PathLike[str],
    markers: tuple[str, ...],
    exist_ok: bool = False,
    create: bool = True,
) -> Path:
    """The folder a new run writes to: ``path``, unless it holds a run (and not ``exist_ok``),
    then the first of ``path2``, ``path3``... that does not exist, created here (``create``)
    so that no other run takes it. With ``create=False`` (a torchrun rank that writes nothing)
    the name is only computed.

    Raises OSError naming the folder when it cannot be created (read-only, no permission).
    """
    wanted = Path(path)
    if exist_ok or not holds_run(wanted, markers):
        if create:
            wanted.mkdir(parents=True, exist_ok=True)
        return wanted
    for number in range(2, MAX_RUNS + 1):
        candidate = wanted.with_name(f"{wanted.name}{number}")
        if candidate.exists():
            continue
        if not create:
            return candidate
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:  # another run took it a moment ago
            continue
        return candidate
    raise FileExistsError(errno.EEXIST, f"{MAX_RUNS} runs already use this name", str(wanted))
