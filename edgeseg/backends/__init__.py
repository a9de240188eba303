"""The one place edgeseg talks to inference engines: ONNX Runtime, TensorRT, PyTorch and CUDA.

==========================  ===================================================================
:mod:`.runner`              ``BaseRunner`` (``infer()`` validates, then calls the engine's
                            ``infer_impl()``) and ``open_runner``, which picks one by file type
:mod:`.onnxruntime`         ``OnnxRuntimeRunner``: providers, threads, static-batch chunking,
                            the TensorRT plugin node re-expanded for ``*.trt.onnx`` files
:mod:`.tensorrt_runner`     ``TensorRTRunner``: an engine and its sidecar card
:mod:`.torch_runner`        ``TorchRunner``: a training checkpoint (torch imported when opened)
:mod:`.tensorrt`            versioned import, the plugin's identity and its one library path,
                            loading it through the plugin registry (once per process), and the
                            engine card's compatibility check
:mod:`.tensorrt_engine`     a deserialized engine with its buffers, stream and CUDA graph
:mod:`.cuda`                the one module that imports a CUDA binding (cuda-python, pycuda, or
                            torch's CUDA as a last resort): buffers, pinned memory, streams,
                            graphs, device facts
==========================  ===================================================================

Each engine is imported lazily, inside the functions that need it, so importing any of these
modules costs nothing on a machine that lacks the engine. The runtime's Segmenter, export's
parity and engine checks, calibration's agreement check, ``edgeseg eval``, ``edgeseg bench`` and
doctor's self-test all run models through a runner (Polygraphy's ``BaseRunner`` shape).
"""
