"""PyTorch's runner: training checkpoints (``.pt``), on CUDA when available, else the CPU.

torch and ``edgeseg.checkpoint`` are imported inside :class:`TorchRunner`, only when a
checkpoint is opened, so the runtime imports and runs ONNX files and engines on machines
without torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeseg.backends.runner import BaseRunner


class TorchRunner(BaseRunner):
    """A checkpoint's model in eval mode; FP32, CUDA if ``torch.cuda.is_available()``.

    :meth:`infer` returns the scores on the host on every device, so the Segmenter resizes them
    to the frame before the argmax exactly as ``edgeseg eval`` does (at a network size of
    180x240 and 11 classes that is 1.9 MB a frame to copy: less than a millisecond over PCIe).
    """

    name = "torch"

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        from edgeseg.validate import import_optional

        torch = import_optional("torch", "train")
        from edgeseg.checkpoint import load_model

        self._torch = torch
        if threads is not None:
            torch.set_num_threads(int(threads))
        self.path = Path(path)
        self.label = self.path.name
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        model, self.card = load_model(self.path)
        self.model = model.to(self.device).eval()
        self.output = self.card.output

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            inputs = torch.from_numpy(batch).to(self.device, non_blocking=True)
            output = self.model(inputs)
            if self.output == "logits":
                output = output.float()
            return output.cpu().numpy()

    def close(self) -> None:
        self.model = None
