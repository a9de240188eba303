"""Calibration images from an image folder or glob, a video file, or a dataset split.

Every reader ends in the runtime's own preprocessing (:func:`edgeseg.preprocess.to_input_rgb`,
then :func:`~edgeseg.preprocess.normalize` when the quantizer asks), so the ranges INT8 is
calibrated on are the ranges the deployed model sees. Readers return uint8 RGB images at the
network's input size: that is what the cache stores, a quarter of the float size.

When a source holds more images than asked for, an evenly spaced subset is taken (deterministic,
and spread over the whole folder or video rather than its first seconds). A video is read
sequentially, decoding only every k-th frame (``grab`` skips the rest): seeking is slow and
inexact on most codecs.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from edgeseg.data.dataset_file import DATASET_FILE
from edgeseg.errors import EdgesegError
from edgeseg.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from edgeseg.preprocess import to_input_rgb

#: Below this many images a warning says the ranges may not represent deployment data
#: (TensorRT's and ONNX Runtime's guides both suggest a few hundred).
RECOMMENDED_MIN_IMAGES = 100


@dataclass(frozen=True)
class CalibrationSource:
    """What ``--calib-data`` names, resolved: its kind and the files or frames it reads.

    ``kind`` is ``images``, ``video`` or ``dataset``. ``files`` are the image files (images,
    dataset) or the one video file. ``frames`` are the video frame indices to decode. A dataset
    also gives each image's label mask and the dataset spec, so the check after quantization
    can measure mIoU against labels rather than against FP32.
    """

    kind: str
    description: str
    files: tuple[Path, ...]
    frames: tuple[int, ...] = ()
    masks: tuple[Path, ...] = ()
    spec: Any = None

    def read_labels(self, indices: Sequence[int], input_hw: Sequence[int]) -> np.ndarray | None:
        """(len(indices), h, w) labels of those images at the network size (nearest
        neighbour), or None when the source has no labels."""
        if not self.masks:
            return None
        from edgeseg.data import read_mask

        height, width = input_hw
        return np.stack(
            [
                cv2.resize(
                    read_mask(self.masks[i], self.spec), (width, height),
                    interpolation=cv2.INTER_NEAREST,
                )
                for i in indices
            ]
        )  # fmt: skip


def evenly_spaced(total: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(total)`` (all of them when fewer)."""
    if total <= count:
        return list(range(total))
    return sorted({round(float(i)) for i in np.linspace(0, total - 1, count)})


def is_dataset_root(path: Path) -> bool:
    """A ``dataset.yaml`` folder or a CamVid-layout root (``X/`` beside ``Xannot/``)."""
    if (path / DATASET_FILE).is_file():
        return True
    return any(p.is_dir() and (path / f"{p.name}annot").is_dir() for p in path.iterdir())


def _image_files(paths: Sequence[Path]) -> list[Path]:
    return sorted(p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _video_frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise EdgesegError(f"cannot open video {path}: not a video OpenCV can decode")
        reported = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if reported > 0:
            return reported
        count = 0  # containers without a frame count: count by grabbing
        while capture.grab():
            count += 1
        return count
    finally:
        capture.release()


def resolve_source(spec: str | Path, count: int, split: str = "train") -> CalibrationSource:
    """Resolve ``--calib-data``: a video file, a dataset root (its ``split``), an image folder
    (searched recursively) or a glob. Raises EdgesegError when nothing usable is there."""
    if count < 1:
        raise EdgesegError(f"--calib-count must be at least 1, got {count}")
    text = str(spec)
    if any(ch in text for ch in "*?["):
        files = _image_files([Path(p) for p in glob.glob(text, recursive=True)])
        if not files:
            raise EdgesegError(f"no images match {text} (looked for {' '.join(IMAGE_SUFFIXES)})")
        chosen = [files[i] for i in evenly_spaced(len(files), count)]
        return CalibrationSource(
            "images", f"{len(chosen)} of {len(files)} images {text}", tuple(chosen)
        )
    path = Path(text).expanduser()
    if not path.exists():
        raise EdgesegError(
            f"calibration data {path} not found; pass an image folder, a video file or a "
            "dataset root"
        )
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise EdgesegError(
                f"calibration data {path} is a file but not a video ({' '.join(VIDEO_SUFFIXES)}); "
                "pass a video, an image folder or a dataset root"
            )
        total = _video_frame_count(path)
        if total == 0:
            raise EdgesegError(f"video {path} holds no frames")
        frames = evenly_spaced(total, count)
        step = max(1, total // max(1, len(frames)))
        return CalibrationSource(
            "video", f"{len(frames)} of {total} frames (about one in {step}) of {path}",
            (path,), tuple(frames),
        )  # fmt: skip
    if is_dataset_root(path):
        from edgeseg.data import load_split

        spec, samples = load_split(path, split)
        chosen = [samples[i] for i in evenly_spaced(len(samples), count)]
        return CalibrationSource(
            "dataset", f"{len(chosen)} of {len(samples)} images of split {split!r} of {path}",
            tuple(s.image for s in chosen), masks=tuple(s.mask for s in chosen), spec=spec,
        )  # fmt: skip
    files = _image_files(list(path.rglob("*")))
    if not files:
        raise EdgesegError(
            f"no images in folder {path} (looked for {' '.join(IMAGE_SUFFIXES)}, recursively)"
        )
    chosen = [files[i] for i in evenly_spaced(len(files), count)]
    return CalibrationSource(
        "images", f"{len(chosen)} of {len(files)} images in {path}", tuple(chosen)
    )


def read_source(
    source: CalibrationSource,
    input_hw: Sequence[int],
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Decode ``source`` into (N, h, w, 3) uint8 RGB at ``input_hw``.

    Unreadable images are skipped and named in one warning; none readable is an error.
    """
    if source.kind == "video":
        images = _read_video_frames(source.files[0], source.frames, input_hw, progress)
    else:
        images, unreadable = [], []
        for path in tqdm(source.files, desc="calibration images", disable=not progress):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                unreadable.append(path)
                continue
            images.append(to_input_rgb(frame, input_hw))
        if unreadable and warn is not None:
            warn(f"skipped {len(unreadable)} unreadable image(s), e.g. {unreadable[0]}")
        if not images:
            raise EdgesegError(
                f"none of the calibration images could be read ({source.description})"
            )
    return np.stack(images)


def warn_if_few(count: int, warn: Callable[[str], None]) -> None:
    """Fewer than :data:`RECOMMENDED_MIN_IMAGES` images is a warning, not an error: a quick
    trial is legitimate, and the accuracy check after quantization says whether it was enough."""
    if count < RECOMMENDED_MIN_IMAGES:
        warn(
            f"only {count} calibration images; use at least {RECOMMENDED_MIN_IMAGES} "
            "(a few hundred frames like the deployment's) for ranges that hold up"
        )


def _read_video_frames(
    path: Path, frames: Sequence[int], input_hw: Sequence[int], progress: bool
) -> list[np.ndarray]:
    wanted = set(frames)
    images: list[np.ndarray] = []
    capture = cv2.VideoCapture(str(path))
    try:
        index = 0
        with tqdm(total=len(wanted), desc="calibration frames", disable=not progress) as bar:
            while len(images) < len(wanted) and capture.grab():
                if index in wanted:
                    ok, frame = capture.retrieve()
                    if ok and frame is not None:
                        images.append(to_input_rgb(frame, input_hw))
                    bar.update(1)
                index += 1
    finally:
        capture.release()
    if not images:
        raise EdgesegError(f"no frame of {path} could be decoded")
    return images
