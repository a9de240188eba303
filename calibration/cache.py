"""A cache of decoded calibration inputs, so trying another method or ``--keep-float`` does not
decode the folder or video again.

The key is a hash of what the inputs depend on: the resolved source (file names, sizes and
modification times, the chosen video frames) and the network input size. Normalisation is not
part of it: the cache holds uint8 RGB at input size and is normalised on load. Entries are
``.npy`` files written atomically under :func:`edgeseg.user_cache.user_cache_dir`.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from edgeseg.calibration.readers import CalibrationSource, read_source, warn_if_few
from edgeseg.files import atomic_write_bytes
from edgeseg.user_cache import user_cache_dir
from edgeseg.validate import array_fits


def cache_key(source: CalibrationSource, input_hw: Sequence[int]) -> str:
    """Hex digest that changes whenever a file is replaced or the input size changes."""
    files = []
    for path in source.files:
        stat = path.stat()
        files.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    record = {
        "kind": source.kind,
        "files": files,
        "frames": list(source.frames),
        "input_hw": [int(v) for v in input_hw],
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:24]


def load_images(
    source: CalibrationSource,
    input_hw: Sequence[int],
    *,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, bool]:
    """(N, h, w, 3) uint8 RGB calibration images and whether they came from the cache."""
    folder = cache_dir if cache_dir is not None else user_cache_dir("calibration")
    path = folder / f"{cache_key(source, input_hw)}.npy"
    if use_cache and path.is_file():
        try:
            images = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            images = None
        # A damaged, empty or wrong-shaped entry (another version, a disk error): rebuild it.
        hit = array_fits(images, (None, *(int(v) for v in input_hw), 3), np.uint8)
        if not hit:
            path.unlink(missing_ok=True)
    else:
        hit = False
    if not hit:
        images = read_source(source, input_hw, progress=progress, warn=warn)
        if use_cache:
            _store(path, images, warn)
    if warn is not None:
        warn_if_few(len(images), warn)
    return images, hit


def _store(path: Path, images: np.ndarray, warn: Callable[[str], None] | None) -> None:
    """Keep the decoded images for the next run; a cache that cannot be written only costs
    time, so it is said (with the fix) and the calibration goes on."""
    buffer = io.BytesIO()
    np.save(buffer, images, allow_pickle=False)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        if warn is not None:
            warn(
                f"cannot write the calibration cache in {path.parent} ({exc.strerror}); going "
                "on without it: set EDGESEG_CACHE_DIR to a writable folder to keep it"
            )
