"""Evaluation: any artifact, one dataset split, metrics at the labels' own resolution.

Training validation and ``edgeseg eval`` share :func:`evaluate_predictor`, so a number printed
during training and one printed by ``edgeseg eval`` mean the same thing. Predictions are made at
the model card's input size and brought back to each label image's size (logits bilinearly, class
maps by nearest neighbour) before they are counted. The runtime is cheaper per frame: it takes
the argmax at network size and resizes the class map by nearest neighbour, so its masks can differ
from these at class boundaries when the input size is below the frame size.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.preprocess import preprocess

#: (N, 3, h, w) float32 network input -> (N, K, h, w) logits or (N, h, w) class map.
Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass
class EvalSet:
    """Decoded images (BGR) and label images of one split, held in memory for repeated passes."""

    images: list[np.ndarray]
    masks: list[np.ndarray]
    names: list[str]


def load_eval_set(samples: Sequence[Any], spec: Any, progress: bool = False) -> EvalSet:
    """Read every (image, mask) pair of ``samples`` once."""
    from edgeseg.data import read_image, read_mask

    images, masks, names = [], [], []
    for sample in tqdm(samples, desc="reading", disable=not progress, leave=False):
        image, mask = read_image(sample.image), read_mask(sample.mask, spec)
        if image.shape[:2] != mask.shape:
            raise EdgesegError(
                f"{sample.mask} is {mask.shape[1]}x{mask.shape[0]} but its image is "
                f"{image.shape[1]}x{image.shape[0]}"
            )
        images.append(image)
        masks.append(mask)
        names.append(Path(sample.image).name)
    return EvalSet(images, masks, names)


def labels_at(output: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """One image's network output -> (H, W) int class map at label size ``hw``.

    ``output`` is (K, h, w) logits or (h, w) classes. Logits are resized before the argmax (the
    boundaries stay smooth); class maps can only be resized by nearest neighbour.
    """
    height, width = hw
    if output.ndim == 2:
        if output.shape != (height, width):
            output = cv2.resize(
                output.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST
            )
        return output.astype(np.int64)
    if output.shape[1:] != (height, width):
        resized = cv2.resize(
            np.ascontiguousarray(output.transpose(1, 2, 0)),
            (width, height),
            interpolation=cv2.INTER_LINEAR,
        )
        return resized.reshape(height, width, -1).argmax(axis=2)
    return output.argmax(axis=0)


def evaluate_predictor(
    eval_set: EvalSet,
    card: ModelCard,
    predictor: Predictor,
    batch_size: int = 4,
    progress: bool = False,
    keep: Collection[int] = (),
) -> tuple[dict[str, Any], np.ndarray, list[np.ndarray]]:
    """Run ``predictor`` over ``eval_set``; return (metrics, confusion matrix, kept predictions).

    ``keep`` lists image indices whose predicted label maps are returned, in that order (for the
    prediction collage).
    """
    from edgeseg.metrics import ConfusionMatrix

    matrix = ConfusionMatrix(card.num_classes, card.ignore_index)
    kept: dict[int, np.ndarray] = {}
    index = 0
    total = len(eval_set.images)
    if total == 0:
        raise EdgesegError("the evaluation split holds no images")
    with tqdm(total=total, desc="evaluating", disable=not progress, leave=False) as bar:
        for start in range(0, total, batch_size):
            images = eval_set.images[start : start + batch_size]
            batch = np.stack([preprocess(image, card) for image in images])
            outputs = predictor(batch)
            for output, mask in zip(
                outputs, eval_set.masks[start : start + batch_size], strict=True
            ):
                predicted = labels_at(np.asarray(output), mask.shape)
                matrix.update(predicted, mask)
                if index in keep:
                    kept[index] = predicted.astype(np.uint8)
                index += 1
            bar.update(len(images))
    return matrix.compute(card.class_names), matrix.matrix, [kept[i] for i in keep]


def torch_predictor(model: Any, device: str = "cpu") -> Predictor:
    """Wrap a PyTorch model (eval mode, no grad) as a :data:`Predictor`."""
    import torch

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = model(torch.from_numpy(batch).to(device))
        return logits.float().cpu().numpy()

    return predict


def onnx_predictor(path: str | Path) -> tuple[Predictor, ModelCard]:
    """ONNX Runtime (CPU) predictor and the card stored in the file's metadata."""
    from edgeseg.card import card_from_onnx_metadata

    try:
        import onnxruntime as ort
    except ImportError:
        from edgeseg.errors import missing_extra

        raise missing_extra("onnxruntime", "onnx") from None
    model: str | bytes = str(path)
    try:
        import onnx

        from edgeseg.export.trt_graph import plugin_nodes, reexpand_plugins

        proto = onnx.load(str(path))
        if plugin_nodes(proto):  # a TensorRT graph: run its plugin as the exact standard ops
            proto = reexpand_plugins(proto)
        model = proto.SerializeToString()  # read once: ONNX Runtime takes the loaded bytes
    except ImportError:
        pass  # onnxruntime without onnx: plain ONNX files still run
    except Exception as exc:
        raise EdgesegError(
            f"{path} is not a readable ONNX file: {str(exc).splitlines()[0]}"
        ) from None
    try:
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise EdgesegError(f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0]}") from None
    card = card_from_onnx_metadata(session.get_modelmeta().custom_metadata_map, path)
    input_name = session.get_inputs()[0].name
    fixed_batch = session.get_inputs()[0].shape[0]

    def predict(batch: np.ndarray) -> np.ndarray:
        if not isinstance(fixed_batch, int) or fixed_batch == len(batch):
            return session.run(None, {input_name: batch})[0]
        # A static-shape export takes exactly its batch size: feed it in chunks of that size.
        step = max(1, fixed_batch)
        return np.concatenate(
            [
                session.run(None, {input_name: batch[i : i + step]})[0]
                for i in range(0, len(batch), step)
            ]
        )

    return predict, card


def predictor_for(artifact: str | Path, device: str = "cpu") -> tuple[Predictor, ModelCard]:
    """A predictor for a checkpoint (``.pt``/``.pth``) or an ONNX file, with its model card."""
    path = Path(artifact)
    if not path.is_file():
        raise EdgesegError(f"{path} not found")
    if path.suffix == ".onnx":
        return onnx_predictor(path)
    from edgeseg.checkpoint import load_model

    model, card = load_model(path, device=device)
    return torch_predictor(model, device), card


def evaluate(
    artifact: str | Path,
    data: str | Path,
    split: str = "val",
    batch_size: int = 4,
    device: str = "cpu",
    limit: int | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], np.ndarray, ModelCard]:
    """Evaluate ``artifact`` on ``split`` of the dataset at ``data``.

    Returns (metrics, confusion matrix, card). Raises EdgesegError when the dataset's classes do
    not match the model's.
    """
    return evaluate_many([artifact], data, split, batch_size, device, limit, progress)[0]


def evaluate_many(
    artifacts: Sequence[str | Path],
    data: str | Path,
    split: str = "val",
    batch_size: int = 4,
    device: str = "cpu",
    limit: int | None = None,
    progress: bool = True,
) -> list[tuple[dict[str, Any], np.ndarray, ModelCard]]:
    """:func:`evaluate` for several artifacts on the same images, read once: the FP32 / FP16 /
    INT8 comparison. Every artifact is opened (and its classes checked) before any is run."""
    from edgeseg.data import load_split

    if not artifacts:
        raise EdgesegError("no model given to evaluate")
    predictors = [predictor_for(artifact, device) for artifact in artifacts]
    spec, samples = load_split(data, split)
    for artifact, (_, card) in zip(artifacts, predictors, strict=True):
        if spec.num_classes != card.num_classes:
            raise EdgesegError(
                f"the dataset has {spec.num_classes} classes but {artifact} predicts "
                f"{card.num_classes}"
            )
    if limit is not None:
        samples = samples[:limit]
    eval_set = load_eval_set(samples, spec, progress=progress)
    results = []
    for predictor, card in predictors:
        metrics, matrix, _ = evaluate_predictor(eval_set, card, predictor, batch_size, progress)
        results.append((metrics, matrix, card))
    return results
