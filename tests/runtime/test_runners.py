"""The backends layer's one interface (``edgeseg.backends.runner.BaseRunner``): ``infer()``
validates a batch before any engine sees it, feeds it in chunks the engine takes, and checks the
output against the card; ``open_runner`` picks the runner by file type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import INPUT_HW, tiny_card, write_tiny_onnx

from edgeseg.backends.onnxruntime import OnnxRuntimeRunner
from edgeseg.backends.runner import BaseRunner, open_runner, run_onnx
from edgeseg.errors import EdgesegError


def _batch(n: int, hw: tuple[int, int] = INPUT_HW, dtype: type = np.float32) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, 3, *hw)).astype(dtype)


@pytest.mark.parametrize(
    ("batch", "fragment"),
    [
        (_batch(2, dtype=np.float64), "input must be float32, got float64"),
        (_batch(2)[:, :2], "input must be an (N, 3, H, W) array, got (2, 2, 24, 32)"),
        (_batch(2)[0], "input must be an (N, 3, H, W) array, got (3, 24, 32)"),
        (_batch(2, hw=(20, 32)), "input is 20x32 but the model card says 24x32"),
        (_batch(2)[:0], "empty batch"),
    ],
)
def test_infer_refuses_a_wrong_batch_before_the_engine(
    tiny_onnx: Path, batch: np.ndarray, fragment: str
) -> None:
    runner = open_runner(tiny_onnx)
    assert isinstance(runner, OnnxRuntimeRunner) and runner.card == tiny_card()
    with pytest.raises(EdgesegError, match=r"tiny\.onnx: ") as info:
        runner.infer(batch)
    assert fragment in str(info.value)


def test_a_static_batch_graph_takes_any_batch_in_chunks(tmp_path: Path) -> None:
    path = write_tiny_onnx(tmp_path / "static.onnx", batch=2)
    runner = OnnxRuntimeRunner(path, with_card=True)
    assert runner.max_batch == 2
    batch = _batch(5)
    output = runner.infer(batch)
    assert output.shape == (5, tiny_card().num_classes, *INPUT_HW)
    for i in range(5):  # each item as if run alone, whatever chunk it was in
        np.testing.assert_allclose(output[i], runner.infer(batch[i : i + 1])[0], rtol=1e-6)


def test_an_output_that_contradicts_the_card_is_refused(tmp_path: Path) -> None:
    # A card copied from another model: it promises a class map, the graph gives scores.
    path = write_tiny_onnx(tmp_path / "mislabelled.onnx")
    runner = OnnxRuntimeRunner(path, with_card=True)
    runner.output = "class_map"
    with pytest.raises(EdgesegError, match="does not match its model card"):
        runner.infer(_batch(1))


def test_a_bare_graph_runs_at_any_size(tmp_path: Path) -> None:
    # Export's parity checks run graphs without cards at odd sizes: no card, no size rule.
    path = write_tiny_onnx(tmp_path / "bare.onnx", with_card=False, input_hw=(17, 11))
    assert run_onnx(path, _batch(2, hw=(17, 11))).shape == (2, tiny_card().num_classes, 17, 11)


class _Doubling(BaseRunner):
    """The smallest runner: what a new engine implements."""

    name = "doubling"
    max_batch = 3

    def __init__(self) -> None:
        self.calls: list[int] = []

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        return batch * 2


def test_a_subclass_implements_infer_impl_only() -> None:
    runner = _Doubling()
    batch = _batch(7)
    np.testing.assert_array_equal(runner.infer(batch), batch * 2)
    assert runner.calls == [3, 3, 1]
    with pytest.raises(EdgesegError, match="float32"):
        runner.infer(batch.astype(np.float16))
    assert runner.calls == [3, 3, 1]  # the engine never saw the wrong batch
