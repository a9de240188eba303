"""Fixtures for the runtime tests (helpers live in ``runtime_helpers``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from runtime_helpers import CAMVID_CLIP, synthetic_frame, write_tiny_onnx, write_video


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_onnx(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture(scope="session")
def tiny_class_map_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_onnx(
        tmp_path_factory.mktemp("models") / "tiny_argmax.onnx", output="class_map"
    )


@pytest.fixture()
def make_video(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "clip.mp4", frames: int = 12, hw: tuple[int, int] = (48, 64)) -> Path:
        return write_video(tmp_path / name, frames, hw)

    return make


@pytest.fixture()
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), synthetic_frame(i))
    return folder


@pytest.fixture()
def camvid_clip() -> Path:
    if not CAMVID_CLIP.is_file():
        pytest.skip(f"CamVid clip not present at {CAMVID_CLIP}")
    return CAMVID_CLIP
