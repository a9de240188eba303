"""TensorRT's runner: a serialized engine (``model.engine``) and its card in ``model.engine.json``.

Opening an engine checks, in this order, each with one line that says what to do:

1. the sidecar card exists (engines cannot hold metadata portably);
2. for an engine that unpools with the plugin (its card's ``build.unpool``; ``native``
   engines, built with ``--unpool native``, need no plugin), the plugin library exists at its
   one documented place (:func:`edgeseg.backends.tensorrt.plugin_library_path`);
   ``edgeseg plugin build`` puts it there;
3. the ``tensorrt`` Python package imports (10.x or 11.x);
4. a CUDA binding is installed, for the GPU buffers (:mod:`edgeseg.backends.cuda`);
5. the card's ``build`` record matches this machine: TensorRT version, GPU (name and compute
   capability) and plugin version (:func:`edgeseg.backends.tensorrt.check_engine_compat`,
   shared with the export stage, which writes the record). An engine only runs on the TensorRT
   and GPU it was built with, so a mismatch is refused before deserializing, with the command
   that rebuilds it, rather than crashing inside TensorRT;
6. the plugin is registered (once per process) and the engine deserializes
   (:class:`edgeseg.backends.tensorrt_engine.TensorRTEngine`, which also runs it);
7. the engine takes the card's input size.

Written against TensorRT's documented Python API; it has not run in CI (no GPU there).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeseg.backends.runner import BaseRunner
from edgeseg.backends.tensorrt import (
    check_engine_compat,
    engine_unpool,
    import_tensorrt,
    installed_plugin_version,
    rebuild_command,
    require_plugin_library,
)
from edgeseg.card import read_sidecar
from edgeseg.errors import EdgesegError


class TensorRTRunner(BaseRunner):
    """One engine, one execution context, one stream; not thread-safe (Segmenter locks).

    ``plugin_library``: the plugin to register (default: its one documented path); the export's
    engine check and doctor's self-test pass the one they just built with.
    ``use_cuda_graph=False`` for a one-shot run (capturing a graph costs more than it saves).
    """

    name = "tensorrt"

    def __init__(
        self,
        path: str | Path,
        *,
        plugin_library: str | Path | None = None,
        use_cuda_graph: bool = True,
    ) -> None:
        from edgeseg.backends.cuda import load_cuda
        from edgeseg.backends.tensorrt_engine import TensorRTEngine

        self.path = path = Path(path)
        self.label = path.name
        self.card = read_sidecar(path)
        self.output = self.card.output
        unpool = engine_unpool(self.card)
        library = None
        if unpool == "plugin":
            library = Path(plugin_library) if plugin_library else require_plugin_library()
        trt = import_tensorrt()
        cuda = load_cuda()
        gpu_name, capability = cuda.device_identity()
        check_engine_compat(
            self.card,
            tensorrt=trt.__version__,
            gpu=gpu_name,
            compute_capability=capability,
            plugin_version=installed_plugin_version(library) if library else None,
            engine=path,
        )
        rebuild = f"rebuild it here: {rebuild_command(self.card, path)}"
        self.engine = TensorRTEngine(
            path,
            plugin_library=library,
            unpool=unpool,
            cuda=cuda,
            use_cuda_graph=use_cuda_graph,
            rebuild_hint=rebuild,
        )
        wanted = (3, *self.card.input_hw)
        if not self.engine.accepts(wanted):
            self.engine.close()
            raise EdgesegError(
                f"{path.name}: input {self.engine.profile[1][1:]} does not take the card's "
                f"{wanted}; {rebuild}"
            )
        self.engine.allocate(wanted)
        self.max_batch = self.engine.max_batch
        self.device = f"{gpu_name}, TensorRT {trt.__version__}, {cuda.binding}"

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        return self.engine.infer(np.ascontiguousarray(batch, dtype=self.engine.input_dtype))

    def close(self) -> None:
        self.engine.close()
