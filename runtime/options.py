"""What a run is asked to do, grouped by concern: camera, render, outputs, serve.

:func:`~edgeseg.runtime.run.run_pipeline` and every embedding application take these small
frozen objects instead of a long list of keywords, and they name things by what they are
(``OutputOptions.masks``), never by a command-line flag: the CLI maps its flags onto them once.

>>> from edgeseg.runtime.options import OutputOptions, RenderOptions
>>> outputs = OutputOptions(targets=("overlay.mp4", "rtp://127.0.0.1:5000"), bitrate_kbps=4000)
>>> RenderOptions(mode="side-by-side").alpha
0.5
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from edgeseg.errors import EdgesegError
from edgeseg.runtime.cameras import CameraSettings

#: The camera settings are the camera options (size, rate, pixel format, flip).
CameraOptions = CameraSettings

#: Video codecs an output can be asked for; ``auto`` is H.264 where an encoder exists.
CODECS = ("auto", "h264", "mjpeg", "mp4v")
MAX_VIEWERS = 4  # the browser view's default limit of streams served at once

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class RenderOptions:
    """How the overlay is drawn: ``mode`` (overlay / mask / side-by-side), ``alpha`` (0 shows
    the frame, 1 the class colours), ``legend``, and ``classes`` to show (names, a comma list,
    or None for all)."""

    mode: str = "overlay"
    alpha: float = 0.5
    legend: bool = True
    classes: str | Sequence[str] | None = None


@dataclass(frozen=True)
class EncodingOptions:
    """How video outputs are encoded: ``codec`` (:data:`CODECS`) and ``bitrate_kbps`` (None:
    the encoder's default for files, 4000 for network streams)."""

    codec: str = "auto"
    bitrate_kbps: int | None = None

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise EdgesegError(f"unknown codec {self.codec!r}; choose from: {', '.join(CODECS)}")
        if self.bitrate_kbps is not None and not 16 <= self.bitrate_kbps <= 200_000:
            raise EdgesegError(f"bitrate {self.bitrate_kbps} kbit/s is out of range (16 to 200000)")


@dataclass(frozen=True)
class OutputOptions:
    """Where results go. ``targets``: output URIs (:func:`~edgeseg.runtime.outputs.
    open_output`: a video or image file, a folder, ``rtp://``, ``rtsp://``, ``display://``,
    ``http://``), several at once; ``masks``: a folder of PNG class-index masks; ``stats``:
    JSON lines, one per second; ``class_shares``: a CSV row of class shares per frame;
    ``encoding``: codec and bitrate of every video target."""

    targets: tuple[str, ...] = ()
    masks: PathLike | None = None
    stats: PathLike | None = None
    class_shares: PathLike | None = None
    encoding: EncodingOptions = EncodingOptions()

    def __post_init__(self) -> None:
        if isinstance(self.targets, str | os.PathLike):  # one target given bare
            object.__setattr__(self, "targets", (os.fspath(self.targets),))
        else:
            object.__setattr__(self, "targets", tuple(os.fspath(t) for t in self.targets))

    @property
    def any(self) -> bool:
        """Whether anything is kept at all."""
        return bool(self.targets or self.masks or self.stats or self.class_shares)


@dataclass(frozen=True)
class ServeOptions:
    """The browser view (:class:`~edgeseg.runtime.serve.ServeSink`): ``address``
    ``[HOST:]PORT`` (127.0.0.1 unless a host is given), an access ``token``, and
    ``max_viewers`` streams at once."""

    address: str | int
    token: str | None = None
    max_viewers: int = MAX_VIEWERS
