"""Post-training INT8 quantization of the portable ONNX graph, in the form TensorRT builds from.

ONNX Runtime's ``quantize_static`` writes explicit QuantizeLinear/DequantizeLinear (QDQ) pairs:

- signed int8 everywhere, symmetric: activations per tensor with zero point 0, weights per output
  channel; biases stay float (TensorRT quantizes them itself from the fused scales);
- Q/DQ on the **inputs of every convolution only** (the activation and the weight), never on a
  convolution's output, so the logits leave the network in float. This is TensorRT's own
  placement advice for explicit quantization: it fuses DQ -> Conv -> ReLU -> Q into one INT8
  kernel with INT8 output wherever the next layer's Q follows, and it commutes a Q backwards
  through max pooling, so pooling runs in INT8 without a scale of its own (max commutes with a
  monotonic scale). Quantizing outputs too (ONNX Runtime's default) adds a second rounding per
  layer and Q/DQ pairs TensorRT must fold away; on a trained CamVid model it also cost accuracy
  (docs/int8.md);
- the unpooling blocks are excluded: the plugin computes in FP32/FP16 and needs float inputs, so
  its two inputs (decoder tensor, pre-pool tensor) stay float and the Q of the next convolution
  follows it. After quantization the export stage's ``to_trt_graph`` swaps each block
  for the plugin node, exactly as for the FP32 graph.

Calibration methods: ``entropy`` (the threshold that minimises the KL divergence between the
tensor's histogram and its 8-bit version, TensorRT's classic default), ``percentile`` (the
99.999th percentile of |x|) and ``minmax``. edgeseg runs ONNX Runtime's calibrators itself
rather than through ``quantize_static``, for two reasons: ``quantize_static`` cannot pass the
histogram settings, and its entropy default (128 bins searched for 128 quantized bins) has one
candidate threshold, the full range, so "entropy" silently equals min-max; and it keeps every
intermediate tensor of every image in memory. Here entropy searches 2048 bins for the best
255-level (symmetric int8) threshold, percentile uses a histogram of |x|, and images go through
in chunks whose histograms and ranges are merged. The ranges are written to ONNX Runtime's JSON
range cache and ``quantize_static`` builds the graph from it; the per-layer analysis reuses the
same file, so it never calibrates twice. Entropy's threshold search is ONNX Runtime's, computed by
``edgeseg.calibration.entropy`` without its per-bin Python loops (the same thresholds, about ten
times faster: over a minute per calibration of even a tiny model before).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from edgeseg.calibration.settings import DEFAULT_METHOD, METHODS
from edgeseg.errors import EdgesegError, missing_extra
from edgeseg.unpool_graph import unpool_node_names

if TYPE_CHECKING:
    from onnxruntime.quantization.calibrate import CalibraterBase, TensorsData

#: Percentile of |x| the ``percentile`` method clips at.
PERCENTILE = 99.999
#: The layer types that get Q/DQ (on their inputs).
QUANTIZED_OPS = ("Conv",)
#: Also calibrated (no Q/DQ of their own): ReLU and MaxPool outputs, the decoder tensors that
#: feed the unpooling blocks (see :func:`calibrate`).
CALIBRATED_ALSO = ("Relu", "MaxPool")
#: Images per calibrator pass: bounds memory (every calibrated tensor of every image in a chunk
#: is held until the chunk's histograms are merged; ~1 GB for full SegNet at 360x480).
CHUNK = 4
#: ONNX Runtime calibrator settings per method (see the module doc).
CALIBRATOR_OPTIONS: dict[str, dict[str, object]] = {
    "entropy": {"num_bins": 2048, "num_quantized_bins": 255},
    "percentile": {"num_bins": 2048, "percentile": PERCENTILE, "symmetric": True},
    "minmax": {"symmetric": True},
}


def quantizable_layers(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes INT8 applies to: every Conv outside the unpooling blocks."""
    excluded = set(unpool_node_names(model))
    return [
        n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS and n.name not in excluded
    ]


def _ort_quantization():
    try:
        from onnxruntime import quantization
    except ImportError:
        raise missing_extra("onnxruntime", "onnx") from None
    return quantization


class _ArrayReader:
    """Feeds (N, 3, H, W) float32 inputs one image at a time (the static graphs take batch 1)."""

    def __init__(self, input_name: str, inputs: np.ndarray) -> None:
        self.input_name = input_name
        self.inputs = inputs
        self.index = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= len(self.inputs):
            return None
        self.index += 1
        return {self.input_name: self.inputs[self.index - 1 : self.index]}

    def __len__(self) -> int:
        return len(self.inputs)


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """ONNX Runtime's quantizer logs a pre-processing hint and calibration chatter through the
    root logger and print(); keep the export's output to what edgeseg says."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(None):
            yield
    finally:
        root.setLevel(level)


def quantize_int8(
    model: onnx.ModelProto,
    inputs: np.ndarray | None,
    *,
    method: str = DEFAULT_METHOD,
    keep_float: Sequence[str] = (),
    only: Sequence[str] | None = None,
    ranges_cache: str | Path | None = None,
    saved: Path | None = None,
) -> onnx.ModelProto:
    """A QDQ INT8 copy of the portable FP32 ``model`` (see the module doc for the placement).

    ``inputs``: (N, 3, H, W) float32 calibration inputs, already preprocessed; may be None when
    ``ranges_cache`` already holds the ranges of this model and method. ``keep_float``: layer
    names (see :func:`quantizable_layers`) to leave in float. ``only``: quantize just these
    layers (the per-layer analysis). ``ranges_cache``: ONNX Runtime's JSON range file, written
    on the first call and read on later ones. ``saved``: a file already holding ``model``, so a
    caller quantizing one model many times writes it once.
    """
    if method not in METHODS:
        raise EdgesegError(f"calibration method {method!r} is not one of: {', '.join(METHODS)}")
    layers = quantizable_layers(model)
    unknown = sorted(set(keep_float) - set(layers))
    if unknown:
        raise EdgesegError(f"no quantizable layer named {', '.join(unknown)}")
    quantization = _ort_quantization()
    extra_options = {
        "ActivationSymmetric": True,
        "WeightSymmetric": True,
        "QuantizeBias": False,
        "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS),
    }
    with tempfile.TemporaryDirectory(prefix="edgeseg-int8-") as tmp:
        # quantize_static takes a ModelProto, but ONNX Runtime 1.32 then reloads it from a
        # temporary folder it has already deleted; a file path avoids that.
        target = Path(tmp) / "int8.onnx"
        source = saved if saved is not None else Path(tmp) / "fp32.onnx"
        if saved is None:
            onnx.save(model, source)
        ranges = Path(ranges_cache) if ranges_cache is not None else Path(tmp) / "ranges.json"
        if not ranges.is_file():
            if inputs is None:
                raise ValueError("no calibration inputs and no range cache to quantize from")
            calibrate(model, source, inputs, method, ranges, Path(tmp))
        with _quiet_quantizer():
            quantization.quantize_static(
                str(source),
                str(target),
                None,
                quant_format=quantization.QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTIZED_OPS),
                per_channel=True,
                activation_type=quantization.QuantType.QInt8,
                weight_type=quantization.QuantType.QInt8,
                nodes_to_quantize=list(only) if only is not None else None,
                nodes_to_exclude=[*unpool_node_names(model), *keep_float],
                calibrate_method=_method_enum(method),
                extra_options=extra_options,
                calibration_cache_path=str(ranges),
            )
        quantized = onnx.load(target)
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(model.metadata_props)
    quantized.producer_name = model.producer_name
    return quantized


def _method_enum(method: str):
    methods = _ort_quantization().CalibrationMethod
    return {"entropy": methods.Entropy, "percentile": methods.Percentile, "minmax": methods.MinMax}[
        method
    ]


def calibrate(
    model: onnx.ModelProto,
    model_path: Path,
    inputs: np.ndarray,
    method: str,
    ranges: Path,
    work: Path,
) -> None:
    """Run ONNX Runtime's ``method`` calibrator over ``inputs`` in chunks of :data:`CHUNK` and
    write the tensor ranges to ``ranges`` (ONNX Runtime's JSON range cache format).
    ``model_path`` holds ``model``, which the calibrator reads."""
    from onnxruntime.quantization.calibrate import TensorData, create_calibrator, save_tensors_data

    from edgeseg.unpool_graph import find_unpool_sites

    if inputs.ndim != 4 or inputs.dtype != np.float32 or len(inputs) == 0:
        raise ValueError(f"calibration inputs must be (N, 3, H, W) float32, got {inputs.shape}")
    with _quiet_quantizer():
        calibrator = create_calibrator(
            model_path,
            [*QUANTIZED_OPS, *CALIBRATED_ALSO],
            augmented_model_path=str(work / "augmented.onnx"),
            calibrate_method=_method_enum(method),
            extra_options=CALIBRATOR_OPTIONS[method],
        )
        name = calibrator.infer_session.get_inputs()[0].name
        for start in range(0, len(inputs), CHUNK):
            calibrator.collect_data(_ArrayReader(name, inputs[start : start + CHUNK]))
        tensors = _compute_ranges(calibrator, method)
    if name in tensors:
        # The network input is a normalised uint8 image: its range is known exactly and its
        # extremes are real content (sky, headlights), not outliers a histogram method should
        # clip (entropy cut CamVid's input at 2.3 of 2.64). It keeps the images' full range.
        low = np.array(inputs.min(), dtype=np.float32)
        high = np.array(inputs.max(), dtype=np.float32)
        tensors[name] = TensorData(lowest=low, highest=high)
    for site in find_unpool_sites(model):
        # Unpooling moves values and fills the rest with zeros: its output holds exactly the
        # decoder tensor's values, so it takes the decoder tensor's range (the scale TensorRT
        # would carry across it anyway). Calibrated on its own, three zeros in four drag the
        # histogram methods to a threshold a tenth of the real one, and the next convolution
        # clips its input.
        if site.output in tensors and site.decoder in tensors:
            tensors[site.output] = tensors[site.decoder]
    save_tensors_data(tensors, ranges)


def _compute_ranges(calibrator: CalibraterBase, method: str) -> TensorsData:
    """The calibrator's ranges (ONNX Runtime's ``TensorsData``). For ``entropy`` the thresholds
    come from :func:`~edgeseg.calibration.entropy.entropy_threshold`: ONNX Runtime's own search,
    bit for bit, without the Python loops that made it take over a minute on a tiny model."""
    if method != "entropy":
        return calibrator.compute_data()
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorsData

    from edgeseg.calibration.entropy import entropy_threshold

    collector = calibrator.collector
    return TensorsData(
        CalibrationMethod.Entropy,
        {
            name: (*entropy_threshold(histogram, collector.num_quantized_bins), *histogram[:2])
            for name, histogram in collector.histogram_dict.items()
        },
    )


def qdq_problems(model: onnx.ModelProto) -> list[str]:
    """What keeps a QDQ graph from the form TensorRT wants; empty when it has that form."""
    from onnx import numpy_helper

    initializers = {t.name: t for t in model.graph.initializer}
    constants = {n.output[0]: n.attribute[0].t for n in model.graph.node if n.op_type == "Constant"}
    problems = []
    outputs = {o.name for o in model.graph.output}
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        zero_name = node.input[2] if len(node.input) > 2 else ""
        tensor = initializers.get(zero_name) or constants.get(zero_name)
        if tensor is None:
            problems.append(f"{node.name}: no zero point")
            continue
        zero = numpy_helper.to_array(tensor)
        if zero.dtype != np.int8 or np.any(zero != 0):
            problems.append(f"{node.name}: zero point {zero.dtype} {zero.ravel()[:3]}, not int8 0")
        if node.op_type == "DequantizeLinear" and node.output[0] in outputs:
            problems.append(f"{node.name}: the graph output is quantized")
    return problems
