"""Evaluation: a predictor over one dataset split, metrics at the labels' own resolution.

Training validation and ``edgeseg eval`` (:mod:`edgeseg.apps.evaluate`, which opens exported
artifacts) share :func:`evaluate_predictor`, so a number printed during training and one
printed by ``edgeseg eval`` mean the same thing. Predictions are made at
the model card's input size and brought back to each label image's size by
:func:`edgeseg.masks.mask_at` (logits bilinearly, then the argmax; class maps by nearest
neighbour) before they are counted: the same function the runtime's ``Segmenter`` uses, so a
frame's mask at run time is the mask the metrics counted.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.masks import mask_at
from edgeseg.preprocess import preprocess

if TYPE_CHECKING:
    import torch

    from edgeseg.data import DatasetSpec, Sample

#: (N, 3, h, w) float32 network input -> (N, K, h, w) logits or (N, h, w) class map.
Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass
class EvalSet:
    """Decoded images (BGR) and label images of one split, held in memory for repeated passes."""

    images: list[np.ndarray]
    masks: list[np.ndarray]
    names: list[str]


def load_eval_set(samples: Sequence[Sample], spec: DatasetSpec, progress: bool = False) -> EvalSet:
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
                predicted = mask_at(output, mask.shape)
                matrix.update(predicted, mask)
                if index in keep:
                    kept[index] = predicted.astype(np.uint8)
                index += 1
            bar.update(len(images))
    return matrix.compute(card.class_names), matrix.matrix, [kept[i] for i in keep]


def torch_predictor(model: torch.nn.Module, device: str = "cpu") -> Predictor:
    """Wrap a PyTorch model (eval mode, no grad) as a :data:`Predictor`."""
    import torch

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = model(torch.from_numpy(batch).to(device))
        return logits.float().cpu().numpy()

    return predict
