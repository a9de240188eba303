"""edgeseg's entropy threshold search gives ONNX Runtime's thresholds, bit for bit.

ONNX Runtime's own ``get_entropy_threshold`` is the reference; the histograms are small (hundreds
of bins, not the 2048 calibration uses) so that the reference's Python loops stay quick, and
large enough that several histogram bins merge into one quantized bin.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeseg.calibration.entropy import entropy_threshold

ort_calibrate = pytest.importorskip("onnxruntime.quantization.calibrate")


def _record(values: np.ndarray, num_bins: int) -> tuple:
    """The collector's record of ``values``: (counts, edges, min, max, threshold)."""
    values = values.astype(np.float32)
    threshold = np.array(max(abs(values.min()), abs(values.max())), dtype=np.float32)
    hist, edges = np.histogram(values, num_bins, range=(-threshold, threshold))
    return hist, edges, values.min(), values.max(), threshold


def _histograms() -> dict[str, tuple]:
    rng = np.random.default_rng(0)
    normal = rng.standard_normal(20000)
    relu = np.maximum(normal, 0)  # half the values exactly zero: one tall bin, empty left half
    uniform = rng.uniform(-1, 1, 20000)  # every candidate's edge bins hold counts
    laplace = rng.laplace(size=20000)  # heavy tails: the bins past the last full group count
    floor = np.concatenate([normal * 0.2, rng.uniform(-1, 1, 2000)])
    outliers = np.concatenate([normal * 0.1, [40.0, -35.0]])  # a long, nearly empty tail
    counts, edges, *rest = _record(normal, 640)
    gaps = (counts * (np.arange(640) % 3 != 0), edges, *rest)  # every third bin empty
    zero, one = np.float32(0), np.float32(1)
    empty = (np.zeros(600, np.int64), np.linspace(-1, 1, 601, dtype=np.float32), zero, zero, one)
    return {
        "normal, 640 bins": _record(normal, 640),
        "normal, odd 651 bins": _record(normal, 651),
        "relu": _record(relu, 600),
        "uniform": _record(uniform, 620),
        "laplace": _record(laplace, 605),
        "normal over a uniform floor": _record(floor, 612),
        "outliers": _record(outliers, 700),
        "every third bin empty": gaps,
        "all empty (no candidate scores)": empty,
    }


@pytest.mark.parametrize("num_quantized_bins", [255, 128])
@pytest.mark.parametrize("name", sorted(_histograms()))
def test_thresholds_are_onnx_runtime_s(name: str, num_quantized_bins: int) -> None:
    histogram = _histograms()[name]
    collector = ort_calibrate.HistogramCollector(
        "entropy", False, histogram[0].size, num_quantized_bins, 99.999, "same"
    )
    expected = collector.get_entropy_threshold(histogram, num_quantized_bins)
    got = entropy_threshold(histogram, num_quantized_bins)
    assert [np.asarray(v).dtype for v in got] == [np.asarray(v).dtype for v in expected]
    assert [float(v) for v in got] == [float(v) for v in expected], name
