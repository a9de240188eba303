"""Small synthetic segmentation datasets written as real image files, for tests.

Plain functions, independent of edgeseg (numpy, OpenCV and PyYAML only), so they can build data
for any test or by hand::

    from synthetic import make_camvid_like      # tests/ is on sys.path under pytest
    root = make_camvid_like(tmp_path / "camvid", n_train=8, n_val=4, hw=(60, 80), seed=0)

The images make the task learnable: every class has its own fixed colour (:func:`class_colours`),
each image is a random background class plus random rectangles, ellipses and thick lines of
other classes, painted in their class colour with Gaussian noise. A per-pixel colour classifier
can therefore reach near-perfect accuracy, and a tiny SegNet's loss falls within two epochs.
CamVid-like images also carry a band of void (label ``num_classes``, the ignore index) painted in
random colours, so ignore handling is exercised.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml


def class_colours(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8 RGB: well separated colours (hues spread, alternating brightness)."""
    hues = (np.arange(num_classes) * 180 / num_classes).astype(np.uint8)
    values = np.where(np.arange(num_classes) % 2 == 0, 230, 140).astype(np.uint8)
    hsv = np.stack([hues, np.full(num_classes, 220, np.uint8), values], axis=1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def draw_labels(
    rng: np.random.Generator, hw: tuple[int, int], num_classes: int, void_label: int | None
) -> np.ndarray:
    """(H, W) uint8 label map: a background class, 3-6 random shapes, an optional void band."""
    height, width = hw
    labels = np.full(hw, rng.integers(num_classes), dtype=np.uint8)
    for _ in range(int(rng.integers(3, 7))):
        label = int(rng.integers(num_classes))
        kind = int(rng.integers(3))
        x0, y0 = int(rng.integers(width)), int(rng.integers(height))
        if kind == 0:
            x1, y1 = int(rng.integers(width)), int(rng.integers(height))
            cv2.rectangle(labels, (x0, y0), (x1, y1), label, thickness=-1)
        elif kind == 1:
            axes = (int(rng.integers(4, width // 3 + 5)), int(rng.integers(4, height // 3 + 5)))
            angle = float(rng.uniform(0, 180))
            cv2.ellipse(labels, (x0, y0), axes, angle, 0, 360, label, thickness=-1)
        else:
            x1, y1 = int(rng.integers(width)), int(rng.integers(height))
            cv2.line(labels, (x0, y0), (x1, y1), label, thickness=int(rng.integers(2, 6)))
    if void_label is not None:
        top = int(rng.integers(0, height - 3))
        labels[top : top + int(rng.integers(1, 4)), :] = void_label
    return labels


def paint(rng: np.random.Generator, labels: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR image: each pixel its class colour plus noise; unknown labels random."""
    known = labels < len(colours)
    rgb = np.where(
        known[..., None],
        colours[np.minimum(labels, len(colours) - 1)],
        rng.integers(0, 256, (*labels.shape, 3)),
    ).astype(np.float32)
    rgb += rng.normal(0, 12, rgb.shape)
    return cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def make_camvid_like(
    root: str | Path,
    n_train: int = 8,
    n_val: int = 4,
    hw: tuple[int, int] = (60, 80),
    num_classes: int = 11,
    seed: int = 0,
    n_test: int = 0,
) -> Path:
    """A dataset in CamVid layout: ``train/`` + ``trainannot/``, ``val/`` + ``valannot/`` (and
    ``test/`` + ``testannot/`` when ``n_test`` > 0) of RGB PNG images and 8-bit label PNGs of the
    same file name, labels 0..num_classes-1 plus ``num_classes`` as void. With the default 11
    classes, edgeseg reads it as CamVid (void 11 ignored). Returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    colours = class_colours(num_classes)
    for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        for index in range(count):
            labels = draw_labels(rng, hw, num_classes, void_label=num_classes)
            name = f"seq{split[0]}_{index:05d}.png"
            _write(root / split / name, paint(rng, labels, colours))
            _write(root / f"{split}annot" / name, labels)
    return root


def make_generic(
    root: str | Path,
    layout: str = "lists",
    mask_format: str = "index",
    n: int = 10,
    hw: tuple[int, int] = (40, 56),
    num_classes: int = 3,
    seed: int = 0,
    mask_suffix: str = "",
    image_ext: str = ".jpg",
    ignore_index: int | None = None,
) -> Path:
    """A dataset with a ``dataset.yaml``, in one of the three generic layouts.

    ``layout``: ``dirs`` (``train/images`` + ``train/masks``, ``val/...``), ``lists``
    (``images/`` + ``masks/`` + ``train.txt``/``val.txt``) or ``random`` (``images/`` +
    ``masks/`` and ``random_split: {val: 0.3}``). Without ``dirs`` the first 70 % (rounded) of
    the ``n`` images are train. ``mask_format``: ``index`` (label PNGs), ``rgb`` (masks painted
    with the palette written to dataset.yaml) or ``binary`` (2 classes: thin dark "cracks" on a
    grey textured surface, masks white on black saved as JPEG, so noisy). With
    ``ignore_index`` set, a void band carries that label (index masks only). Returns ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    if mask_format == "binary":
        num_classes = 2
    colours = class_colours(num_classes)
    palette = [[int(v) for v in c] for c in colours]
    n_train = round(n * 0.7)
    stems = [f"img{index:03d}" for index in range(n)]
    for index, stem in enumerate(stems):
        split = "train" if index < n_train else "val"
        if mask_format == "binary":
            labels, image = _crack(rng, hw)
            mask, mask_ext = labels * 255, ".jpg"
        else:
            void = ignore_index if mask_format == "index" else None
            labels = draw_labels(rng, hw, num_classes, void_label=void)
            image = paint(rng, labels, colours)
            mask_ext = ".png"
            if mask_format == "rgb":
                mask = cv2.cvtColor(colours[labels], cv2.COLOR_RGB2BGR)
            else:
                mask = labels
        folder = root / split if layout == "dirs" else root
        _write(folder / "images" / f"{stem}{image_ext}", image)
        _write(folder / "masks" / f"{stem}{mask_suffix}{mask_ext}", mask)

    config: dict = {
        "name": "synthetic",
        "classes": [f"class{c}" for c in range(num_classes)],
        "mask_format": mask_format,
    }
    if mask_format == "rgb":
        config["palette"] = palette
    if mask_suffix:
        config["mask_suffix"] = mask_suffix
    if ignore_index is not None:
        config["ignore_index"] = ignore_index
    if layout == "dirs":
        config["splits"] = {
            split: {"images": f"{split}/images", "masks": f"{split}/masks"}
            for split in ("train", "val")
        }
    elif layout == "lists":
        config.update(images="images", masks="masks")
        config["splits"] = {"train": "train.txt", "val": "val.txt"}
        (root / "train.txt").write_text("\n".join(stems[:n_train]) + "\n")
        (root / "val.txt").write_text("# validation images\n" + "\n".join(stems[n_train:]) + "\n")
    elif layout == "random":
        config.update(images="images", masks="masks", random_split={"val": 0.3}, seed=seed)
    else:
        raise ValueError(f"layout {layout!r} is not dirs, lists or random")
    (root / "dataset.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def _crack(rng: np.random.Generator, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A crack-like sample: (H, W) 0/1 labels of a thin polyline, and a BGR image of it."""
    height, width = hw
    labels = np.zeros(hw, np.uint8)
    points = np.cumsum(rng.normal(0, 8, (8, 2)), axis=0) + np.array([width / 2, height / 2])
    points = np.clip(points, 0, [width - 1, height - 1]).astype(np.int32)
    cv2.polylines(labels, [points], False, 1, thickness=int(rng.integers(1, 3)))
    grey = rng.normal(150, 15, hw) - np.where(labels > 0, 100, 0)
    image = np.clip(grey, 0, 255).astype(np.uint8)
    return labels, cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
