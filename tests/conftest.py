"""Shared fixtures: small synthetic datasets written as real PNG/JPEG files into ``tmp_path``.

The generators are plain functions in ``tests/synthetic.py`` (importable as ``synthetic`` from any
test, since pytest puts ``tests/`` on ``sys.path`` for this conftest):

- ``camvid_like``: CamVid layout, 11 classes + void 11, 8 train / 4 val / 2 test images of
  60x80 (an odd aspect on purpose: a 64x64 input makes the training crop scale and pad). Read as
  :data:`edgeseg.data.CAMVID`. Learnable: a tiny SegNet's training loss falls within 2 epochs.
- ``generic_lists``: ``dataset.yaml`` + ``images/*.jpg`` + ``masks/*.png`` + ``train.txt`` /
  ``val.txt``, 3 classes, index masks (7 train / 3 val of 40x56).
- ``crack_like``: ``dataset.yaml`` with ``mask_format: binary``, 2 classes, white-on-black JPEG
  masks named ``<stem>_mask.jpg``, folders per split (7 train / 3 val of 40x56).

Each fixture returns the dataset root (a ``Path``) and writes a fresh copy per test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic import make_camvid_like, make_generic


@pytest.fixture
def camvid_like(tmp_path: Path) -> Path:
    return make_camvid_like(tmp_path / "camvid_like", n_train=8, n_val=4, n_test=2, seed=0)


@pytest.fixture
def generic_lists(tmp_path: Path) -> Path:
    return make_generic(tmp_path / "generic", layout="lists", mask_format="index", seed=1)


@pytest.fixture
def crack_like(tmp_path: Path) -> Path:
    return make_generic(
        tmp_path / "cracks", layout="dirs", mask_format="binary", mask_suffix="_mask", seed=2
    )
