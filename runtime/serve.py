"""Watch a headless device from a browser: the live overlay as MJPEG, the stats as JSON.

:class:`ServeSink` is a sink like the others (``edgeseg run --serve [HOST:]PORT``, or
``Pipeline(source, segmenter, [ServeSink(8080, card=segmenter.card)])``). It runs an HTTP server
in its own threads that answers three GET paths and nothing else:

- ``/``: a small page (:mod:`edgeseg.runtime.serve_page`): the live overlay, FPS,
  capture-to-output latency, dropped frames, class shares as bars in the palette's colours, the
  model card; plain HTML and a few lines of JavaScript polling ``/stats``, works offline;
- ``/stream.mjpg``: the rendered frames as ``multipart/x-mixed-replace`` JPEG, which browsers,
  VLC, ffmpeg and OpenCV read;
- ``/stats``: the same JSON as a ``--stats`` line.

The pipeline never waits for a viewer. It hands each rendered frame to an encoder thread through
a one-frame slot (a newer frame replaces one not yet encoded) and goes on; the encoder makes one
JPEG per frame whatever the number of viewers, and only while someone watches; each viewer's
thread sends the newest JPEG when its socket takes it, skipping the ones it missed. A slow or
stalled viewer therefore costs the pipeline nothing and memory stays at one frame and one JPEG
(a stalled viewer is dropped after :data:`SEND_TIMEOUT_S`). The pipeline's own cost is one copy
of the rendered frame per frame while someone watches.

Security: the server binds 127.0.0.1 unless a host is given (binding all interfaces is said in
one line); ``token`` (``--serve-token``, or ``EDGESEG_SERVE_TOKEN``) is then required on every
request, as ``?token=`` or an ``Authorization: Bearer`` header, compared in constant time;
at most ``max_viewers`` streams at once (503 beyond); any other method is refused (501) and any
other path is 404.

Without a token, the ``Host`` header must name this server: an IP address, ``localhost``, this
machine's host name, or a name in ``allowed_hosts`` (``--serve-allow-host``, or
``EDGESEG_SERVE_HOSTS``, comma-separated); anything else is 403. A page on another site that
rebinds its DNS name to 127.0.0.1 (DNS rebinding) sends its own name and cannot read ``/stats``
or the stream. With a token the token decides.

Connections are capped: at most :data:`MAX_CONNECTIONS` are served at once (each is a thread);
more are closed as soon as they are accepted, without a thread. A connection must send its
request line and headers within :data:`HEADER_TIMEOUT_S` (one byte at a time does not extend it),
and a viewer that takes nothing for :data:`SEND_TIMEOUT_S` is dropped: 1,000 slow connections
hold at most :data:`MAX_CONNECTIONS` threads, each for at most :data:`HEADER_TIMEOUT_S`.

Python's standard ``http.server.ThreadingHTTPServer`` serves it: a thread per connection suits
blocking writes to a handful of viewers, and it adds no dependency to the runtime (a Jetson
installs numpy, OpenCV and an inference engine, nothing more).
"""

from __future__ import annotations

import hmac
import http.server
import json
import os
import socket
import threading
import time
import urllib.parse
from typing import Any

import cv2
import numpy as np

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.runtime.records import stats_record
from edgeseg.runtime.results import FrameResult, Sink
from edgeseg.runtime.serve_guard import (
    MAX_CONNECTIONS,
    CappedServer,
    host_allowed,
    host_names,
)
from edgeseg.runtime.serve_page import render_page
from edgeseg.runtime.stats import PipelineStats
from edgeseg.validate import ascii_int

TOKEN_ENV = "EDGESEG_SERVE_TOKEN"
DEFAULT_HOST = "127.0.0.1"
MAX_VIEWERS = 4
JPEG_QUALITY = 80
SEND_TIMEOUT_S = 10.0  # a viewer whose socket takes nothing for this long is dropped
HOSTS_ENV = "EDGESEG_SERVE_HOSTS"
BOUNDARY = "edgesegframe"
ALL_INTERFACES = ("", "0.0.0.0", "::")


def parse_address(text: str | int) -> tuple[str, int]:
    """``8080`` -> (127.0.0.1, 8080); ``0.0.0.0:8080``; ``[::1]:8080``. Port 0: any free one."""
    value = str(text).strip()
    host, _, port = value.rpartition(":") if ":" in value else ("", "", value)
    host = host.strip("[]") if host else DEFAULT_HOST
    number = ascii_int(port)
    if number is None or not 0 <= number <= 65535:
        raise EdgesegError(f"--serve {value}: expected [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080")
    return host, int(port)


class FrameHub:
    """The newest JPEG and its number, for any number of viewer threads; the frame waiting to be
    encoded (one slot); the viewer count."""

    def __init__(self, max_viewers: int) -> None:
        self.cond = threading.Condition()
        self.jpeg: bytes | None = None
        self.seq = 0
        self.pending: np.ndarray | None = None
        self.closed = False
        self.viewers = 0
        self.max_viewers = max_viewers
        self.encode_s = 0.0  # time spent encoding, in the encoder thread (for benchmarks)

    def offer(self, image: np.ndarray) -> None:
        """Give the encoder a frame (copied: the renderer reuses its buffer); never blocks long."""
        with self.cond:
            if self.viewers:
                self.pending = image.copy()
                self.cond.notify_all()

    def encode_loop(self, quality: int) -> None:
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.pending is not None or self.closed)
                if self.closed:
                    return
                image, self.pending = self.pending, None
            started = time.perf_counter()
            ok, data = cv2.imencode(".jpg", image, params)
            self.encode_s += time.perf_counter() - started
            if ok:
                with self.cond:
                    self.jpeg, self.seq = data.tobytes(), self.seq + 1
                    self.cond.notify_all()

    def newer_than(self, seq: int, timeout: float) -> tuple[bytes | None, int]:
        """The newest JPEG once its number passes ``seq`` (or None after ``timeout``/close)."""
        with self.cond:
            self.cond.wait_for(lambda: self.seq > seq or self.closed, timeout)
            if self.closed or self.seq <= seq:
                return None, seq
            return self.jpeg, self.seq

    def join(self) -> bool:
        with self.cond:
            if self.viewers >= self.max_viewers:
                return False
            self.viewers += 1
            return True

    def leave(self) -> None:
        with self.cond:
            self.viewers -= 1

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET /, /stream.mjpg, /stats; everything else refused. ``server.sink`` is the ServeSink."""

    server_version = "edgeseg"
    sys_version = ""
    timeout = SEND_TIMEOUT_S  # socket timeout: a stalled viewer is dropped, its slot freed

    def log_message(self, *args: Any) -> None:  # no access log on the run's stderr
        pass

    def handle_one_request(self) -> None:
        # The request line and headers are read under the server's header deadline; the
        # reply (a stream may last hours) is not.
        self.server.watch(self.connection)  # type: ignore[attr-defined]
        try:
            super().handle_one_request()
        finally:
            self.server.unwatch(self.connection)  # type: ignore[attr-defined]

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self.server.unwatch(self.connection)  # type: ignore[attr-defined]
        return parsed

    def _authorised(self, query: dict[str, list[str]]) -> bool:
        token = self.server.sink.token  # type: ignore[attr-defined]
        if not token:
            return self.server.sink.host_allowed(self.headers.get("Host"))  # type: ignore[attr-defined]
        given = query.get("token", [""])[0]
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = given or header[len("Bearer ") :]
        return hmac.compare_digest(given.encode(), token.encode())

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path not in ("/", "/stream.mjpg", "/stats"):
            self._send(404, b"not found: edgeseg serves /, /stream.mjpg and /stats\n", "text/plain")
            return
        if not self._authorised(urllib.parse.parse_qs(url.query)):
            if not self.server.sink.token:  # type: ignore[attr-defined]
                body = b"this Host is not served: open it by IP address or localhost, or add "
                self._send(403, body + b"the name with --serve-allow-host\n", "text/plain")
                return
            self._send(
                401, b"a token is required: ?token=... or Authorization: Bearer\n", "text/plain"
            )
            return
        sink: ServeSink = self.server.sink  # type: ignore[attr-defined]
        if url.path == "/":
            self._send(200, sink.page().encode(), "text/html; charset=utf-8")
        elif url.path == "/stats":
            self._send(200, json.dumps(sink.stats_json()).encode(), "application/json")
        else:
            self._stream(sink.hub)

    def _stream(self, hub: FrameHub) -> None:
        if not hub.join():
            self._send(503, b"too many viewers\n", "text/plain")
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            seq = 0
            while not hub.closed:
                jpeg, seq = hub.newer_than(seq, timeout=1.0)
                if jpeg is None:
                    continue
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                self.wfile.write(head.encode() + b"\r\n\r\n" + jpeg + b"\r\n")
        except OSError:  # the viewer left, or stalled past the timeout
            pass
        finally:
            hub.leave()
            self.close_connection = True


class ServeSink(Sink):
    """Serve the rendered frames and the stats over HTTP while the pipeline runs.

    ``address``: ``[HOST:]PORT`` or a port (host 127.0.0.1 unless given; port 0 picks a free
    one, see :attr:`url`). ``token``: required on every request (default: the
    ``EDGESEG_SERVE_TOKEN`` environment variable; None or empty: no token). ``card`` and
    ``extra`` (``{"model": ..., "backend": ...}``) describe the model on the page and in
    ``/stats``. Raises EdgesegError (one line) when the address cannot be bound.
    """

    needs_render = True

    def __init__(
        self,
        address: str | int = 8080,
        *,
        token: str | None = None,
        card: ModelCard | None = None,
        extra: dict[str, Any] | None = None,
        max_viewers: int = MAX_VIEWERS,
        quality: int = JPEG_QUALITY,
        allowed_hosts: tuple[str, ...] | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        host, port = parse_address(address)
        self.token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        if allowed_hosts is None:
            allowed_hosts = tuple(os.environ.get(HOSTS_ENV, "").split(","))
        self.allowed_hosts = host_names(host, allowed_hosts)
        self.card, self.extra = card, dict(extra or {})
        self.hub = FrameHub(max_viewers)
        self._stats: PipelineStats | None = None
        try:
            server_class = _server_class(host)
            self.server = server_class((host, port), _Handler)
            self.server.max_connections = max_connections
        except OSError as exc:
            raise EdgesegError(
                f"cannot serve on {host}:{port}: {exc.strerror or exc}; choose another port or host"
            ) from None
        self.server.daemon_threads = True
        self.server.sink = self  # type: ignore[attr-defined]
        self.host, self.port = host, self.server.server_address[1]
        self.all_interfaces = host in ALL_INTERFACES
        self._threads = [
            threading.Thread(target=self.server.serve_forever, name="edgeseg-serve", daemon=True),
            threading.Thread(
                target=self.hub.encode_loop, args=(quality,), name="edgeseg-jpeg", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:8080/`` (with ``?token=`` when one is set)."""
        return serve_url(self.host, self.port, self.token)

    def notes(self) -> list[str]:
        """What to tell the user (:func:`serve_notes`)."""
        return serve_notes(self.host, self.port, self.token)

    def page(self) -> str:
        return render_page(self.card, self.extra)

    def host_allowed(self, header: str | None) -> bool:
        """Whether a request's ``Host`` header names this server (see the module docstring)."""
        return host_allowed(header, self.allowed_hosts)

    def stats_json(self) -> dict[str, Any]:
        if self._stats is None:
            return {**self.extra, "frames_done": 0, "final": False}
        return stats_record(self._stats, self.extra, final=False)

    def write(self, result: FrameResult) -> None:
        self._stats = result.stats
        if self.card is None:
            self.card = result.card
        image = result.rendered if result.rendered is not None else result.frame.image
        self.hub.offer(image)

    def close(self) -> None:
        self.hub.close()
        self.server.shutdown()
        self.server.server_close()


def serve_url(host: str, port: int, token: str = "") -> str:
    """The address to open: ``http://127.0.0.1:8080/`` (this machine's loopback when every
    interface is bound; ``?token=`` added when one is set)."""
    shown = "127.0.0.1" if host in ALL_INTERFACES else host
    shown = f"[{shown}]" if ":" in shown else shown
    query = f"?token={urllib.parse.quote(token)}" if token else ""
    return f"http://{shown}:{port}/{query}"


def serve_notes(host: str, port: int, token: str = "") -> list[str]:
    """The lines ``edgeseg run --serve`` prints: where to watch, and, when every interface is
    bound, that anyone who can reach the machine may connect (and whether a token guards it)."""
    url = serve_url(host, port, token)
    base = url.split("?")[0]
    lines = [f"watch at {url} (stream {base}stream.mjpg, stats {base}stats)"]
    if host in ALL_INTERFACES:
        guard = "a token is required" if token else "no token: anyone who can reach it may watch"
        lines.append(
            f"serving on every interface ({host or '*'}:{port}), not only this machine; {guard}"
            + ("" if token else " (set --serve-token)")
        )
    return lines


def _server_class(host: str) -> type[CappedServer]:
    """A :class:`CappedServer` for IPv4, or one for IPv6 when ``host`` is an IPv6 address."""
    if ":" not in host:
        return CappedServer

    class IPv6Server(CappedServer):
        address_family = socket.AF_INET6

    return IPv6Server
