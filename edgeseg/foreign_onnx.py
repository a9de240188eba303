"""Any segmentation ONNX, as jetson-inference takes ``--model --labels --colors``: the model card
edgeseg makes for a graph that carries none.

What the graph says is read from it: the input layout (NCHW when dimension 1 is 3, NHWC when
dimension 3 is), the input size when static, whether the output holds per-class scores
(float, NCHW or NHWC, at any resolution: the scores are resized to the frame) or a class map
(integers, (N, H, W) or (N, 1, H, W)), and a mean/std stored in the graph's metadata under
``mean``/``std``. What it cannot say comes from :class:`ForeignModelOptions`: the class names
(one per line), their colours (``R G B`` per line; default: distinct generated colours), the
input size of a graph that takes any size, and the normalisation (default ImageNet's, which
torchvision, mmsegmentation and most PyTorch models use). A contradiction (21 output channels
and 20 labels, a static 512x512 input and ``input_hw`` 360x480) is refused in one line.

``edgeseg card`` writes the card into a copy of the file, which then runs without options.
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.validate import ascii_int

FOREIGN_ARCHITECTURE = "onnx"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LAYOUTS = ("nchw", "nhwc")

#: A dimension as the readers give it: an int when static, a name or None when free.
Dim = int | str | None


@dataclass(frozen=True)
class ForeignModelOptions:
    """What a foreign graph cannot tell: ``labels`` (class names in output order), ``colors``
    (RGB per class; None: generated), ``input_hw`` (height, width; needed when the graph takes
    any size), ``mean``/``std`` (RGB, of pixels scaled to 0..1; None: the graph's metadata, else
    ImageNet's) and ``layout`` (``nchw``/``nhwc``; None: read from the input's shape)."""

    labels: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...] | None = None
    input_hw: tuple[int, int] | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    layout: str | None = None

    def __post_init__(self) -> None:
        if not self.labels:
            raise EdgesegError("labels: give at least one class name")
        if self.colors is not None and len(self.colors) != len(self.labels):
            raise EdgesegError(
                f"{len(self.colors)} colours for {len(self.labels)} labels; give one per label"
            )
        if self.layout is not None and self.layout not in LAYOUTS:
            raise EdgesegError(f"input layout {self.layout!r}: choose from {', '.join(LAYOUTS)}")


def read_labels(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Class names, one per line (blank lines and ``#`` comments skipped)."""
    lines = _lines(path, "labels")
    if not lines:
        raise EdgesegError(f"labels file {path} holds no class names")
    return tuple(lines)


def read_colors(path: str | os.PathLike[str]) -> tuple[tuple[int, int, int], ...]:
    """RGB colours, one per line as ``R G B`` or ``R,G,B`` (0..255)."""
    colors = []
    for number, line in enumerate(_lines(path, "colours"), 1):
        parts = line.replace(",", " ").split()
        if len(parts) < 3 or not all(ascii_int(p) is not None and int(p) <= 255 for p in parts[:3]):
            raise EdgesegError(f"{path} line {number}: expected R G B from 0 to 255, got {line!r}")
        colors.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return tuple(colors)


def _lines(path: str | os.PathLike[str], what: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise EdgesegError(f"cannot read {what} file {path}: {exc.strerror or exc}") from None
    return [s.strip() for s in text.splitlines() if s.strip() and not s.lstrip().startswith("#")]


def generated_palette(count: int) -> tuple[tuple[int, int, int], ...]:
    """``count`` distinct RGB colours (hues a golden angle apart), the same every time."""
    colors = []
    for index in range(count):
        hue = (index * 0.618033988749895) % 1.0
        red, green, blue = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
        colors.append((round(red * 255), round(green * 255), round(blue * 255)))
    return tuple(colors)


def _layout(shape: Sequence[Dim], options: ForeignModelOptions, name: str) -> str:
    if len(shape) != 4:
        raise EdgesegError(f"{name}: input has shape {list(shape)}; expected an image batch")
    found = "nchw" if shape[1] == 3 else "nhwc" if shape[3] == 3 else None
    if options.layout is not None:
        if found is not None and found != options.layout:
            raise EdgesegError(f"{name}: the input {list(shape)} is {found}, not {options.layout}")
        return options.layout
    if found is None:
        raise EdgesegError(
            f"{name}: cannot tell the input layout from its shape {list(shape)}; give the layout "
            "(nchw or nhwc)"
        )
    return found


def _input_hw(spatial: Sequence[Dim], options: ForeignModelOptions, name: str) -> tuple[int, int]:
    static = all(isinstance(d, int) and d > 0 for d in spatial)
    if static:
        graph_hw = (int(spatial[0]), int(spatial[1]))  # type: ignore[arg-type]
        if options.input_hw is not None and tuple(options.input_hw) != graph_hw:
            raise EdgesegError(
                f"{name}: its input is {graph_hw[0]}x{graph_hw[1]}, not the "
                f"{options.input_hw[0]}x{options.input_hw[1]} given"
            )
        return graph_hw
    if options.input_hw is None:
        raise EdgesegError(f"{name} takes any input size; give the input size (HxW, e.g. 360x480)")
    return (int(options.input_hw[0]), int(options.input_hw[1]))


def _output(shape: Sequence[Dim], integer: bool, classes: int, name: str) -> tuple[str, str]:
    """(card output, output layout) from the output's shape and element type."""
    if integer:
        if len(shape) == 3 or (len(shape) == 4 and shape[1] == 1):
            return "class_map", "nchw"
        raise EdgesegError(f"{name}: integer output {list(shape)} is not a class map (N, H, W)")
    if len(shape) != 4:
        raise EdgesegError(f"{name}: output {list(shape)} is not per-class scores (N, K, H, W)")
    for layout, dim in (("nchw", shape[1]), ("nhwc", shape[3])):
        if dim == classes:
            return "logits", layout
    counted = shape[1] if isinstance(shape[1], int) else shape[3]
    raise EdgesegError(
        f"{name}: the output {list(shape)} holds {counted} classes but {classes} labels were "
        "given; give one label per output channel"
    )


def _normalisation(
    options: ForeignModelOptions, metadata: Mapping[str, str], name: str
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    values = []
    for key, given, default in (("mean", options.mean, IMAGENET_MEAN),
                                ("std", options.std, IMAGENET_STD)):  # fmt: skip
        if given is not None:
            values.append(tuple(float(v) for v in given))
        elif key in metadata:
            try:
                values.append(tuple(float(v) for v in metadata[key].replace(",", " ").split()))
            except ValueError:
                bad = f"{name}: metadata {key}={metadata[key]!r} is not 3 numbers"
                raise EdgesegError(bad) from None
        else:
            values.append(default)
    if any(len(v) != 3 for v in values) or min(values[1]) <= 0:
        raise EdgesegError(f"{name}: mean and std take 3 numbers each, std above 0")
    return values[0], values[1]


def foreign_card(
    input_shape: Sequence[Dim],
    output_shape: Sequence[Dim],
    output_integer: bool,
    options: ForeignModelOptions,
    metadata: Mapping[str, str] | None = None,
    name: str = "the ONNX model",
) -> ModelCard:
    """The card for a foreign graph with this input and output (module docs). ``arch_args``
    records the graph's conventions (``input_layout``, ``output_layout``, ``output_size``
    ``any``) for the runtime's ONNX Runtime backend."""
    layout = _layout(input_shape, options, name)
    spatial = input_shape[2:] if layout == "nchw" else input_shape[1:3]
    input_hw = _input_hw(spatial, options, name)
    output, output_layout = _output(output_shape, output_integer, len(options.labels), name)
    mean, std = _normalisation(options, metadata or {}, name)
    return ModelCard(
        architecture=FOREIGN_ARCHITECTURE,
        num_classes=len(options.labels),
        class_names=tuple(options.labels),
        palette=options.colors or generated_palette(len(options.labels)),
        input_hw=input_hw,
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        arch_args={"input_layout": layout, "output_layout": output_layout, "output_size": "any"},
        output=output,
    )


def is_foreign(card: ModelCard) -> bool:
    """Whether ``card`` was made for a graph edgeseg did not export."""
    return card.architecture == FOREIGN_ARCHITECTURE
