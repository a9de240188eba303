"""Finding the (image, mask) pairs of a dataset split, in the CamVid layout or a generic one.

CamVid layout (detected when there is no ``dataset.yaml``)::

    ROOT/train/  ROOT/trainannot/     ROOT/val/  ROOT/valannot/     ROOT/test/  ROOT/testannot/

Each folder ``X`` with a sibling ``Xannot`` is a split named ``X``; images and labels share file
names. The classes are :data:`~edgeseg.data.spec.CAMVID` (11 classes, label 11 = void, ignored).

Generic layout: a ``dataset.yaml`` in the root (read with ``yaml.safe_load``; data, never code)::

    name: cracks                  # optional, default: the root folder's name
    classes: [background, crack]  # class names; label value = position in this list
    palette: [[0, 0, 0], [255, 255, 255]]  # optional RGB per class; default: PASCAL VOC colours
    ignore_index: 255             # optional label excluded from loss and metrics
    ignore_color: [0, 0, 0]       # optional, rgb masks only: the colour that means ignore_index
    mask_format: binary           # index | rgb | binary (binary: grey > 127 -> 1, 2 classes)
    mask_suffix: _mask            # optional: image a.jpg <-> mask a_mask.png
    license: CC BY 4.0            # optional, copied into the model card

    # then the splits, in exactly one of three ways:
    # (a) a folder pair per split
    splits:
      train: {images: train/images, masks: train/masks}
      val: {images: val/images, masks: val/masks}
    # (b) one image and one mask folder, and a list file per split (one file stem per line;
    #     blank lines and lines starting with # are skipped)
    images: images
    masks: masks
    splits: {train: train.txt, val: val.txt}
    # (c) one image and one mask folder split at random: the given fractions of the images go
    #     to those splits, the rest to train; the shuffle uses `seed` (default: the seed
    #     passed to load_split, so set it here to keep val fixed across training seeds)
    images: images
    masks: masks
    random_split: {val: 0.2, test: 0.0}
    seed: 0

Paths are relative to the root. Images and masks are matched by file stem (``a.jpg`` <->
``a<mask_suffix>.png``; a mask may have any image extension, ``.png`` preferred). With a
``mask_suffix``, images and masks may share one folder. Images are
``.png .jpg .jpeg .bmp .tif .tiff .webp``.

Every problem is an :class:`~edgeseg.errors.EdgesegError` naming the path or file: a missing
root, an unknown split (the available ones are listed), a split with no images, an image without
a mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.data.dataset_file import DATASET_FILE, read_dataset_file, spec_from_dataset_file
from edgeseg.data.spec import CAMVID, DatasetSpec
from edgeseg.errors import EdgesegError
from edgeseg.media import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Sample:
    """One image and its label mask."""

    image: Path
    mask: Path


def load_split(root: str | Path, split: str, seed: int = 0) -> tuple[DatasetSpec, list[Sample]]:
    """The dataset's spec and the samples of ``split``, sorted by image file name.

    ``seed`` orders the shuffle of a ``random_split`` that gives no ``seed`` of its own.
    """
    root = Path(root)
    if not root.is_dir():
        raise EdgesegError(f"dataset folder {root} not found")
    if (root / DATASET_FILE).is_file():
        return _load_generic(root, split, seed)
    camvid_splits = sorted(
        p.name for p in root.iterdir() if p.is_dir() and (root / f"{p.name}annot").is_dir()
    )
    if not camvid_splits:
        raise EdgesegError(
            f"{root} has neither a {DATASET_FILE} nor CamVid folders (train/ + trainannot/)"
        )
    if split not in camvid_splits:
        raise EdgesegError(
            f"split {split!r} not found in {root}; available: {', '.join(camvid_splits)}"
        )
    samples = _pair_folder(root / split, root / f"{split}annot", "")
    if not samples:
        raise EdgesegError(f"no images in {root / split}")
    return CAMVID, samples


def _images_in(folder: Path, masks_beside: str = "") -> dict[str, Path]:
    """Images of ``folder`` by stem; ``masks_beside``: a mask suffix whose files to skip (when
    images and masks share the folder)."""
    if not folder.is_dir():
        raise EdgesegError(f"image folder {folder} not found")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if masks_beside and path.stem.endswith(masks_beside):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            if path.stem in found:
                raise EdgesegError(
                    f"{path} and {found[path.stem].name} share a file stem; keep one image per stem"
                )
            found[path.stem] = path
    return found


def _masks_in(folder: Path, suffix: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise EdgesegError(f"mask folder {folder} not found")
    rank = {ext: i for i, ext in enumerate(IMAGE_SUFFIXES)}
    found: dict[str, Path] = {}
    for path in folder.iterdir():
        ext = path.suffix.lower()
        if ext not in rank or not path.stem.endswith(suffix) or not path.is_file():
            continue
        stem = path.stem[: len(path.stem) - len(suffix)] if suffix else path.stem
        if stem not in found or rank[ext] < rank[found[stem].suffix.lower()]:
            found[stem] = path
    return found


def _pair(
    images: dict[str, Path], masks: dict[str, Path], mask_folder: Path, suffix: str
) -> list[Sample]:
    samples = []
    for stem in sorted(images):
        if stem not in masks:
            raise EdgesegError(
                f"image {images[stem]} has no mask {stem}{suffix}.png (or another image "
                f"extension) in {mask_folder}"
            )
        samples.append(Sample(images[stem], masks[stem]))
    return samples


def _shared_suffix(image_folder: Path, mask_folder: Path, suffix: str) -> str:
    """The mask suffix when images and masks share one folder, else ''."""
    same = image_folder.is_dir() and image_folder.resolve() == mask_folder.resolve()
    return suffix if same else ""


def _pair_folder(image_folder: Path, mask_folder: Path, suffix: str) -> list[Sample]:
    images = _images_in(image_folder, _shared_suffix(image_folder, mask_folder, suffix))
    return _pair(images, _masks_in(mask_folder, suffix), mask_folder, suffix)


def _folder(root: Path, data: dict[str, Any], key: str, where: str) -> Path:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise EdgesegError(f"{where}: '{key}' must name a folder relative to {root}")
    return root / value


def _load_generic(root: Path, split: str, seed: int) -> tuple[DatasetSpec, list[Sample]]:
    path = root / DATASET_FILE
    where = str(path)
    data = read_dataset_file(path)
    spec = spec_from_dataset_file(root, data)
    suffix = str(data.get("mask_suffix") or "")
    splits, random_split = data.get("splits"), data.get("random_split")
    if (splits is None) == (random_split is None):
        raise EdgesegError(f"{where}: give the splits with exactly one of splits: or random_split:")

    if splits is not None:
        if not isinstance(splits, dict) or not splits:
            raise EdgesegError(f"{where}: splits must map split names to folders or list files")
        if split not in splits:
            raise EdgesegError(
                f"split {split!r} is not in {where}; available: {', '.join(map(str, splits))}"
            )
        entry = splits[split]
        if isinstance(entry, dict):  # (a) a folder pair per split
            image_folder = _folder(root, entry, "images", f"{where} split {split}")
            mask_folder = _folder(root, entry, "masks", f"{where} split {split}")
            samples = _pair_folder(image_folder, mask_folder, suffix)
        elif isinstance(entry, str):  # (b) a list file per split
            image_folder = _folder(root, data, "images", where)
            mask_folder = _folder(root, data, "masks", where)
            samples = _from_list(root / entry, image_folder, mask_folder, suffix)
        else:
            raise EdgesegError(
                f"{where}: split {split} must be {{images: DIR, masks: DIR}} or a list file name"
            )
        image_place = image_folder
    else:  # (c) a seeded random split
        image_folder = _folder(root, data, "images", where)
        mask_folder = _folder(root, data, "masks", where)
        shares = _random_shares(random_split, where)
        available = ["train", *shares]
        if split not in available:
            raise EdgesegError(
                f"split {split!r} is not in {where}; available: {', '.join(available)}"
            )
        every = _pair_folder(image_folder, mask_folder, suffix)
        split_seed = data.get("seed", seed)
        if not isinstance(split_seed, int):
            raise EdgesegError(f"{where}: seed must be an integer")
        samples = _random_part(every, shares, split, split_seed)
        image_place = image_folder
    if not samples:
        raise EdgesegError(f"split {split!r} of {where} has no images (looked in {image_place})")
    return spec, samples


def _from_list(list_file: Path, image_folder: Path, mask_folder: Path, suffix: str) -> list[Sample]:
    if not list_file.is_file():
        raise EdgesegError(f"split list {list_file} not found")
    images = _images_in(image_folder, _shared_suffix(image_folder, mask_folder, suffix))
    wanted = []
    for number, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        stem = Path(entry).stem if Path(entry).suffix.lower() in IMAGE_SUFFIXES else entry
        if stem not in images:
            raise EdgesegError(f"{list_file} line {number}: no image {stem}.* in {image_folder}")
        wanted.append(stem)
    chosen = {stem: images[stem] for stem in wanted}
    return _pair(chosen, _masks_in(mask_folder, suffix), mask_folder, suffix)


def _random_shares(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise EdgesegError(f"{where}: random_split must map split names to fractions")
    shares = {}
    for name, share in value.items():
        if name == "train":
            raise EdgesegError(f"{where}: random_split gives train what the others leave")
        if not isinstance(share, int | float) or not 0 <= share < 1:
            raise EdgesegError(f"{where}: random_split {name}: {share!r} is not a fraction 0..1")
        shares[str(name)] = float(share)
    if sum(shares.values()) >= 1:
        raise EdgesegError(f"{where}: random_split fractions leave nothing for train")
    return shares


def _random_part(
    every: list[Sample], shares: dict[str, float], split: str, seed: int
) -> list[Sample]:
    """Split ``every`` (sorted) by a seeded permutation; each part comes back sorted."""
    order = np.random.default_rng(seed).permutation(len(every))
    start = 0
    for name, share in shares.items():
        count = round(share * len(every))
        if name == split:
            return sorted((every[i] for i in order[start : start + count]), key=_by_name)
        start += count
    return sorted((every[i] for i in order[start:]), key=_by_name)


def _by_name(sample: Sample) -> str:
    return sample.image.name
