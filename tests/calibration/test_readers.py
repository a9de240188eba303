"""Calibration readers and their cache: image folders, globs, videos and dataset splits, real
files written with OpenCV, through the runtime's preprocessing."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeseg.calibration.cache import cache_key, load_images
from edgeseg.calibration.readers import (
    RECOMMENDED_MIN_IMAGES,
    evenly_spaced,
    read_source,
    resolve_source,
    warn_if_few,
)
from edgeseg.errors import EdgesegError
from edgeseg.preprocess import to_input_rgb

INPUT_HW = (24, 32)


def _write_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"img_{i:03d}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def _write_video(path: Path, frames: int, hw: tuple[int, int] = (48, 64)) -> None:
    """Frame i is a flat grey of level 8 * i (survives mp4v compression within a few levels)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (hw[1], hw[0]))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((*hw, 3), 8 * i, dtype=np.uint8))
    writer.release()


def test_evenly_spaced() -> None:
    assert evenly_spaced(5, 10) == [0, 1, 2, 3, 4]
    assert evenly_spaced(30, 5) == [0, 7, 14, 22, 29]
    assert evenly_spaced(100, 1) == [0]


def test_folder_recursive_subset_and_preprocessing(tmp_path: Path) -> None:
    files = _write_images(tmp_path / "a", 6) + _write_images(tmp_path / "b" / "deeper", 4, seed=1)
    (tmp_path / "notes.txt").write_text("not an image")
    source = resolve_source(tmp_path, count=5)
    assert source.kind == "images"
    assert len(source.files) == 5
    assert "5 of 10 images" in source.description
    images = read_source(source, INPUT_HW, progress=False)
    assert images.shape == (5, *INPUT_HW, 3) and images.dtype == np.uint8
    first = sorted(files)[0]
    assert np.array_equal(images[0], to_input_rgb(cv2.imread(str(first)), INPUT_HW))


def test_unreadable_images_are_skipped_and_named(tmp_path: Path) -> None:
    _write_images(tmp_path, 3)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    warnings: list[str] = []
    images = read_source(resolve_source(tmp_path, 10), INPUT_HW, False, warnings.append)
    assert len(images) == 3
    assert any("broken.jpg" in w and "skipped 1" in w for w in warnings)


def test_folder_of_only_unreadable_images(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"nope")
    with pytest.raises(EdgesegError, match="none of the calibration images could be read"):
        read_source(resolve_source(tmp_path, 10), INPUT_HW, progress=False)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "no images in folder"),
        (lambda p: None, "not found"),
        (lambda p: p.write_text("x"), "is a file but not a video"),
    ],
)
def test_bad_sources(tmp_path: Path, make, message: str) -> None:
    target = tmp_path / "data.txt"
    make(target)
    with pytest.raises(EdgesegError, match=message):
        resolve_source(target, 10)


def test_glob(tmp_path: Path) -> None:
    _write_images(tmp_path, 4)
    source = resolve_source(str(tmp_path / "img_00[12].png"), 10)
    assert [p.name for p in source.files] == ["img_001.png", "img_002.png"]
    with pytest.raises(EdgesegError, match="no images match"):
        resolve_source(str(tmp_path / "*.jpg"), 10)


def test_video_every_kth_frame(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    _write_video(video, 30)
    source = resolve_source(video, count=5)
    assert source.kind == "video"
    assert source.frames == (0, 7, 14, 22, 29)
    images = read_source(source, INPUT_HW, progress=False)
    assert images.shape == (5, *INPUT_HW, 3)
    levels = images.reshape(5, -1).mean(axis=1)
    assert np.allclose(levels, [8 * f for f in source.frames], atol=6), levels


def test_not_a_video(tmp_path: Path) -> None:
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"garbage")
    with pytest.raises(EdgesegError, match="cannot open video"):
        resolve_source(fake, 5)


def test_dataset_split(camvid_like: Path) -> None:
    source = resolve_source(camvid_like, count=100, split="val")
    assert source.kind == "dataset"
    assert len(source.files) == 4 and all(p.parent.name == "val" for p in source.files)
    with pytest.raises(EdgesegError, match="split 'nope' not found"):
        resolve_source(camvid_like, count=100, split="nope")


def test_few_images_warning() -> None:
    said: list[str] = []
    warn_if_few(RECOMMENDED_MIN_IMAGES, said.append)
    assert said == []
    warn_if_few(12, said.append)
    assert len(said) == 1 and "only 12 calibration images" in said[0]


def test_cache_hit_miss_and_damage(tmp_path: Path) -> None:
    files = _write_images(tmp_path / "data", 4)
    cache = tmp_path / "cache"
    source = resolve_source(tmp_path / "data", 10)
    first, hit = load_images(source, INPUT_HW, cache_dir=cache, progress=False)
    assert not hit and len(list(cache.glob("*.npy"))) == 1
    again, hit = load_images(source, INPUT_HW, cache_dir=cache, progress=False)
    assert hit and np.array_equal(first, again)
    # Another input size is another entry.
    assert cache_key(source, (12, 16)) != cache_key(source, INPUT_HW)
    # A replaced file changes the key: the cache is not trusted blindly.
    stat = files[0].stat()
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))
    _, hit = load_images(resolve_source(tmp_path / "data", 10), INPUT_HW, cache_dir=cache)
    assert not hit
    # A damaged entry is rebuilt, not fatal.
    for entry in cache.glob("*.npy"):
        entry.write_bytes(b"damaged")
    rebuilt, hit = load_images(source, INPUT_HW, cache_dir=cache, progress=False)
    assert not hit and rebuilt.shape == first.shape
