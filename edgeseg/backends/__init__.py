"""The one place edgeseg talks to inference engines: ONNX Runtime, TensorRT and CUDA.

==========================  ===================================================================
:mod:`.onnxruntime`         one session wrapper: providers, threads, static-batch chunking, the
                            TensorRT plugin node re-expanded for ``*.trt.onnx`` files
:mod:`.tensorrt`            versioned import, the plugin's identity and its one library path,
                            loading it through the plugin registry (once per process), and the
                            engine card's compatibility check
:mod:`.tensorrt_engine`     a deserialized engine with its buffers, stream and CUDA graph
:mod:`.cuda`                the one module that imports a CUDA binding (cuda-python, pycuda, or
                            torch's CUDA as a last resort): buffers, pinned memory, streams,
                            graphs, device facts
==========================  ===================================================================

Each engine is imported lazily, inside the functions that need it, so importing any of these
modules costs nothing on a machine that lacks the engine. The runtime backends, export's parity
and engine checks, calibration's agreement check, ``edgeseg eval`` and ``edgeseg bench`` all go
through here (the layout Polygraphy uses for its ``backend/<framework>/`` runners).
"""
