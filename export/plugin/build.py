"""Build the TensorRT plugin library with CMake against the installed TensorRT and CUDA.

``build_plugin`` finds cmake, nvcc and the TensorRT headers, configures and builds
``CMakeLists.txt`` from a copy of the package's sources, and installs the library at the one
place edgeseg loads it from, :func:`edgeseg.backends.tensorrt.plugin_library_path`. Engines
are built on the machine that runs them, so the plugin is too: ``edgeseg plugin build`` on the
Jetson or the desktop.

Everything the user can fix (no TensorRT headers, no nvcc, no cmake, a failing configuration)
raises :class:`edgeseg.errors.EdgesegError` with one line that says what to do.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgeseg.backends.tensorrt import (
    BUILD_INFO_NAME,
    LIBRARY_NAME,
    PLUGIN_NAMESPACE,
    PLUGIN_OP_TYPE,
    PLUGIN_VERSION,
    parse_version,
    plugin_library_path,
)
from edgeseg.errors import EdgesegError
from edgeseg.export.plugin import SOURCE_FILES, source_dir

CONFIG_NAME = "edgeseg_plugin_config.json"  # written by CMakeLists.txt into the build folder
MIN_CMAKE = (3, 18)
MIN_TENSORRT_MAJOR = 10
CXX_STANDARDS = (17, 20)

# Where TensorRT's Debian packages (desktop and JetPack) and the tar install put NvInfer.h.
SYSTEM_TENSORRT_INCLUDE_DIRS: tuple[Path, ...] = (
    Path("/usr/include/x86_64-linux-gnu"),
    Path("/usr/include/aarch64-linux-gnu"),
    Path("/usr/local/tensorrt/include"),
    Path("/usr/include"),
)
# nvcc is often not on PATH: JetPack and NVIDIA's installers put it here.
SYSTEM_CUDA_BIN_DIRS: tuple[Path, ...] = (Path("/usr/local/cuda/bin"),)

_ARCH_PATTERN = re.compile(r"^(native|all|all-major|\d{2,3}[a-z]?(-real|-virtual)?)$")


# --- discovery -------------------------------------------------------------------------------


def tensorrt_header_version(include_dir: Path) -> tuple[int, int, int]:
    """(major, minor, patch) read from ``include_dir/NvInferVersion.h``.

    10.0-10.10 define ``NV_TENSORRT_MAJOR 10``; 10.11 and later (11.x too) define it through
    ``TRT_MAJOR_ENTERPRISE``. Raises EdgesegError when the file is missing or unreadable.
    """
    header = Path(include_dir) / "NvInferVersion.h"
    try:
        text = header.read_text(errors="replace")
    except OSError as exc:
        raise EdgesegError(
            f"cannot read {header}: {exc.strerror}; is it a TensorRT include folder?"
        ) from exc
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        match = re.search(rf"#define\s+NV_TENSORRT_{part}\s+(\d+)", text) or re.search(
            rf"#define\s+TRT_{part}_ENTERPRISE\s+(\d+)", text
        )
        if match is None:
            raise EdgesegError(f"cannot read the TensorRT version from {header}")
        parts.append(int(match.group(1)))
    return parts[0], parts[1], parts[2]


def _python_tensorrt_include_dirs() -> list[Path]:
    # Located without importing: importing tensorrt is slow and may fail without a GPU.
    found = []
    for name in ("tensorrt", "tensorrt_libs"):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin:
            found.append(Path(spec.origin).parent / "include")
    return found


def tensorrt_include_candidates() -> list[Path]:
    """Folders searched for NvInfer.h, in order, when none is given."""
    candidates = []
    if os.environ.get("TRT_INCLUDE_DIR"):
        candidates.append(Path(os.environ["TRT_INCLUDE_DIR"]))
    if os.environ.get("TENSORRT_DIR"):
        candidates.append(Path(os.environ["TENSORRT_DIR"]) / "include")
    candidates.extend(_python_tensorrt_include_dirs())
    candidates.extend(SYSTEM_TENSORRT_INCLUDE_DIRS)
    return candidates


def find_tensorrt_include(tensorrt_include: str | Path | None = None) -> Path:
    """The folder holding NvInfer.h of TensorRT 10 or later; raises EdgesegError if none."""
    if tensorrt_include is not None:
        folder = Path(tensorrt_include).expanduser()
        if not (folder / "NvInfer.h").is_file():
            raise EdgesegError(f"no NvInfer.h in {folder}; pass the folder of TensorRT's headers")
    else:
        folder = next(
            (c for c in tensorrt_include_candidates() if (c / "NvInfer.h").is_file()), None
        )
        if folder is None:
            raise EdgesegError(
                "TensorRT headers (NvInfer.h) not found; pass --tensorrt-include DIR, set "
                "TENSORRT_DIR, or install TensorRT 10+ (libnvinfer-dev; on Jetson, JetPack 6.1+)"
            )
    major, minor, patch = tensorrt_header_version(folder)
    if major < MIN_TENSORRT_MAJOR:
        raise EdgesegError(
            f"TensorRT {major}.{minor}.{patch} headers in {folder}; the plugin needs TensorRT 10.0 "
            "or later (IPluginV3; on Jetson, JetPack 6.1+)"
        )
    return folder


def importable_tensorrt_version() -> str | None:
    """``tensorrt.__version__`` of the TensorRT this Python imports, or None without one (a
    plugin may then be built for a C++ application; nothing to compare)."""
    try:
        import tensorrt
    except (ImportError, OSError):
        return None
    return str(getattr(tensorrt, "__version__", "")) or None


def check_headers_match(include: Path, header_version: tuple[int, int, int]) -> None:
    """Refuse, before compiling, headers of another major.minor than the importable TensorRT:
    :func:`edgeseg.backends.tensorrt.load_plugin` refuses such a library (the C++ interfaces'
    layout is only promised within one major.minor), so building it would only lead back here.
    """
    running = importable_tensorrt_version()
    if running is None:
        return
    try:
        same = parse_version(running)[:2] == tuple(header_version[:2])
    except EdgesegError:
        return  # an unreadable version string: the load-time check still guards
    if same:
        return
    headers = ".".join(map(str, header_version))
    wanted = ".".join(map(str, parse_version(running)[:2]))
    raise EdgesegError(
        f"the TensorRT headers in {include} are {headers} but this Python imports TensorRT "
        f"{running}; a plugin built from them would be refused at load. Pass --tensorrt-include "
        f"with TensorRT {wanted} headers (Jetson/Debian: apt install libnvinfer-dev of that "
        f"version; desktop: include/ of the TensorRT {wanted} tar from developer.nvidia.com "
        f"or of github.com/NVIDIA/TensorRT at tag v{wanted}.x), or a TensorRT {header_version[0]}."
        f"{header_version[1]} for Python"
    )


def find_nvcc() -> Path | None:
    """nvcc from CUDACXX, PATH, CUDA_HOME/CUDA_PATH or /usr/local/cuda/bin; None if absent."""
    if os.environ.get("CUDACXX") and Path(os.environ["CUDACXX"]).is_file():
        return Path(os.environ["CUDACXX"])
    on_path = shutil.which("nvcc")
    if on_path:
        return Path(on_path)
    dirs = [Path(os.environ[v]) / "bin" for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)]
    for folder in [*dirs, *SYSTEM_CUDA_BIN_DIRS]:
        if (folder / "nvcc").is_file():
            return folder / "nvcc"
    return None


def require_nvcc() -> Path:
    nvcc = find_nvcc()
    if nvcc is None:
        raise EdgesegError(
            "nvcc (CUDA compiler) not found; install the CUDA toolkit (on Jetson it comes with "
            "JetPack) or put nvcc on PATH"
        )
    return nvcc


def find_cmake() -> Path:
    """cmake 3.18 or later; raises EdgesegError if absent or older."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise EdgesegError(
            "cmake not found; install CMake 3.18 or later (apt install cmake, or pip install cmake)"
        )
    result = subprocess.run([cmake, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"version (\d+)\.(\d+)", result.stdout)
    if match is None or (int(match.group(1)), int(match.group(2))) < MIN_CMAKE:
        found = result.stdout.splitlines()[0] if result.stdout else "unknown version"
        raise EdgesegError(
            f"{cmake} is {found}; the plugin needs CMake 3.18 or later (pip install cmake)"
        )
    return Path(cmake)


def detect_cuda_arch() -> str | None:
    """Compute capability of the local GPU(s) as CMake wants it ("87", "86;90"), or None.

    Asks nvidia-smi; None where it is absent (Jetson) or finds no GPU, leaving CMakeLists.txt to
    choose (native on a GPU machine, 87 on JetPack 6, else a list of architectures).
    """
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        result = subprocess.run(
            [smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    caps = sorted(
        {line.strip().replace(".", "") for line in result.stdout.splitlines() if line.strip()}
    )
    if result.returncode != 0 or not caps or not all(c.isdigit() for c in caps):
        return None
    return ";".join(caps)


def normalize_cuda_arch(cuda_arch: str) -> str:
    """``"87,90"`` or ``"87;90"`` -> ``"87;90"``; raises EdgesegError for anything CMake rejects."""
    items = [a.strip() for a in re.split(r"[;,\s]+", str(cuda_arch)) if a.strip()]
    items = [a.removeprefix("sm_").removeprefix("compute_") for a in items]
    if not items or not all(_ARCH_PATTERN.match(a) for a in items):
        raise EdgesegError(
            f"invalid CUDA architecture list {cuda_arch!r}; use compute capabilities without the "
            "dot, e.g. 87 (Jetson Orin), 86;89 or native"
        )
    return ";".join(items)


# --- build -----------------------------------------------------------------------------------


def _cmake_failure_reason(output: str) -> str:
    """The first CMake error message (or compiler error line) of a log, as one line."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("CMake Error"):
            body = []
            for follow in lines[i + 1 :]:
                if not follow.strip():
                    if body:
                        break
                    continue
                if not follow.startswith(" "):
                    break
                body.append(follow.strip())
            return " ".join(body) or line.strip()
    for line in lines:
        if re.search(r"\berror\b", line, re.IGNORECASE):
            return line.strip()
    return lines[-1].strip() if lines else "no output"


def _run_logged(command: list[str], log: Path, step: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        reason = _cmake_failure_reason(result.stdout + "\n" + result.stderr)
        raise EdgesegError(f"plugin {step} failed: {reason} (full log: {log})")


def _install_atomically(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copy2(source, temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _write_json_atomically(data: dict, target: Path) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, target)


def copy_sources(destination: Path) -> Path:
    """Copy the plugin's sources (SOURCE_FILES) into ``destination``; returns it."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in SOURCE_FILES:
        shutil.copy2(source_dir() / name, destination / name)
    return destination


def build_plugin(
    tensorrt_include: str | Path | None = None,
    tensorrt_lib: str | Path | None = None,
    cuda_arch: str | None = None,
    build_dir: str | Path | None = None,
    cxx_standard: int | None = None,
) -> Path:
    """Compile the plugin and install it at :func:`plugin_library_path`; returns that path.

    ``tensorrt_include``: folder holding NvInfer.h (default: TRT_INCLUDE_DIR, TENSORRT_DIR/include,
    the tensorrt Python package, /usr/include/<arch>-linux-gnu, /usr/local/tensorrt/include).
    ``tensorrt_lib``: folder holding libnvinfer.so.<major>, only checked against the headers'
    version (the plugin links no TensorRT library). ``cuda_arch``: e.g. ``"87"`` or ``"86;89"``
    (default: the local GPU's, else CMakeLists.txt's default). ``build_dir``: where CMake works
    (default: a temporary folder, removed after a successful build, kept with its log otherwise).
    ``cxx_standard``: 17 or 20 (default: CMakeLists.txt's, 17, or 20 for TensorRT 11.5+).

    A JSON record of what it was built against (TensorRT headers' version, CUDA version,
    architectures, plugin version) is written beside the library. Raises EdgesegError, one line,
    for anything missing or a failed build.
    """
    include = find_tensorrt_include(tensorrt_include)
    trt_version = tensorrt_header_version(include)
    check_headers_match(include, trt_version)
    lib_dir = None
    if tensorrt_lib is not None:
        lib_dir = Path(tensorrt_lib).expanduser()
        if not lib_dir.is_dir():
            raise EdgesegError(f"TensorRT library folder {lib_dir} does not exist")
    elif os.environ.get("TENSORRT_DIR"):
        candidate = Path(os.environ["TENSORRT_DIR"]) / "lib"
        if any(candidate.glob("libnvinfer.so.*")):
            lib_dir = candidate
    nvcc = require_nvcc()
    cmake = find_cmake()
    arch = normalize_cuda_arch(cuda_arch) if cuda_arch else detect_cuda_arch()

    temporary = build_dir is None
    work = Path(tempfile.mkdtemp(prefix="edgeseg-plugin-")) if temporary else Path(build_dir)
    source = work / "src"
    binary = work / "build"
    shutil.rmtree(source, ignore_errors=True)
    shutil.rmtree(binary, ignore_errors=True)  # a stale cache could hold another TensorRT/CUDA
    copy_sources(source)
    log = work / "build.log"
    log.write_text("")

    configure = [
        str(cmake),
        "-S",
        str(source),
        "-B",
        str(binary),
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_CUDA_COMPILER={nvcc}",
        f"-DTENSORRT_INCLUDE_DIR={include}",
    ]
    if lib_dir is not None:
        configure.append(f"-DTENSORRT_LIB_DIR={lib_dir}")
    if arch:
        configure.append(f"-DCMAKE_CUDA_ARCHITECTURES={arch}")
    if cxx_standard is not None:
        if int(cxx_standard) not in CXX_STANDARDS:
            raise EdgesegError(f"C++ standard {cxx_standard} is not one of 17, 20")
        configure.append(f"-DEDGESEG_CXX_STANDARD={int(cxx_standard)}")
    _run_logged(configure, log, "configuration")
    jobs = str(max(1, min(os.cpu_count() or 1, 8)))
    _run_logged([str(cmake), "--build", str(binary), "--parallel", jobs], log, "compilation")
    artifact = binary / LIBRARY_NAME
    if not artifact.is_file():
        raise EdgesegError(f"plugin build finished without {artifact.name} (full log: {log})")

    target = plugin_library_path()
    _install_atomically(artifact, target)
    resolved = read_build_config(binary)
    _write_json_atomically(
        {
            "library": LIBRARY_NAME,
            "op_type": PLUGIN_OP_TYPE,
            "plugin_namespace": PLUGIN_NAMESPACE,
            "plugin_version": PLUGIN_VERSION,
            "tensorrt_headers": resolved.get("tensorrt_version", ".".join(map(str, trt_version))),
            "tensorrt_include": str(include),
            "cuda": resolved.get("cuda_version", "unknown"),
            "cuda_architectures": resolved.get("cuda_architectures", arch or "default"),
            "cxx_standard": resolved.get("cxx_standard", "unknown"),
            "sources_sha256": sources_digest(),
        },
        target.with_name(BUILD_INFO_NAME),
    )
    if temporary:
        shutil.rmtree(work, ignore_errors=True)
    return target


def read_build_config(binary_dir: str | Path) -> dict[str, str]:
    """What CMake resolved (TensorRT and CUDA versions, CUDA include and library folders,
    architectures), from the ``edgeseg_plugin_config.json`` it writes into its build folder;
    empty if that file is missing."""
    try:
        return json.loads((Path(binary_dir) / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return {}


def sources_digest() -> str:
    """SHA-256 over the plugin's sources: tells whether an installed build is current."""
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        digest.update(name.encode() + b"\0" + (source_dir() / name).read_bytes())
    return digest.hexdigest()
