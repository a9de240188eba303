"""The one way edgeseg writes a file: whole, with the umask's mode, and never over a device.

Every output goes through :class:`PendingFile` (or :func:`atomic_write_bytes`, which uses it):

- a regular file (or one that does not exist yet) is written to a hidden temporary file in the
  target's folder and renamed into place, so a reader (or a crash) never meets a half-written file
  under the final name, and a file that existed before stays intact until the new one is
  complete. ``tempfile.mkstemp`` creates mode 0600 whatever the umask; outputs are copied to
  other machines and read by other users (a Jetson's service), so they get the mode a plain
  ``open()`` would give;
- an existing target that is not a regular file (a character or block device, a FIFO, a socket,
  a symbolic link to one) and ``-`` (standard output) are written in place: a rename would
  replace ``/dev/full`` or a FIFO a reader waits on with a regular file and print "wrote".
  Where in place makes no sense (a video, finished by a rename after its index is written) the
  target is refused in one line (``in_place=False``);
- the temporary file holds an exclusive ``flock`` while it is being written, so the temporaries
  a killed run left (``.out.mp4.k2j4x8ab.mp4``) are told apart from a running writer's and
  removed by the next write to the same target (:func:`remove_orphans`).

An ``OSError`` raised while writing names the user's path (not the hidden temporary one), so
the CLI's error boundary can say in one line which output failed and why.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from edgeseg.errors import EdgesegError

_UMASK_LINE = re.compile(r"^Umask:\s*([0-7]+)$", re.MULTILINE)

#: The output name that means standard output.
STDOUT = "-"
_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}
#: Folder -> hidden names seen there once per process (a folder of 10,000 masks is listed once).
_HIDDEN: dict[Path, set[str]] = {}


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


def special_kind(path: str | os.PathLike[str]) -> str | None:
    """What a target that is written in place is (``"a FIFO"``, ``"standard output"``...), or
    None for a regular file, a folder or a path where nothing exists (symbolic links followed)."""
    if str(path) == STDOUT:
        return "standard output"
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return _KINDS.get(stat.S_IFMT(mode))


def remove_orphans(target: str | os.PathLike[str], suffix: str = ".tmp") -> list[Path]:
    """Delete the temporaries of ``target`` (``.<name>.XXXXXXXX<suffix>``) that no running
    writer holds locked: what a killed run left. Returns what was removed."""
    target = Path(target)
    folder = target.parent
    key = folder.resolve() if folder.exists() else folder
    if key not in _HIDDEN:
        try:
            _HIDDEN[key] = {e.name for e in os.scandir(folder) if e.name.startswith(".")}
        except OSError:
            return []
    pattern = re.compile(re.escape(f".{target.name}.") + r"[a-z0-9_]{8}" + re.escape(suffix))
    removed = []
    for name in sorted(n for n in _HIDDEN[key] if pattern.fullmatch(n)):
        _HIDDEN[key].discard(name)
        path = folder / name
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: a live writer's
                path.unlink()
                removed.append(path)
            finally:
                os.close(fd)
    return removed


class PendingFile:
    """An output being written: :attr:`path` is where to write, :meth:`commit` puts it in place,
    :meth:`discard` drops it (see the module docstring for which targets are written in place).

    ``in_place=False`` refuses special targets (one line naming what the target is). ``what``
    names the output in that line.

    >>> pending = PendingFile("m.json")
    >>> with pending.open("w") as handle:
    ...     handle.write("{}")
    >>> pending.commit()
    """

    def __init__(
        self,
        target: str | os.PathLike[str],
        suffix: str = ".tmp",
        in_place: bool = True,
        what: str = "output",
    ) -> None:
        self.target = Path(target)
        self.kind = special_kind(target)
        self._lock: int | None = None
        if self.kind is not None:
            if not in_place:
                raise EdgesegError(
                    f"{what} {target} is {self.kind}; a {what} can only be written to a file "
                    "(it is completed by a rename): give a file path"
                )
            self.path = self.target
            return
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise with_path(exc, exc.filename or self.target.parent) from None
        remove_orphans(self.target, suffix)
        self.path = temp_beside(self.target, suffix)
        with contextlib.suppress(OSError):  # a umask of 0o4xx: no read access, no lock
            self._lock = os.open(self.path, os.O_RDONLY)
            fcntl.flock(self._lock, fcntl.LOCK_EX)

    @property
    def in_place(self) -> bool:
        return self.kind is not None

    def open(self, mode: str = "wb", **kwargs: Any) -> IO[Any]:
        """The file to write: the temporary one, the special target, or standard output (a
        duplicate of descriptor 1, so closing it leaves the process's stdout open)."""
        if str(self.target) == STDOUT:
            sys.stdout.flush()
            return os.fdopen(os.dup(sys.stdout.fileno()), mode, **kwargs)
        try:
            return open(self.path, mode, **kwargs)
        except OSError as exc:
            raise with_path(exc, self.target) from None

    def commit(self) -> None:
        """Rename the temporary file onto the target (nothing to do in place)."""
        if self.in_place:
            return
        try:
            os.replace(self.path, self.target)
        except OSError as exc:
            self.discard()
            raise with_path(exc, self.target) from None
        self._unlock()

    def discard(self) -> None:
        """Delete the temporary file; the target keeps what it held."""
        if not self.in_place:
            self.path.unlink(missing_ok=True)
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through :class:`PendingFile`: a temporary file in the same
    folder and a rename, or in place for a device, a FIFO or ``-``.

    A reader never sees a half-written file and a killed writer leaves the old file intact.
    Raises OSError naming ``path`` (ENOSPC, EROFS, EACCES...); the temporary file is removed.
    """
    pending = PendingFile(path)
    try:
        with pending.open("wb") as handle:
            handle.write(data)
        pending.commit()
    except OSError as exc:
        pending.discard()
        raise with_path(exc, path) from None
    except BaseException:
        pending.discard()
        raise


def orphan_temp_files(folder: str | os.PathLike[str], names: list[str]) -> list[Path]:
    """Temporary files left in ``folder`` by a killed writer of the files ``names``
    (``.last.pt.XXXX.tmp`` for ``last.pt``): safe to delete when no other process writes there."""
    root = Path(folder)
    found: list[Path] = []
    for name in names:
        found.extend(p for p in root.glob(f".{name}.*.tmp") if p.is_file())
    return sorted(found)
