"""One validator for what users give: numbers, devices, typed records, frames, failing imports.

Every command and the library call these before slow work, so a bad value is one line naming
the value and what is accepted (an :class:`~edgeseg.errors.EdgesegError`), never a traceback or
a run that goes on with ``inf``:

- :func:`ascii_int` reads decimal digits the way ``int()`` does, and only those: ``'²'.isdigit()``
  is True but ``int('²')`` fails, so a camera index, a port or a ``csi://`` sensor goes through
  here rather than through ``str.isdigit``;
- :func:`at_least`, :func:`finite` for options; :func:`check_fields` for a record read from a file
  (a ``--config`` YAML with ``lr: fast``) against its dataclass's annotations;
- :func:`check_normalisation` and :func:`check_palette` for a model card's mean, std and colours;
- :func:`check_pixels` and :func:`image_header_hw`: the pixel budget of one frame
  (:data:`MAX_FRAME_PIXELS`, raised with ``EDGESEG_MAX_PIXELS`` or ``edgeseg run --max-pixels``),
  checked from an image's header before it is decoded where the format allows;
- :func:`torch_device`: ``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``auto``, checked against the
  installed torch;
- :func:`broken_import_line`: an optional package that is installed but fails to import (a
  missing CUDA library, a wheel for another Python) named in one line at the CLI's boundary.

This is core: no torch at import time (the runtime validates frames without it).
"""

from __future__ import annotations

import dataclasses
import math
import os
import struct
import traceback
from pathlib import Path
from typing import Any

from edgeseg.errors import EdgesegError

#: Pixels of one frame above which it is refused before any work (about 8K x 6K); post-
#: processing and overlays cost a few bytes per pixel, the decoded frame three.
MAX_FRAME_PIXELS = 50_000_000
PIXELS_ENV = "EDGESEG_MAX_PIXELS"

#: Packages edgeseg imports lazily, and the extra that installs each.
OPTIONAL_PACKAGES = {
    "torch": "train",
    "torchvision": "train",
    "onnxruntime": "onnx",
    "onnx": "export",
    "onnxscript": "export",
    "safetensors": "train",
    "tensorrt": "tensorrt",
    "matplotlib": "train",
}


def ascii_int(text: object) -> int | None:
    """``text`` as a non-negative int when it is ASCII decimal digits only, else None.

    ``'²'.isdigit()`` and ``'٣'.isdigit()`` are True; the first makes ``int()`` fail, the second
    is read as 3: neither is a camera index or a port a user meant.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return text if text >= 0 else None
    if isinstance(text, str) and text.isascii() and text.isdigit():
        return int(text)
    return None


def at_least(option: str, value: int | float | None, minimum: int | float) -> None:
    """Refuse ``value`` below ``minimum`` (None passes: not given)."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise EdgesegError(f"{option} must be a finite number of at least {minimum}, got {value}")
    if value < minimum:
        raise EdgesegError(f"{option} must be at least {minimum}, got {value}")


def finite(option: str, value: float | None, positive: bool = False) -> None:
    """Refuse NaN and infinities (and zero or below with ``positive``)."""
    if value is None:
        return
    if not math.isfinite(value) or (positive and value <= 0):
        kind = "a finite number above 0" if positive else "a finite number"
        raise EdgesegError(f"{option} must be {kind}, got {value}")


_SCALARS: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
}


def _accepts(annotation: str, value: Any) -> bool:
    for part in (p.strip() for p in annotation.split("|")):
        if part == "None" and value is None:
            return True
        if part in _SCALARS:
            if isinstance(value, bool) and part != "bool":
                continue
            if isinstance(value, _SCALARS[part]):
                return True  # NaN is a float: finite() names it where it matters
        elif part.startswith("list[") and isinstance(value, list):
            inner = part[5:-1]
            return all(_accepts(inner, item) for item in value)
        elif part == "Any" or (part.startswith("dict[") and isinstance(value, dict)):
            return True
        elif part.startswith("tuple[") and isinstance(value, tuple | list):
            return True  # the fields' own checks look inside (a palette, mean and std)
    return False


def check_fields(record: Any, where: str) -> None:
    """Each field of the dataclass instance ``record`` holds a value of its annotated type
    (``lr: fast`` in a YAML config is refused naming ``lr``, the value and the type)."""
    for spec in dataclasses.fields(record):
        value = getattr(record, spec.name)
        annotation = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", "")
        if annotation and not _accepts(annotation, value):
            raise EdgesegError(
                f"{where}: {spec.name} must be {annotation.replace('|', 'or')}, got {value!r}"
            )


def check_normalisation(mean: Any, std: Any, where: str = "model card") -> None:
    """Three finite means and three finite, non-zero standard deviations (one per RGB channel):
    a std of 0 divides every pixel by zero and the model runs on infinities."""
    for name, values in (("mean", mean), ("std", std)):
        numbers = list(values) if isinstance(values, list | tuple) else []
        ok = len(numbers) == 3 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in numbers
        )
        if not ok:
            raise EdgesegError(f"{where}: {name} must be 3 finite numbers (R, G, B), got {values}")
    if any(v == 0 for v in std):
        raise EdgesegError(
            f"{where}: std must not be 0 (every pixel would be divided by it): {std}"
        )


def check_palette(palette: Any, where: str = "model card") -> None:
    """One (R, G, B) triple of integers 0..255 per class."""
    for index, colour in enumerate(palette):
        ok = isinstance(colour, list | tuple) and len(colour) == 3
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in colour)
        if not ok or not all(0 <= v <= 255 for v in colour):
            raise EdgesegError(
                f"{where}: palette entry {index} must be 3 integers 0..255 (R, G, B), "
                f"got {colour!r}"
            )


def max_frame_pixels() -> int:
    """The pixel budget of one frame: ``EDGESEG_MAX_PIXELS`` when set, else the default."""
    text = os.environ.get(PIXELS_ENV, "")
    if not text:
        return MAX_FRAME_PIXELS
    value = ascii_int(text)
    if not value:
        raise EdgesegError(f"{PIXELS_ENV}={text!r} must be a whole number of pixels above 0")
    return value


def check_pixels(height: int, width: int, what: str, limit: int | None = None) -> None:
    """Refuse a frame of ``height`` x ``width`` above the pixel budget, or without pixels."""
    if height < 1 or width < 1:
        raise EdgesegError(f"{what}: an image without pixels ({width}x{height})")
    limit = limit or max_frame_pixels()
    if height * width > limit:
        raise EdgesegError(
            f"{what}: {width}x{height} is {height * width:,} pixels, above the limit of "
            f"{limit:,} (raise it with --max-pixels or {PIXELS_ENV}, or scale the image down)"
        )


def image_header_hw(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(height, width) from a PNG or JPEG header, without decoding; None for other formats,
    a file that cannot be read, or a header this does not understand (decoding then decides)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
                width, height = struct.unpack(">II", head[16:24])
                return height, width
            if head[:2] == b"\xff\xd8":
                return _jpeg_hw(handle)
    except (OSError, struct.error):
        return None
    return None


def _jpeg_hw(handle: Any) -> tuple[int, int] | None:
    handle.seek(2)
    for _ in range(1000):  # markers before the frame header; a broken file stops the walk
        marker = handle.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind in (0xD8, 0x01) or 0xD0 <= kind <= 0xD7:
            continue
        length = struct.unpack(">H", handle.read(2))[0]
        if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">xHH", handle.read(5))
            return height, width
        handle.seek(length - 2, os.SEEK_CUR)
    return None


def torch_device(text: str, torch: Any) -> str:
    """``text`` as a device the installed ``torch`` has: ``auto`` (CUDA when present, else CPU),
    ``cpu``, ``cuda``, ``cuda:N``, ``mps``; else one line naming what this machine accepts."""
    name = str(text).strip().lower()
    cuda = torch.cuda.is_available()
    count = torch.cuda.device_count() if cuda else 0
    if name == "auto":
        return "cuda" if cuda else "cpu"
    accepted = ["auto", "cpu"] + (["cuda"] + [f"cuda:{i}" for i in range(count)] if cuda else [])
    mps = getattr(getattr(torch.backends, "mps", None), "is_available", lambda: False)()
    accepted += ["mps"] if mps else []
    kind, _, index = name.partition(":")
    if name in ("cpu", "mps") and name in accepted:
        return name
    number = ascii_int(index) if index else 0
    if kind == "cuda" and cuda and number is not None and number < count:
        return name
    why = "" if cuda or kind != "cuda" else " (this torch sees no CUDA GPU)"
    raise EdgesegError(f"device {text!r} is not available{why}; use one of {', '.join(accepted)}")


def broken_import_line(exc: BaseException) -> str | None:
    """One line for an optional package that is installed but raised while importing (not an
    absent one: that is :func:`edgeseg.errors.missing_extra`), else None.

    Found from the traceback: a frame running the package's own top-level code (``<module>``
    in a file inside the package) means the import itself failed, whatever it raised.
    """
    if isinstance(exc, ModuleNotFoundError) and exc.name in OPTIONAL_PACKAGES:
        return None  # absent: the command says which extra to install
    root = Path(__file__).resolve().parent.parent  # edgeseg's own folders are never "a package"
    own = [root / name for name in ("edgeseg", "export", "calibration", "runtime", "train")]
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if frame.name != "<module>" or any(folder in path.parents for folder in own):
            continue
        for package, extra in OPTIONAL_PACKAGES.items():
            if package in path.parts[:-1]:
                return _broken(package, extra, exc)
    return None


def import_optional(module: str, extra: str) -> Any:
    """``import module``: absent -> the extra to install; installed but failing (a missing
    shared library, a wheel for another Python) -> one line saying so, never "not installed"."""
    import importlib

    from edgeseg.errors import missing_extra

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module.split(".")[0]:
            raise missing_extra(module, extra) from None
        raise EdgesegError(_broken(module, extra, exc)) from None
    except Exception as exc:  # whatever its own code raised while importing
        raise EdgesegError(_broken(module, extra, exc)) from None


def _broken(package: str, extra: str, exc: BaseException) -> str:
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return (
        f"{package} is installed but fails to import ({type(exc).__name__}: {detail}); "
        f"reinstall it: pip install --force-reinstall 'edgeseg[{extra}]'"
    )


def array_fits(array: Any, shape: tuple[int | None, ...], dtype: Any, min_first: int = 1) -> bool:
    """Whether ``array`` (from a cache entry) has ``shape`` (None: any size) and ``dtype``, and
    at least ``min_first`` items along its first axis: a wrong or empty entry is rebuilt."""
    import numpy as np

    if not isinstance(array, np.ndarray) or array.dtype != np.dtype(dtype):
        return False
    if array.ndim != len(shape) or array.shape[0] < min_first:
        return False
    return all(want is None or got == want for got, want in zip(array.shape, shape, strict=True))
