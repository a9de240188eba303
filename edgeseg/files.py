"""Files that appear whole: temporary files beside their targets, with the umask's mode.

Every output edgeseg writes goes to a hidden temporary file in the target's folder and is renamed
into place, so a reader (or a crash) never meets a half-written file under the final name, and a
file that existed before stays intact until the new one is complete. ``tempfile.mkstemp``
creates mode 0600 whatever the umask; outputs are copied to other machines and read by other
users (a Jetson's service), so they get the mode a plain ``open()`` would give.

An ``OSError`` raised while writing names the user's path (not the hidden temporary one), so
the CLI's error boundary can say in one line which output failed and why.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_UMASK_LINE = re.compile(r"^Umask:\s*([0-7]+)$", re.MULTILINE)


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``).

    ``os.umask`` can only be read by setting it, which races with other threads creating files;
    that is the fallback elsewhere.
    """
    try:
        match = _UMASK_LINE.search(Path("/proc/self/status").read_text())
    except OSError:
        match = None
    if match:
        return int(match.group(1), 8)
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: 0o666 less the umask."""
    return 0o666 & ~current_umask()


def with_path(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    """``exc`` naming ``path`` (the user's file) instead of a temporary file, or nothing."""
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def temp_beside(target: str | os.PathLike[str], suffix: str = ".tmp") -> Path:
    """Create an empty hidden file ``.<name>.XXXX<suffix>`` in ``target``'s folder, with
    :func:`file_mode`; the caller renames it onto ``target`` when complete or deletes it.

    Raises OSError naming ``target`` when the folder cannot be written (read-only, full,
    permission denied).
    """
    target = Path(target)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    except OSError as exc:
        raise with_path(exc, target) from None
    try:
        os.fchmod(fd, file_mode())
    finally:
        os.close(fd)
    return Path(name)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A reader never sees a half-written file and a killed writer leaves the old file intact.
    Raises OSError naming ``path`` (ENOSPC, EROFS, EACCES...); the temporary file is removed.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise with_path(exc, exc.filename or target.parent) from None
    tmp = temp_beside(target)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise with_path(exc, target) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def orphan_temp_files(folder: str | os.PathLike[str], names: list[str]) -> list[Path]:
    """Temporary files left in ``folder`` by a killed writer of the files ``names``
    (``.last.pt.XXXX.tmp`` for ``last.pt``): safe to delete when no other process writes there."""
    root = Path(folder)
    found: list[Path] = []
    for name in names:
        found.extend(p for p in root.glob(f".{name}.*.tmp") if p.is_file())
    return sorted(found)
