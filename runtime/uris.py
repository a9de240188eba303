"""Media URIs as jetson-inference's ``videoSource``/``videoOutput`` read them, both ways.

What a user types becomes a :class:`MediaUri`: a scheme and where it points. Plain paths are
``file``; a bare number or ``/dev/videoN`` is ``v4l2``; text with a ``!`` (or a ``gst:`` prefix)
is a ``gst`` pipeline. :func:`~edgeseg.runtime.sources.open_source` and
:func:`~edgeseg.runtime.outputs.open_output` each look the scheme up in their one table.

``@`` as the host means every interface, as in jetson-utils (``rtsp://@:8554/live``).
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass

from edgeseg.errors import EdgesegError
from edgeseg.validate import ascii_int

GST_PREFIX = "gst:"
ALL_INTERFACES_HOST = "@"


@dataclass(frozen=True)
class MediaUri:
    """A parsed media URI: ``text`` as typed; ``scheme`` (lower case); ``location``: a path for
    ``file``, the device for ``v4l2``, the sensor for ``csi``, the host for network schemes,
    the pipeline for ``gst``; ``port`` (None when not given); ``path`` (``/live`` of an RTSP
    URI); ``query`` (``?bitrate=4000``)."""

    text: str
    scheme: str
    location: str
    port: int | None = None
    path: str = ""
    query: tuple[tuple[str, str], ...] = ()

    @property
    def suffix(self) -> str:
        """The file suffix, lower case with the dot (``.mp4``), of a ``file`` URI or URL path."""
        name = self.location if self.scheme == "file" else self.path
        return os.path.splitext(name.rstrip("/"))[1].lower()

    def host(self, default: str = "127.0.0.1") -> str:
        """The host to bind or send to: ``@`` and empty are every interface (0.0.0.0)."""
        if self.location in ("", ALL_INTERFACES_HOST):
            return "0.0.0.0" if self.location == ALL_INTERFACES_HOST else default
        return self.location


def parse_uri(spec: str | int | os.PathLike[str]) -> MediaUri:
    """``spec`` as a :class:`MediaUri` (module docs). Raises EdgesegError for a malformed
    port."""
    if isinstance(spec, int):
        return MediaUri(str(spec), "v4l2", str(spec))
    text = os.fspath(spec).strip()
    if text.lower().startswith(GST_PREFIX) and not text.lower().startswith("gst://"):
        return MediaUri(text, "gst", text[len(GST_PREFIX) :].strip())
    if "!" in text:
        return MediaUri(text, "gst", text)
    if "://" not in text:
        if ascii_int(text) is not None or text.startswith("/dev/video"):
            return MediaUri(text, "v4l2", text)
        return MediaUri(text, "file", text)
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme in ("file", "v4l2", "csi", "display"):
        return MediaUri(text, scheme, rest)
    split = urllib.parse.urlsplit(text.replace("://@:", "://__all__:", 1))
    host = split.hostname or ""
    host = ALL_INTERFACES_HOST if host == "__all__" else host
    try:
        port = split.port
    except ValueError:
        raise EdgesegError(f"{text}: the port must be a number from 0 to 65535") from None
    query = tuple(urllib.parse.parse_qsl(split.query))
    return MediaUri(text, scheme, host, port, split.path, query)
