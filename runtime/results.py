"""What a sink receives for each frame (:class:`FrameResult`) and the :class:`Sink` interface."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeseg.card import ModelCard
from edgeseg.masks import resize_mask
from edgeseg.runtime.frames import Frame
from edgeseg.runtime.shares import class_shares
from edgeseg.runtime.stats import PipelineStats


@dataclass
class FrameResult:
    """One processed frame as the sinks see it.

    ``class_map`` is the (H, W) uint8 class mask at the frame's size: the Segmenter's
    post-processing, the same mask ``edgeseg eval`` scores (:attr:`mask` is the same array; a
    smaller map given by an application is resized by nearest neighbour). ``rendered`` is the
    overlay image when the pipeline has a renderer (the same buffer is reused for the next
    frame: copy to keep it).
    """

    frame: Frame
    class_map: np.ndarray
    rendered: np.ndarray | None
    stats: PipelineStats
    timings: dict[str, float] = field(default_factory=dict)
    card: ModelCard | None = None
    _mask: np.ndarray | None = None
    _shares: dict[str, float] | None = None

    @property
    def mask(self) -> np.ndarray:
        """(H, W) uint8 class mask at the frame's size."""
        if self._mask is None:
            self._mask = resize_mask(self.class_map, self.frame.image.shape[:2])
        return self._mask

    @property
    def class_shares(self) -> dict[str, float]:
        """Class name -> fraction of the frame's pixels (see :mod:`edgeseg.runtime.shares`),
        computed on first use."""
        if self._shares is None:
            self._shares = class_shares(self.class_map, self.card)
        return self._shares


class Sink:
    """Base class: receives every processed frame in order, then ``close()``."""

    stop_requested = False
    needs_render = False  # whether it reads ``result.rendered``
    target: str | None = None  # the URI open_output opened it from (for the run's report)

    def write(self, result: FrameResult) -> None:
        raise NotImplementedError

    def finish(self, stats: PipelineStats) -> None:
        """The run is over (``stats`` are final); called once, just before :meth:`close`."""

    def close(self) -> None:
        """Finish and release; called once, also after Ctrl-C or an error."""

    def discard(self) -> None:
        """Release without finishing: the run never started (a mistake found while setting
        up), so nothing is put in place; files keep what they held. Default: :meth:`close`."""
        self.close()
