"""How far a command's calls wander through edgeseg's modules: stops and climbs back up.

Runs ``edgeseg export`` and ``edgeseg bench`` in-process (a tiny synthetic checkpoint, so the
walk, not the arithmetic, is what is measured) under :func:`sys.setprofile` and records every
Python call into a function of edgeseg's source tree. A call counts when the nearest edgeseg
frame below it lies in another module:

- **stops**: such cross-module calls (each is the flow stopping at another module; a call made
  in a loop counts each time);
- **hops**: distinct cross-module call sites among them (caller module and function -> callee
  module and function): the length of the chain as code, whatever the loops repeat;
- **edges**: distinct (caller module, callee module) pairs among them;
- **climbs**: cross-module calls along an edge that lies on a cycle of the module call graph
  (B, called by A, calls back into A directly or through others): the flow climbing back up
  to a module it came from. A chain that goes one way has an acyclic graph and no climbs;
- **revisits**: cross-module calls into a module first entered *before* the caller's module
  was (a stricter reading: also counts a later step that reuses a module an earlier step
  entered first, e.g. the TensorRT rewrite calling the unpooling module the exporter used);
- **modules**: distinct modules entered.

The model's own forward passes (``edgeseg.models``, called by torch's exporter and by the parity
check) are left out: they are arithmetic, not flow; so is a module's top-level code (an import
runs it once per process). Each command runs once before it is walked, so the walk sees what a
user's second run would, not first-time imports. Usage::

    python benchmarks/call_chains.py [--json out.json] [--show-climbs] [--show-hops]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_record import emit, machine

import edgeseg

PACKAGE_ROOTS = ("edgeseg",)
LEFT_OUT = ("edgeseg.models",)


def _module(frame: Any) -> str | None:
    if frame.f_code.co_name == "<module>":
        return None
    name = frame.f_globals.get("__name__", "")
    if not name.startswith(PACKAGE_ROOTS) or name.startswith(LEFT_OUT):
        return None
    return name


def walk(run: Callable[[], Any]) -> dict[str, Any]:
    """Run ``run`` under the profiler; the figures of the module doc, and the climbing edges."""
    rank: dict[str, int] = {}
    calls: dict[tuple[str, str], int] = {}
    hops: set[tuple[str, str, str, str]] = set()
    revisits = 0

    def profile(frame: Any, event: str, _arg: Any) -> None:
        nonlocal revisits
        if event != "call":
            return
        callee = _module(frame)
        if callee is None:
            return
        rank.setdefault(callee, len(rank))
        caller_frame, caller = frame.f_back, None
        while caller_frame is not None and caller is None:
            caller = _module(caller_frame)
            site = caller_frame.f_code.co_name
            caller_frame = caller_frame.f_back
        if caller is not None and caller != callee:
            calls[(caller, callee)] = calls.get((caller, callee), 0) + 1
            hops.add((caller, site, callee, frame.f_code.co_name))
            revisits += rank[callee] < rank[caller]

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    cyclic = [edge for edge in calls if _reaches(calls, edge[1], edge[0])]
    return {
        "stops": sum(calls.values()),
        "hops": len(hops),
        "edges": len(calls),
        "climbs": sum(calls[edge] for edge in cyclic),
        "climb_edges": sorted(f"{a} -> {b} ({calls[a, b]})" for a, b in cyclic),
        "hop_sites": sorted(f"{a}.{f} -> {b}.{g}" for a, f, b, g in hops),
        "revisits": revisits,
        "modules": len(rank),
    }


def _reaches(calls: dict[tuple[str, str], int], start: str, goal: str) -> bool:
    """Whether ``goal`` is reachable from ``start`` along the recorded calls."""
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        if here == goal:
            return True
        for a, b in calls:
            if a == here and b not in seen:
                seen.add(b)
                todo.append(b)
    return False


def _tiny_checkpoint(folder: Path) -> Path:
    from model_helpers import TINY_CARD

    from edgeseg.checkpoint import save_checkpoint
    from edgeseg.models import create_model

    path = folder / "best.pt"
    save_checkpoint(path, create_model("segnet-basic", 3, channels=8, kernel_size=3), TINY_CARD)
    return path


def _cli(*args: str) -> None:
    from edgeseg.cli.main import cli

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        cli.main(list(args), standalone_mode=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the record here")
    parser.add_argument("--show-climbs", action="store_true", help="list the climbing edges")
    parser.add_argument("--show-hops", action="store_true", help="list every hop (call site)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgeseg-chains-") as tmp:
        folder = Path(tmp)
        checkpoint = _tiny_checkpoint(folder)
        commands = {
            "export": ["export", str(checkpoint), "--out", str(folder / "export")],
            "export --fp16": ["export", str(checkpoint), "--fp16", "--out", str(folder / "e16")],
            "bench": [
                "bench", "--model", str(checkpoint), "--backends", "onnxruntime",
                "--precisions", "fp32,fp16", "--sizes", "36x52", "--runs", "2", "--warmup", "0",
                "--out", str(folder / "bench"),
            ],
        }  # fmt: skip
        record: dict[str, Any] = {
            "benchmark": "call_chains",
            "edgeseg": edgeseg.__version__,
            "machine": machine(),
            "left_out": list(LEFT_OUT),
        }
        for name, command in commands.items():
            _cli(*command[:-1], str(folder / f"warm-{len(name)}"))  # imports, caches
            figures = walk(lambda command=command: _cli(*command))
            if not args.show_climbs:
                figures.pop("climb_edges")
            if not args.show_hops:
                figures.pop("hop_sites")
            record[name] = figures
    emit(record, args.json)


if __name__ == "__main__":
    main()
