"""Class weights: a hand-computed case, and CamVid's train labels against the dataset README."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeseg.data import DatasetSpec, Sample, load_split
from edgeseg.errors import EdgesegError
from edgeseg.train.balance import class_pixel_stats, class_weights

CAMVID_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "camvid"

# "median-freq weight, recomputed on train" column of the CamVid README, classes 0..10.
README_MEDIAN_TRAIN = [0.2793, 0.2017, 4.7865, 0.1490, 1.0000, 0.4217, 3.8467, 1.9736, 0.7889,
                       6.3747, 8.8587]  # fmt: skip


def hand_case(tmp_path: Path) -> tuple[DatasetSpec, list[Sample]]:
    """Two 2x2 masks, classes a, b, c, d (d never occurs), 9 = ignored.

    A = [[0, 0], [1, 9]]    B = [[0, 2], [2, 2]]
    counts: a 3, b 1, c 3, d 0.  Images containing a: A, B (8 px, the ignored one included);
    b: A (4 px); c: B (4 px).  freq = 3/8, 1/4, 3/4; median 3/8 -> weights 1, 1.5, 0.5, and 0
    for d.  Inverse: 7 counted pixels, 3 classes present -> 7/(3*3), 7/(3*1), 7/(3*3), 0.
    """
    spec = DatasetSpec("hand", ("a", "b", "c", "d"), ((0, 0, 0),) * 4, 9, "index")
    samples = []
    for name, mask in (("A", [[0, 0], [1, 9]]), ("B", [[0, 2], [2, 2]])):
        path = tmp_path / f"{name}.png"
        cv2.imwrite(str(path), np.array(mask, np.uint8))
        samples.append(Sample(path, path))
    return spec, samples


def test_hand_computed_weights(tmp_path: Path) -> None:
    spec, samples = hand_case(tmp_path)
    counts, present = class_pixel_stats(samples, spec, progress=False)
    assert counts.tolist() == [3, 1, 3, 0]
    assert present.tolist() == [8, 4, 4, 0]
    median = class_weights("median", counts, present)
    assert median.dtype == np.float32
    np.testing.assert_allclose(median, [1.0, 1.5, 0.5, 0.0], rtol=1e-6)
    root = class_weights("sqrt-median", counts, present)
    np.testing.assert_allclose(root, [1.0, 1.5**0.5, 0.5**0.5, 0.0], rtol=1e-6)
    inverse = class_weights("inverse", counts, present)
    np.testing.assert_allclose(inverse, [7 / 9, 7 / 3, 7 / 9, 0.0], rtol=1e-6)
    # The pixel-weighted mean of the inverse weights is 1.
    assert float((inverse * counts).sum() / counts.sum()) == pytest.approx(1.0)
    np.testing.assert_array_equal(class_weights("none", counts, present), np.ones(4, np.float32))


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(EdgesegError, match="'mean' is not one of: median, sqrt-median, inverse"):
        class_weights("mean", np.ones(2), np.ones(2))


def test_no_labelled_pixels_is_an_error() -> None:
    with pytest.raises(EdgesegError, match="no labelled pixels"):
        class_weights("median", np.zeros(3), np.zeros(3))


@pytest.mark.skipif(not CAMVID_ROOT.is_dir(), reason=f"CamVid not found at {CAMVID_ROOT}")
def test_camvid_median_weights_match_the_readme() -> None:
    spec, samples = load_split(CAMVID_ROOT, "train")
    counts, present = class_pixel_stats(samples, spec, progress=False)
    weights = class_weights("median", counts, present)
    np.testing.assert_allclose(weights, README_MEDIAN_TRAIN, atol=1e-3)
    assert (present > 0).all() and counts.sum() < 367 * 360 * 480  # void is not counted
