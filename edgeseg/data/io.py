"""Reading images and label masks, and checking image/mask pairs before a run starts.

Every failure is an :class:`~edgeseg.errors.EdgesegError` whose one line names the file. Files are
read through ``np.fromfile`` + ``cv2.imdecode`` so paths with any characters work on every OS.
numpy and OpenCV only (no torch).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import cv2
import numpy as np

from edgeseg.data.spec import DatasetSpec
from edgeseg.errors import EdgesegError

if TYPE_CHECKING:
    from edgeseg.data.layouts import Sample


def _read_bytes(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise EdgesegError(f"{path} not found")
    try:
        return np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise EdgesegError(f"cannot read {path}: {exc.strerror}") from None


def _decode(path: str | Path, flags: int) -> np.ndarray:
    data = _read_bytes(path)
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise EdgesegError(f"{path} is not an image OpenCV can read (empty or corrupt file?)")
    return image


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 BGR (grey images are expanded, alpha is dropped)."""
    image = _decode(path, cv2.IMREAD_COLOR)
    if image.dtype != np.uint8:  # IMREAD_COLOR already converts 16-bit to 8-bit; belt and braces
        image = (image // 257).astype(np.uint8) if image.dtype == np.uint16 else image
    return image


def read_mask(path: str | Path, spec: DatasetSpec) -> np.ndarray:
    """Read a label mask as (H, W) uint8 class indices, following ``spec.mask_format``.

    - ``index``: single-channel PNG (8 or 16 bit) whose values are classes. A three-channel file
      whose channels are equal is accepted; one with real colours is refused (a colour-coded or
      palette PNG needs ``mask_format: rgb``, since OpenCV expands palette PNGs to colours).
    - ``rgb``: each pixel's colour must be one of ``spec.palette`` (or ``spec.ignore_color``);
      an unknown colour is an error naming it.
    - ``binary``: grey value > 127 -> 1, else 0 (white-on-black masks, JPEG noise tolerated).

    Values outside [0, num_classes) other than ``ignore_index`` raise an error naming the file and
    the values.
    """
    if spec.mask_format == "binary":
        grey = _decode(path, cv2.IMREAD_GRAYSCALE)
        return (grey > 127).astype(np.uint8)
    if spec.mask_format == "rgb":
        return _mask_from_colours(path, _decode(path, cv2.IMREAD_COLOR), spec)
    raw = _decode(path, cv2.IMREAD_UNCHANGED)
    if raw.ndim == 3:
        channels = raw[..., :3]
        if not (
            np.array_equal(channels[..., 0], channels[..., 1])
            and np.array_equal(channels[..., 0], channels[..., 2])
        ):
            raise EdgesegError(
                f"{path} holds colours, not class indices; for colour-coded or palette masks set "
                "mask_format: rgb (and the palette) in dataset.yaml"
            )
        raw = channels[..., 0]
    if raw.dtype.kind != "u":
        raise EdgesegError(f"{path} is a {raw.dtype} image; label masks must be 8 or 16-bit")
    limit = spec.num_classes
    if raw.size and int(raw.max()) >= limit:
        values = np.flatnonzero(np.bincount(raw.ravel()))
        bad = [int(v) for v in values if v >= limit and v != spec.ignore_index]
        if bad:
            shown = ", ".join(str(v) for v in bad[:5]) + (" ..." if len(bad) > 5 else "")
            allowed = f"0..{limit - 1}"
            if spec.ignore_index is not None:
                allowed += f" or {spec.ignore_index} (ignored)"
            raise EdgesegError(f"{path} has label value {shown} outside {allowed}")
    return np.ascontiguousarray(raw.astype(np.uint8, copy=False))


def _mask_from_colours(path: str | Path, image_bgr: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    rgb = image_bgr[..., ::-1].astype(np.int32)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colours = list(spec.palette)
    labels = list(range(spec.num_classes))
    if spec.ignore_color is not None and spec.ignore_index is not None:
        colours.append(spec.ignore_color)
        labels.append(spec.ignore_index)
    table = np.array([(r << 16) | (g << 8) | b for r, g, b in colours], dtype=np.int32)
    order = np.argsort(table, kind="stable")
    sorted_codes, sorted_labels = table[order], np.asarray(labels, dtype=np.uint8)[order]
    position = np.clip(np.searchsorted(sorted_codes, codes), 0, len(sorted_codes) - 1)
    known = sorted_codes[position] == codes
    if not known.all():
        code = int(codes[~known][0])
        colour = [(code >> 16) & 255, (code >> 8) & 255, code & 255]
        raise EdgesegError(
            f"{path} has colour RGB {colour} that is not in the palette"
            + ("" if spec.ignore_color is None else " nor the ignore_color")
        )
    return sorted_labels[position]


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image file, from its header for PNG and JPEG (no decoding)."""
    path = Path(path)
    if not path.is_file():
        raise EdgesegError(f"{path} not found")
    try:
        with path.open("rb") as handle:
            head = handle.read(32)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
                width, height = struct.unpack(">II", head[16:24])
                return int(height), int(width)
            if head[:2] == b"\xff\xd8":
                handle.seek(2)
                found = _jpeg_size(handle)
                if found is not None:
                    return found
    except OSError as exc:
        raise EdgesegError(f"cannot read {path}: {exc.strerror}") from None
    shape = _decode(path, cv2.IMREAD_UNCHANGED).shape
    return int(shape[0]), int(shape[1])


def _jpeg_size(handle: BinaryIO) -> tuple[int, int] | None:
    """Walk JPEG segments to the first start-of-frame marker; None if the stream looks odd."""
    while True:
        byte = handle.read(1)
        while byte and byte != b"\xff":
            byte = handle.read(1)
        while byte == b"\xff":
            byte = handle.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue  # markers without a length
        length_bytes = handle.read(2)
        if len(length_bytes) != 2:
            return None
        (length,) = struct.unpack(">H", length_bytes)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            frame = handle.read(5)
            if len(frame) != 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return int(height), int(width)
        handle.seek(length - 2, 1)


def validate_samples(samples: Sequence[Sample], spec: DatasetSpec) -> None:
    """Cheap checks of every (image, mask) pair before training starts.

    Reads only file headers (PNG, JPEG; other formats are decoded): a missing mask, or an image
    and mask of different sizes, raise an error naming the file and both sizes. Label values are
    checked when masks are read (:func:`read_mask`), not here.
    """
    del spec  # the mask format does not change its size; kept for a stable signature
    for sample in samples:
        image_path, mask_path = Path(sample.image), Path(sample.mask)
        if not image_path.is_file():
            raise EdgesegError(f"image {image_path} not found")
        if not mask_path.is_file():
            raise EdgesegError(f"mask {mask_path} for image {image_path.name} not found")
        image_hw, mask_hw = image_size(image_path), image_size(mask_path)
        if image_hw != mask_hw:
            raise EdgesegError(
                f"{mask_path} is {mask_hw[1]}x{mask_hw[0]} (WxH) but its image {image_path.name} "
                f"is {image_hw[1]}x{image_hw[0]}"
            )
