"""Reading ``dataset.yaml``: the classes and mask format of a generic dataset.

The file's format, with an example, is in :mod:`edgeseg.data.layouts`, which resolves its splits.
The file is read with ``yaml.safe_load`` (data, never code) and unknown keys are refused with the
valid ones listed, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edgeseg.data.spec import MASK_FORMATS, DatasetSpec, default_palette
from edgeseg.errors import EdgesegError

DATASET_FILE = "dataset.yaml"

#: Every key dataset.yaml may hold.
KEYS = frozenset(
    ("name", "classes", "palette", "ignore_index", "ignore_color", "mask_format", "mask_suffix",
     "license", "splits", "images", "masks", "random_split", "seed")
)  # fmt: skip


def read_dataset_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise EdgesegError(f"{path} is not valid YAML: {detail}") from None
    if not isinstance(data, dict):
        raise EdgesegError(f"{path} must hold a mapping (classes:, mask_format:, splits: ...)")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise EdgesegError(
            f"{path}: unknown key {', '.join(unknown)}; valid keys: {', '.join(sorted(KEYS))}"
        )
    return data


def _colour(value: Any, where: str) -> tuple[int, int, int]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 3
        or not all(isinstance(v, int) and 0 <= v <= 255 for v in value)
    ):
        raise EdgesegError(f"{where}: colour {value!r} is not [R, G, B] with values 0..255")
    return (int(value[0]), int(value[1]), int(value[2]))


def spec_from_dataset_file(root: Path, data: dict[str, Any]) -> DatasetSpec:
    """The :class:`DatasetSpec` a parsed ``dataset.yaml`` describes."""
    where = str(root / DATASET_FILE)
    classes = data.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise EdgesegError(f"{where}: classes must be a non-empty list of class names")
    palette = data.get("palette")
    if palette is None:
        colours = default_palette(len(classes))
    elif isinstance(palette, list):
        colours = tuple(_colour(c, where) for c in palette)
    else:
        raise EdgesegError(f"{where}: palette must be a list of [R, G, B] colours")
    ignore_index = data.get("ignore_index")
    if ignore_index is not None and (not isinstance(ignore_index, int) or ignore_index < 0):
        raise EdgesegError(f"{where}: ignore_index must be a label value 0..255 or absent")
    mask_format = data.get("mask_format", "index")
    if mask_format not in MASK_FORMATS:
        raise EdgesegError(
            f"{where}: mask_format {mask_format!r} is not one of {', '.join(MASK_FORMATS)}"
        )
    ignore_color = data.get("ignore_color")
    try:
        return DatasetSpec(
            name=str(data.get("name") or root.resolve().name),
            class_names=tuple(classes),
            palette=colours,
            ignore_index=ignore_index,
            mask_format=mask_format,
            license=str(data.get("license", "")),
            ignore_color=None if ignore_color is None else _colour(ignore_color, where),
        )
    except EdgesegError as exc:
        raise EdgesegError(f"{where}: {exc}") from None
