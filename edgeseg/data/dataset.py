"""The PyTorch dataset for training and validation.

Training items (``train=True``): random scale and crop to ``card.input_hw``, horizontal flip and
colour jitter (:mod:`edgeseg.data.augment`), then :func:`edgeseg.preprocess.normalize`, the tail
of the one preprocessing path. Evaluation items (``train=False``): the image through
:func:`edgeseg.preprocess.preprocess` exactly, the mask at its native resolution (metrics are
counted at label resolution; the evaluation loop brings predictions to the mask's size).

Padding rule: where a training crop extends past the image, the mask gets ``spec.ignore_index``, or
:data:`~edgeseg.data.spec.PAD_LABEL` (255) when the dataset has no ignore index, and the image gets
the card's mean colour (0 after normalisation). Losses (:mod:`edgeseg.train.losses`) and metrics
(:mod:`edgeseg.metrics`) ignore ``ignore_index`` and every label outside [0, num_classes), so
padding never counts either way.

Randomness: each training item seeds a ``numpy.random.Generator`` with a number drawn from
torch's default generator. In a DataLoader worker that generator is seeded by PyTorch from the
loader's base seed plus the worker id (and the base seed comes from the loader's ``generator``);
with ``num_workers=0`` it is the main process's generator, which training checkpoints and
restores. Either way a seeded run is reproducible and a resumed run draws the same augmentation
as an uninterrupted one. (A generator seeded once from ``torch.initial_seed()`` would not resume:
in the main process that seed never changes between epochs.) Runs with different worker counts
draw different, equally valid, augmentations.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from edgeseg.card import ModelCard
from edgeseg.data.augment import AugmentConfig, color_jitter, scale_crop_flip
from edgeseg.data.io import read_image, read_mask
from edgeseg.data.layouts import Sample
from edgeseg.data.spec import DatasetSpec
from edgeseg.errors import EdgesegError
from edgeseg.preprocess import normalize, preprocess

_WORKER_OPENCV_READY = False


def _opencv_single_threaded_in_workers() -> None:
    """Stop OpenCV from using its thread pool inside a DataLoader worker.

    Workers are forked; a pool the parent already used (cv2.resize during validation, say) is
    inherited in a broken state and a worker that touches it can hang forever. The workers are
    the parallelism here, so each one runs OpenCV single-threaded (as albumentations and mmcv do).
    """
    global _WORKER_OPENCV_READY
    if not _WORKER_OPENCV_READY and torch.utils.data.get_worker_info() is not None:
        cv2.setNumThreads(0)
        _WORKER_OPENCV_READY = True


class SegmentationDataset(Dataset):
    """(image, mask) tensors of a list of samples.

    Items are ``(image, mask)``: image (3, h, w) float32 at ``card.input_hw``; mask int64,
    (h, w) when training, the label image's own (H, W) otherwise. ``augment=None`` uses
    :class:`AugmentConfig` defaults when training and is unused otherwise.

    ``cache=True`` decodes every image and mask once, here in the constructor, and keeps them
    in memory (CamVid train: about 190 MB of BGR images and 63 MB of masks). Decoding up front,
    before the DataLoader forks its workers, lets every worker share the one copy; a cache filled
    lazily inside workers would be rebuilt by each worker every epoch.

    Raises EdgesegError when the card's and the dataset's classes disagree, and (on reading)
    for unreadable files, labels out of range, or an image and mask of different sizes.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        spec: DatasetSpec,
        card: ModelCard,
        train: bool,
        augment: AugmentConfig | None = None,
        cache: bool = False,
    ) -> None:
        if card.num_classes != spec.num_classes:
            raise EdgesegError(
                f"the model card has {card.num_classes} classes but dataset {spec.name!r} has "
                f"{spec.num_classes}"
            )
        self.samples = list(samples)
        self.spec = spec
        self.card = card
        self.train = train
        self.augment = augment if augment is not None else AugmentConfig()
        # The image's padding colour: the card's mean, which normalises to 0. Images are BGR here.
        self._fill = tuple(round(v * 255.0) for v in reversed(card.mean))
        self._cache: list[tuple[np.ndarray, np.ndarray]] | None = None
        if cache:
            self._cache = [self._read(i) for i in range(len(self.samples))]

    def __len__(self) -> int:
        return len(self.samples)

    def _read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        sample = self.samples[index]
        image, mask = read_image(sample.image), read_mask(sample.mask, self.spec)
        if image.shape[:2] != mask.shape:
            raise EdgesegError(
                f"{sample.mask} is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image "
                f"{Path(sample.image).name} is {image.shape[1]}x{image.shape[0]}"
            )
        return image, mask

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        _opencv_single_threaded_in_workers()
        image, mask = self._cache[index] if self._cache is not None else self._read(index)
        if not self.train:
            tensor = torch.from_numpy(preprocess(image, self.card))
            return tensor, torch.from_numpy(mask.astype(np.int64))
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        image, mask = scale_crop_flip(
            image, mask, self.card.input_hw, self.augment, rng, self._fill, self.spec.pad_label
        )
        rgb = color_jitter(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), self.augment, rng)
        return torch.from_numpy(normalize(rgb, self.card)), torch.from_numpy(mask.astype(np.int64))


def collate_eval(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Stack evaluation images (all at the input size); keep masks as a list (sizes may differ)."""
    return torch.stack([image for image, _ in batch]), [mask for _, mask in batch]
