"""Confusion-matrix metrics against hand-computed values, ignore handling, JSON, boundary F1."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from edgeseg.metrics import ConfusionMatrix, format_table, to_jsonable

# A 3-class case (label 11 ignored):
#   target = 0 0 0 1 1 2 2 2 2 11
#   pred   = 0 0 1 1 2 2 2 0 2  1
# Confusion matrix (rows = truth, columns = prediction):
#   truth 0: [2, 1, 0]     TP = (2, 1, 3), truth totals G = (3, 2, 4), predicted totals
#   truth 1: [0, 1, 1]     P = (3, 2, 4).
#   truth 2: [1, 0, 3]
# IoU = 2/(3+3-2) = 0.5, 1/(2+2-1) = 1/3, 3/(4+4-3) = 0.6 -> mIoU 0.477778
# accuracy = 2/3, 1/2, 3/4 -> mean class accuracy 0.638889; pixel accuracy 6/9
# Dice = 4/6, 2/4, 6/8 -> mean 0.638889; fwIoU = (3*0.5 + 2*(1/3) + 4*0.6) / 9 = 0.507407
TARGET = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 11])
PRED = np.array([0, 0, 1, 1, 2, 2, 2, 0, 2, 1])


def hand_matrix() -> ConfusionMatrix:
    matrix = ConfusionMatrix(3, ignore_index=11)
    matrix.update(PRED, TARGET)
    return matrix


def test_hand_computed_three_classes() -> None:
    matrix = hand_matrix()
    assert matrix.matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix.matrix, [[2, 1, 0], [0, 1, 1], [1, 0, 3]])
    metrics = matrix.compute(["a", "b", "c"])
    assert set(metrics) == {"miou", "pixel_accuracy", "class_accuracy", "fwiou", "mean_dice",
                            "per_class"}  # fmt: skip
    assert metrics["miou"] == pytest.approx((0.5 + 1 / 3 + 0.6) / 3)
    assert metrics["pixel_accuracy"] == pytest.approx(6 / 9)
    assert metrics["class_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 3 / 4) / 3)
    assert metrics["fwiou"] == pytest.approx((3 * 0.5 + 2 / 3 + 4 * 0.6) / 9)
    assert metrics["mean_dice"] == pytest.approx((4 / 6 + 2 / 4 + 6 / 8) / 3)
    first = metrics["per_class"][0]
    assert first == {"name": "a", "iou": 0.5, "accuracy": pytest.approx(2 / 3),
                     "dice": pytest.approx(4 / 6), "pixels": 3}  # fmt: skip


def test_any_shape_tensors_and_accumulation() -> None:
    once = hand_matrix()
    split = ConfusionMatrix(3, ignore_index=11)
    split.update(
        torch.from_numpy(PRED[:4]).reshape(2, 2), torch.from_numpy(TARGET[:4]).reshape(2, 2)
    )
    split.update(PRED[4:].reshape(1, 6), TARGET[4:].reshape(1, 6))
    np.testing.assert_array_equal(split.matrix, once.matrix)
    other = hand_matrix()
    other.merge(once)
    np.testing.assert_array_equal(other.matrix, 2 * once.matrix)
    other.reset()
    assert other.matrix.sum() == 0


def test_ignore_and_out_of_range_labels_are_not_counted() -> None:
    matrix = ConfusionMatrix(3, ignore_index=None)
    matrix.update(np.array([0, 1, 2, 1]), np.array([0, 255, 3, 1]))  # 255 padding, 3 >= K
    np.testing.assert_array_equal(matrix.matrix, [[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    zero_ignored = ConfusionMatrix(3, ignore_index=0)
    zero_ignored.update(np.array([1, 1]), np.array([0, 1]))
    assert zero_ignored.matrix.sum() == 1


def test_perfect_prediction_scores_one() -> None:
    target = np.random.default_rng(0).integers(0, 4, (16, 16))
    matrix = ConfusionMatrix(4)
    matrix.update(target, target)
    metrics = matrix.compute()
    for key in ("miou", "pixel_accuracy", "class_accuracy", "fwiou", "mean_dice"):
        assert metrics[key] == 1.0, key
    assert [row["name"] for row in metrics["per_class"]] == ["0", "1", "2", "3"]


def test_absent_classes_are_nan_and_left_out_of_means() -> None:
    matrix = ConfusionMatrix(4)
    # Class 2 only predicted (IoU 0, accuracy undefined); class 3 absent everywhere (all NaN).
    matrix.update(np.array([0, 1, 2]), np.array([0, 1, 1]))
    metrics = matrix.compute()
    rows = metrics["per_class"]
    assert rows[2]["iou"] == 0.0 and math.isnan(rows[2]["accuracy"])
    assert all(math.isnan(rows[3][k]) for k in ("iou", "accuracy", "dice"))
    assert metrics["miou"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert metrics["class_accuracy"] == pytest.approx((1 + 0.5) / 2)
    text = json.dumps(to_jsonable(metrics), allow_nan=False)
    assert json.loads(text)["per_class"][3]["iou"] is None


def test_nothing_counted_is_nan_without_warnings() -> None:
    matrix = ConfusionMatrix(2, ignore_index=5)
    matrix.update(np.array([0, 1]), np.array([5, 5]))
    with np.errstate(all="raise"):
        metrics = matrix.compute()
    assert all(math.isnan(metrics[k]) for k in ("miou", "pixel_accuracy", "fwiou"))


def test_bad_inputs_raise() -> None:
    matrix = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="differ in shape"):
        matrix.update(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match=r"classes 0\.\.2"):
        matrix.update(np.array([3]), np.array([0]))


def test_format_table() -> None:
    metrics = ConfusionMatrix(4)
    metrics.update(np.array([0, 1, 2]), np.array([0, 1, 1]))
    table = format_table(metrics.compute(["Sky", "Road", "Car", "Bicyclist"]))
    lines = table.splitlines()
    assert lines[0].split() == ["class", "IoU", "acc", "Dice", "pixels"]
    assert lines[1].split() == ["Sky", "1.0000", "1.0000", "1.0000", "1"]
    assert lines[4].split() == ["Bicyclist", "-", "-", "-", "0"]
    assert "mean IoU:" in table and "0.5000" in table
