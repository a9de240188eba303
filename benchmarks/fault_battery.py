"""The classes of issue 26's fault battery, re-run with figures (real processes and signals).

Usage::

    python benchmarks/fault_battery.py MODEL.onnx [--connections 1000] [--huge]

Prints one line per case: what was done, the exit code and the figure that matters (seconds
from a stop signal to exit with a blocked read, threads and RSS of a serving process under a
flood of slow connections, peak RSS for huge images). Everything happens in a temporary folder
and on 127.0.0.1; every child process is bounded by a timeout. ``--huge`` adds the runs that
decode a 16000x16000 and an 8000x8000 image with the pixel budget raised (about 2 GB of memory).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests" / d) for d in ("runtime", "")]
from runtime_helpers import write_huge_png  # noqa: E402  (the tests' real PNG writer)

EDGESEG = [sys.executable, "-m", "edgeseg"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGESEG, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def line(case: str, result: subprocess.CompletedProcess[str] | int, extra: str = "") -> None:
    code = result if isinstance(result, int) else result.returncode
    error = (
        ""
        if isinstance(result, int)
        else next(
            (x[16:90] for x in result.stderr.splitlines() if x.startswith("edgeseg: error:")), ""
        )
    )
    print(f"{case:58s} exit {code:3d}  {extra}{error}", flush=True)


def signals_with_a_blocked_read(model: str, tmp: Path) -> None:
    folder = tmp / "fifo_frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"a{i}.png"), np.full((20, 30, 3), 50 * i, np.uint8))
    os.mkfifo(folder / "z.png")
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        masks = tmp / f"masks_{signum}"
        args = ["run", "--model", model, "--source", str(folder), "--save-masks", str(masks)]
        process = subprocess.Popen(
            [*EDGESEG, *args], stderr=subprocess.DEVNULL, preexec_fn=default_signals
        )
        while len(list(masks.glob("*.png"))) < 3:
            time.sleep(0.05)
        process.send_signal(signum)
        sent = time.monotonic()
        try:
            code = process.wait(timeout=60)
        finally:
            process.kill()
        took = time.monotonic() - sent
        name = signal.Signals(signum).name
        line(f"FIFO in image folder, {name}", code, f"{took:.1f} s to exit, 3/3 masks ")


def default_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def special_files(model: str, tmp: Path) -> None:
    video = tmp / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(5):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()
    base = ["run", "--model", model, "--source", str(video)]
    if os.geteuid() == 0:
        os.mknod(tmp / "null", 0o20666, os.makedev(1, 3))
        os.mknod(tmp / "full", 0o20666, os.makedev(1, 7))
        result = run(*base, "--stats", str(tmp / "null"))
        line(
            "--stats onto a copy of /dev/null", result, f"still a device: {is_char(tmp / 'null')} "
        )
        result = run(*base, "--stats", str(tmp / "full"))
        line(
            "--stats onto a copy of /dev/full", result, f"still a device: {is_char(tmp / 'full')} "
        )
    link = tmp / "shares.csv"
    link.symlink_to("/dev/stdout")
    result = run(*base, "--class-shares", str(link))
    rows = len(result.stdout.splitlines())
    line("--class-shares onto a symlink to stdout", result, f"{rows} lines on stdout ")
    os.mkfifo(tmp / "f.jsonl")
    reader = subprocess.Popen(["cat", str(tmp / "f.jsonl")], stdout=subprocess.PIPE, text=True)
    result = run(*base, "--stats", str(tmp / "f.jsonl"))
    got = len(reader.communicate(timeout=60)[0].splitlines())
    line("--stats onto a FIFO with a reader", result, f"reader got {got} lines ")
    os.mkfifo(tmp / "v.mp4")
    line("--output video onto a FIFO", run(*base, "--output", str(tmp / "v.mp4")))


def is_char(path: Path) -> bool:
    return (
        os.path.exists(path)
        and not path.is_file()
        and (os.stat(path).st_mode & 0o170000) == 0o020000
    )


def outputs_onto_inputs(model: str, tmp: Path) -> None:
    data = tmp / "data"
    for split in ("train", "val"):
        (data / split).mkdir(parents=True)
        (data / f"{split}annot").mkdir()
        cv2.imwrite(str(data / split / "a.png"), np.zeros((8, 8, 3), np.uint8))
        cv2.imwrite(str(data / f"{split}annot" / "a.png"), np.zeros((8, 8), np.uint8))
    second = tmp / "m2.onnx"
    second.write_bytes(Path(model).read_bytes())
    d, x, m2 = str(data), str(tmp / "x"), str(second)
    cases = {
        "eval m.onnx --json m.onnx": ["eval", model, "--data", d, "--json", model],
        "eval m.onnx --confusion m.onnx": ["eval", model, "--data", d, "--confusion", model],
        "eval a b --json b": ["eval", model, m2, "--data", d, "--json", m2],
        "eval --json X --confusion X": ["eval", model, "--data", d, "--json", x, "--confusion", x],
        "eval --json DATA/val/a.png": ["eval", model, "--data", d, "--json", f"{d}/val/a.png"],
        "train --out DATA/val": ["train", "--data", d, "--out", f"{d}/val"],
        "bench --data D --out D/b": ["bench", "--model", model, "--data", d, "--out", f"{d}/b"],
        "export --int8 --calib-data D --out D/x": [
            "export",
            str(tmp / "c.pt"),
            "--int8",
            "--calib-data",
            d,
            "--out",
            f"{d}/x",
        ],
        "run --stats MODEL": ["run", "--model", model, "--source", f"{d}/val", "--stats", model],
    }
    (tmp / "c.pt").write_bytes(b"x")
    for case, args in cases.items():
        line(case, run(*args))


def unicode_and_cards(model: str, tmp: Path) -> None:
    video = str(next(tmp.glob("clip.avi")))
    for args in (
        ["--source", "²"],
        ["--source", "csi://²"],
        ["--source", video, "--serve", "²"],
        ["--source", ""],
    ):
        line(
            f"run {' '.join(repr(a) if not a or '²' in a else a[:8] for a in args)}",
            run("run", "--model", model, *args),
        )
    import json

    import onnx

    from edgeseg.card import ONNX_METADATA_KEY

    for name, change in {
        "2 mean values": {"mean": [0.5, 0.5]},
        "std 0": {"std": [0, 1, 1]},
        "text palette entry": {"palette": ["red"]},
    }.items():
        proto = onnx.load(model)
        for prop in proto.metadata_props:
            if prop.key == ONNX_METADATA_KEY:
                prop.value = json.dumps({**json.loads(prop.value), **change})
        onnx.save(proto, str(tmp / "bad.onnx"))
        line(f"card with {name}", run("run", "--model", str(tmp / "bad.onnx"), "--source", video))


#: Runs one command as the only child of a fresh Python, so its peak RSS is that command's.
MEASURE = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); "
    "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_mb(args: list[str]) -> tuple[int, float]:
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *EDGESEG, *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    code, kib = result.stdout.split()
    return int(code), int(kib) / 1024


def huge_frames(model: str, tmp: Path, decode: bool) -> None:
    huge = write_huge_png(tmp / "huge16k.png", 16000, 16000)
    code, peak = peak_rss_mb(["run", "--model", model, "--source", str(huge)])
    line("16000x16000 PNG (771 KB class), default budget", code, f"peak RSS {peak:.0f} MB ")
    if not decode:
        return
    for side in (8000, 16000):  # run one after the other: the larger peak comes last
        (tmp / f"huge{side}").mkdir()
        image = write_huge_png(tmp / f"huge{side}" / "p.png", side, side)
        args = ["run", "--model", model, "--source", str(image), "--save-masks", str(tmp / "hm")]
        code, peak = peak_rss_mb([*args, "--max-pixels", str(side * side)])
        line(f"{side}x{side} PNG, budget raised, --save-masks", code, f"peak RSS {peak:.0f} MB ")


def doctor(tmp: Path) -> None:
    broken = tmp / "broken" / "onnxruntime"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('libonnxruntime.so.1: missing')\n")
    line(
        "doctor with an onnxruntime that fails to import",
        run("doctor", "--no-self-test", env={"PYTHONPATH": str(tmp / "broken")}),
    )


def proc_status(pid: int) -> tuple[int, int]:
    fields = dict(row.split(":", 1) for row in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) // 1024


def serve(model: str, tmp: Path, connections: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clip = tmp / "long.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for i in range(30 * 60):
        writer.write(np.full((48, 64, 3), i % 255, np.uint8))
    writer.release()
    args = [
        "run",
        "--model",
        model,
        "--source",
        str(clip),
        "--realtime",
        "--serve",
        f"127.0.0.1:{port}",
        "--max-frames",
        "1800",
    ]
    server = subprocess.Popen([*EDGESEG, *args], stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/stats"
        for _ in range(200):
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        idle = proc_status(server.pid)
        for host, want in (("127.0.0.1", 200), ("localhost", 200), ("rebind.example", 403)):
            request = urllib.request.Request(url, headers={"Host": host})
            try:
                status = urllib.request.urlopen(request, timeout=5).status
            except urllib.error.HTTPError as exc:
                status = exc.code
            line(f"GET /stats with Host: {host} (no token)", 0, f"HTTP {status} (want {want}) ")
        held, most = [], (0, 0)
        for _ in range(connections):
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            client.sendall(b"GET /st")
            held.append(client)
            threads, rss = proc_status(server.pid)
            most = (max(most[0], threads), max(most[1], rss))
        for _ in range(40):  # watch it through the header deadline
            threads, rss = proc_status(server.pid)
            most = (max(most[0], threads), max(most[1], rss))
            time.sleep(0.25)
        after = proc_status(server.pid)
        status = urllib.request.urlopen(url, timeout=5).status
        for client in held:
            client.close()
        extra = (
            f"threads idle {idle[0]}, max {most[0]}, after {after[0]}; RSS idle {idle[1]} MB,"
            f" max {most[1]} MB; then /stats HTTP {status} "
        )
        line(f"{connections} slow connections to --serve", 0, extra)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        finally:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--huge", action="store_true")
    options = parser.parse_args()
    model = str(Path(options.model).resolve())
    print(f"machine: {os.uname().machine}, load {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        signals_with_a_blocked_read(model, tmp)
        special_files(model, tmp)
        outputs_onto_inputs(model, tmp)
        unicode_and_cards(model, tmp)
        huge_frames(model, tmp, options.huge)
        doctor(tmp)
        serve(model, tmp, options.connections)


if __name__ == "__main__":
    main()
