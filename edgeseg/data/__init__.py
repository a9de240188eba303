"""Datasets: layouts, file reading, augmentation and the PyTorch dataset.

- :mod:`~edgeseg.data.spec`: :class:`DatasetSpec` (classes, palette, ignore label, mask format),
  :data:`CAMVID`, the padding-label rule.
- :mod:`~edgeseg.data.layouts`: :func:`load_split` for the CamVid layout and ``dataset.yaml``
  (its format is documented there).
- :mod:`~edgeseg.data.io`: :func:`read_image`, :func:`read_mask`, :func:`validate_samples`.
- :mod:`~edgeseg.data.augment`: :class:`AugmentConfig` and the numpy/OpenCV transforms.
- :mod:`~edgeseg.data.dataset`: :class:`SegmentationDataset`, :func:`collate_eval` (torch).

Only the last needs torch, and it is imported on first use, so ``edgeseg eval`` with ONNX Runtime
and other torch-free users can read datasets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgeseg.data.augment import AugmentConfig
from edgeseg.data.io import image_size, read_image, read_mask, validate_samples
from edgeseg.data.layouts import Sample, load_split
from edgeseg.data.spec import CAMVID, MASK_FORMATS, PAD_LABEL, DatasetSpec, default_palette

if TYPE_CHECKING:
    from edgeseg.data.dataset import SegmentationDataset, collate_eval

__all__ = [
    "CAMVID",
    "MASK_FORMATS",
    "PAD_LABEL",
    "AugmentConfig",
    "DatasetSpec",
    "Sample",
    "SegmentationDataset",
    "collate_eval",
    "default_palette",
    "image_size",
    "load_split",
    "read_image",
    "read_mask",
    "validate_samples",
]

_TORCH_NAMES = ("SegmentationDataset", "collate_eval")


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        from edgeseg.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'edgeseg.data' has no attribute {name!r}")
