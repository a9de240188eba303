"""Issue 26, outputs: special files written in place (never replaced), every command's outputs
checked against its inputs, a killed run's temporaries removed.

Special files are made in the test's own folder: a FIFO with ``mkfifo``; character devices with
``mknod`` (root only, as in CI; skipped elsewhere) as copies of ``/dev/null`` (1, 3) and
``/dev/full`` (1, 7); "a symlink to stdout" is a link in that folder to ``/dev/stdout``. The
machine's real ``/dev`` is never written.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, edgeseg
from runtime_helpers import count_video_frames, write_video

from edgeseg.errors import EdgesegError
from edgeseg.files import PendingFile, atomic_write_bytes, remove_orphans
from edgeseg.outputs import check_outputs


def char_device(path: Path, minor: int) -> Path:
    """A copy of /dev/null (minor 3) or /dev/full (minor 7) at ``path`` (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mknod of a character device needs root (CI runs as root)")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    return path


def read_fifo(path: Path) -> tuple[threading.Thread, list[bytes]]:
    got: list[bytes] = []

    def reader() -> None:
        with open(path, "rb") as handle:
            got.append(handle.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread, got


def test_a_fifo_target_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    thread, got = read_fifo(fifo)
    atomic_write_bytes(fifo, b'{"a": 1}')
    thread.join(timeout=10)
    assert got == [b'{"a": 1}']
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still a FIFO, not a regular file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_device_target_is_written_in_place_and_a_full_one_is_one_line(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    null, full = char_device(tmp_path / "null", 3), char_device(tmp_path / "full", 7)
    video = write_video(tmp_path / "clip.mp4", 4)
    args = ["run", "--model", str(tiny_onnx), "--source", str(video)]
    ok = edgeseg(*args, "--stats", str(null), "--class-shares", str(null))
    assert ok.returncode == 0, ok.stderr
    failed = edgeseg(*args, "--stats", str(full))
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    errors = [line for line in failed.stderr.splitlines() if line.startswith("edgeseg: error:")]
    assert len(errors) == 1 and "full: No space left on device (the disk is full" in errors[0]
    for device in (null, full):
        assert stat.S_ISCHR(os.stat(device).st_mode)  # never replaced by a regular file
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_symlink_to_stdout_and_dash_print_to_stdout(tiny_onnx: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", 3)
    link = tmp_path / "shares.csv"
    link.symlink_to("/dev/stdout")
    args = ["run", "--model", str(tiny_onnx), "--source", str(video)]
    linked = edgeseg(*args, "--class-shares", str(link))
    assert linked.returncode == 0, linked.stderr
    assert linked.stdout.splitlines()[0].startswith("frame,")
    assert len(linked.stdout.splitlines()) == 4  # the header and one row per frame
    assert link.is_symlink() and os.readlink(link) == "/dev/stdout"
    dashed = edgeseg(*args, "--stats", "-")
    assert dashed.returncode == 0, dashed.stderr
    assert json.loads(dashed.stdout.splitlines()[-1])["final"] is True
    assert not (tmp_path / "-").exists()


def test_a_video_onto_a_fifo_is_refused_in_one_line(tiny_onnx: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "out.mp4"
    os.mkfifo(fifo)
    video = write_video(tmp_path / "clip.mp4", 3)
    result = edgeseg(
        "run", "--model", str(tiny_onnx), "--source", str(video), "--output", str(fifo)
    )
    assert_one_line_error(result, "is a FIFO; a video can only be written to a file")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_killed_runs_temporaries_are_removed_and_a_live_writers_kept(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    video = write_video(tmp_path / "clip.mp4", 3)
    orphan = tmp_path / ".out.mp4.k2j4x8ab.mp4"  # what a SIGKILLed run leaves
    orphan.write_bytes(b"half a video")
    held = PendingFile(tmp_path / "s.jsonl")  # a running writer's, locked
    other = tmp_path / ".notes.txt.abcdefgh.tmp"  # another file's temporary: not ours to judge
    other.write_text("x")
    out = tmp_path / "out.mp4"
    result = edgeseg("run", "--model", str(tiny_onnx), "--source", str(video), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert count_video_frames(out) == 3
    assert not orphan.exists()
    assert other.exists()
    assert remove_orphans(tmp_path / "s.jsonl") == [] and held.path.exists()  # locked: kept
    held.discard()


def test_the_lock_is_what_tells_a_live_writer(tmp_path: Path) -> None:
    temp = tmp_path / ".m.json.abcdefgh.tmp"
    temp.write_text("")
    fd = os.open(temp, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    probe = [sys.executable, "-c", "import sys; from edgeseg.files import remove_orphans; "
             f"print(len(remove_orphans({str(tmp_path / 'm.json')!r})))"]  # fmt: skip
    assert subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "0"
    os.close(fd)
    assert subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "1"


# -- outputs onto inputs, every command --------------------------------------------------------


def test_eval_outputs_onto_inputs_are_refused(cli, camvid_like: Path, tmp_path: Path) -> None:
    model, second = tmp_path / "m.onnx", tmp_path / "m2.onnx"
    model.write_bytes(b"model one")
    second.write_bytes(b"model two")
    image = sorted((camvid_like / "val").iterdir())[0]
    before = {p: p.read_bytes() for p in (model, second, image)}
    data = ("--data", str(camvid_like))
    cases = [
        (("eval", str(model), *data, "--json", str(model)), "is the model"),
        (("eval", str(model), *data, "--confusion", str(model)), "is the model"),
        (("eval", str(model), str(second), *data, "--json", str(second)), "is a compared model"),
        (("eval", str(model), *data, "--json", "x.json", "--confusion", "x.json"), "same path"),
        (("eval", str(model), *data, "--json", str(image)), "is inside --data"),
    ]
    for args, fragment in cases:
        assert_one_line_error(cli(*args, cwd=tmp_path), fragment)
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "x.json").exists()


def test_train_bench_demo_export_outputs_onto_inputs_are_refused(
    cli, camvid_like: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "runs" / "best.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"vgg weights")
    onnx_model = tmp_path / "m.onnx"
    onnx_model.write_bytes(b"model")
    (tmp_path / "d").mkdir()
    clip = write_video(tmp_path / "d" / "overlay.mp4", 2)
    checkpoint = tmp_path / "c.pt"
    checkpoint.write_bytes(b"checkpoint")
    data = str(camvid_like)
    cases = [
        (("train", "--data", data, "--out", f"{data}/val"), "is inside --data"),
        (
            ("train", "--data", data, "--out", str(weights.parent), "--vgg-weights", str(weights)),
            "is --vgg-weights",
        ),
        (
            ("bench", "--model", str(onnx_model), "--data", data, "--out", f"{data}/b"),
            "inside --data",
        ),
        (("demo", "--source", str(clip), "--out", str(clip.parent)), "is --source"),
        (
            ("export", str(checkpoint), "--int8", "--calib-data", data, "--out", f"{data}/x"),
            "is inside --calib-data",
        ),
    ]
    listing = sorted(str(p) for p in camvid_like.rglob("*"))
    for args, fragment in cases:
        assert_one_line_error(cli(*args, cwd=tmp_path), fragment)
    assert sorted(str(p) for p in camvid_like.rglob("*")) == listing
    assert weights.read_bytes() == b"vgg weights" and onnx_model.read_bytes() == b"model"


def test_check_outputs_rules(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    null_like = tmp_path / "fifo"
    os.mkfifo(null_like)
    # Two outputs onto one special file lose nothing; onto one regular file they do.
    check_outputs({}, {"--json": null_like, "--confusion": null_like})
    with pytest.raises(EdgesegError, match="same path"):
        check_outputs({}, {"--json": tmp_path / "a", "--confusion": tmp_path / "b/../a"})
    with pytest.raises(EdgesegError, match=r"--out .* is inside --data"):
        check_outputs({"--data": tmp_path / "data"}, {}, {"--out": (tmp_path / "data", ())})
    loop = tmp_path / "loop"
    loop.symlink_to(loop)  # resolving it must not raise RuntimeError
    with pytest.raises(EdgesegError, match="is the model"):
        check_outputs({"the model": loop}, {"--json": loop})
    check_outputs({"--data": tmp_path / "data"}, {"--json": "-"})
