"""Real CMake builds of the TensorRT plugin against TensorRT headers.

The builds run when ``EDGESEG_TRT_HEADERS`` names one or more folders (``os.pathsep``-separated)
holding TensorRT include folders (``v10.3.0/include``, ``v11.1/include``, ...) or being one; they
need cmake and nvcc, not TensorRT's libraries nor a GPU. Every header set found is built as C++17
and as C++20 (TensorRT 11.5 and later need C++20; older headers must keep building as C++17), so
each test id names the TensorRT headers and the standard. Each build is checked with ``nm``: it
exports getCreators and setLoggerFinder and needs no libnvinfer symbol. A small C++ program,
compiled against the same headers in the same standard, then loads the library the way
TensorRT's registry does (dlopen + getCreators) and drives the plugin's build-time and runtime
methods that need no GPU.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from gpu_helpers import missing

from edgeseg.export import plugin
from edgeseg.export.plugin import build

HEADERS_ENV = "EDGESEG_TRT_HEADERS"
# Jetson Orin: one architecture keeps each of the builds short (the kernel's code does not
# depend on the TensorRT headers; tests/export/test_plugin_gpu.py runs it on a lent GPU).
TEST_CUDA_ARCH = os.environ.get("EDGESEG_TEST_CUDA_ARCH", "87")
CXX_STANDARDS = (17, 20)


# --- real builds against TensorRT headers ---------------------------------------------------


def header_folders(value: str | None) -> list[Path]:
    """Every TensorRT include folder under the ``os.pathsep``-separated roots of ``value``."""
    found: list[Path] = []
    for root in (value or "").split(os.pathsep):
        if not root:
            continue
        base = Path(root)
        found += [base] if (base / "NvInfer.h").is_file() else []
        found += sorted({p.parent for p in base.glob("*/NvInfer.h")})
        found += sorted({p.parent for p in base.glob("*/include/NvInfer.h")})
    return list(dict.fromkeys(p.resolve() for p in found))


def _header_sets(full_builds: bool) -> list:
    """(headers, standard) params. Every header set x both standards for the source compile;
    for full CMake builds (nvcc too: slow), every header set at C++17 and the newest at C++20
    too (the kernel includes no TensorRT header, so one C++20 nvcc build covers it)."""
    root = os.environ.get(HEADERS_ENV)
    found = header_folders(root)
    if not found:
        reason = (
            f"{HEADERS_ENV} is not set (folders of TensorRT include folders)"
            if not root
            else f"no NvInfer.h in {root}, its */ or */include/"
        )
        return [pytest.param(None, 17, marks=pytest.mark.skip(reason=reason), id="no-headers")]
    versions = {folder: build.tensorrt_header_version(folder) for folder in found}
    newest = max(found, key=versions.__getitem__)
    params = []
    for folder in found:
        version = ".".join(map(str, versions[folder]))
        for standard in CXX_STANDARDS:
            if full_builds and standard != 17 and folder != newest:
                continue
            params.append(pytest.param(folder, standard, id=f"trt{version}-c++{standard}"))
    return params


def _cuda_include() -> Path:
    """Where cuda_runtime_api.h is (TensorRT's headers include it), as nvcc itself reports."""
    nvcc = build.find_nvcc()
    dry = subprocess.run(
        [str(nvcc), "--dryrun", "-E", "-x", "cu", "/dev/null"],
        capture_output=True,
        text=True,
        check=False,
    )
    for token in dry.stderr.replace('"', " ").split():
        if token.startswith("-I") and (Path(token[2:]) / "cuda_runtime_api.h").is_file():
            return Path(token[2:])
    missing(f"cannot find cuda_runtime_api.h through {nvcc} --dryrun")


@pytest.mark.parametrize(("headers", "standard"), _header_sets(full_builds=False))
def test_plugin_sources_compile_against_the_headers(headers: Path, standard: int) -> None:
    """unpool_plugin.cpp (the part that includes TensorRT) as C++17 and C++20, warnings on."""
    _require_build_tools()
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        missing("g++ (C++ compiler) not found")
    cuda_include = _cuda_include()
    command = [
        cxx,
        f"-std=c++{standard}",
        "-fsyntax-only",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-isystem",
        str(headers),
        "-isystem",
        str(cuda_include),
        str(plugin.source_dir() / "unpool_plugin.cpp"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-4000:]


def _require_build_tools() -> None:
    if build.find_nvcc() is None:
        missing("nvcc not found on PATH, CUDA_HOME or /usr/local/cuda/bin")
    if shutil.which("cmake") is None:
        missing("cmake not found")
    if shutil.which("nm") is None:
        missing("nm (binutils) not found")


def _symbols(library: Path, which: str) -> set[str]:
    result = subprocess.run(
        ["nm", "-D", which, str(library)], capture_output=True, text=True, check=True
    )
    return {line.split()[-1] for line in result.stdout.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def built_plugins(tmp_path_factory) -> dict[tuple[Path, int], tuple[Path, Path]]:
    """(header folder, C++ standard) -> (installed library, CMake build folder), built once."""
    return {}


def _build_once(built: dict, headers: Path, standard: int, tmp_path_factory) -> tuple[Path, Path]:
    key = (headers, standard)
    if key not in built:
        work = tmp_path_factory.mktemp("plugin-build")
        old = os.environ.get("EDGESEG_PLUGIN_DIR")
        os.environ["EDGESEG_PLUGIN_DIR"] = str(work / "install")
        try:
            library = plugin.build_plugin(
                tensorrt_include=headers,
                cuda_arch=TEST_CUDA_ARCH,
                build_dir=work / "cmake",
                cxx_standard=standard,
            )
        finally:
            if old is None:
                os.environ.pop("EDGESEG_PLUGIN_DIR")
            else:
                os.environ["EDGESEG_PLUGIN_DIR"] = old
        built[key] = (library, work / "cmake" / "build")
    return built[key]


def _compile_flags(binary: Path, language: str) -> str:
    flags = binary / "CMakeFiles" / "edgeseg_unpool_plugin.dir" / "flags.make"
    prefix = f"{language}_FLAGS = "
    return next(line for line in flags.read_text().splitlines() if line.startswith(prefix))


@pytest.mark.slow
@pytest.mark.parametrize(("headers", "standard"), _header_sets(full_builds=True))
def test_plugin_builds_and_exports_only_what_tensorrt_needs(
    headers: Path, standard: int, built_plugins, tmp_path_factory
) -> None:
    _require_build_tools()
    library, binary = _build_once(built_plugins, headers, standard, tmp_path_factory)
    assert library.is_file() and library.name == "libedgeseg_unpool_plugin.so"
    info = build.read_build_config(binary)
    major, minor, patch = build.tensorrt_header_version(headers)
    assert info["tensorrt_version"] == f"{major}.{minor}.{patch}"
    assert info["cuda_architectures"] == TEST_CUDA_ARCH
    assert info["cxx_standard"] == str(standard)
    # Both compilers really were asked for that standard (CMake 3.25 needs help for nvcc).
    assert f"-std=c++{standard}" in _compile_flags(binary, "CXX")
    assert f"-std=c++{standard}" in _compile_flags(binary, "CUDA")
    record = json.loads((library.parent / build.BUILD_INFO_NAME).read_text())
    assert record["tensorrt_headers"] == f"{major}.{minor}.{patch}"
    assert record["cxx_standard"] == str(standard)

    defined = _symbols(library, "--defined-only")
    assert {"getCreators", "setLoggerFinder", "edgeseg_unpool_forward"} <= defined
    undefined = _symbols(library, "--undefined-only")
    tensorrt = sorted(
        s
        for s in undefined
        if "nvinfer" in s.lower() or s.startswith(("createInfer", "getInferLib", "getPlugin"))
    )
    assert not tensorrt, f"the plugin must not need libnvinfer at link time: {tensorrt}"
    needed = subprocess.run(
        ["readelf", "-d", str(library)], capture_output=True, text=True, check=False
    ).stdout
    assert "libnvinfer" not in needed
    assert "libcudart" in needed


HARNESS = r"""
// Loads the plugin as TensorRT's registry does and drives the methods that need no GPU.
#include "NvInferRuntime.h"
#include <dlfcn.h>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace nvinfer1;
static int failures = 0;
#define CHECK(cond) do { if (!(cond)) { std::printf("FAIL line %d: %s\n", __LINE__, #cond); \
    ++failures; } } while (0)

struct Logger : public ILogger {
    std::vector<std::string> messages;
    void log(Severity, AsciiChar const* msg) noexcept override { messages.emplace_back(msg); }
    bool saw(char const* text) const {
        for (auto const& m : messages) if (m.find(text) != std::string::npos) return true;
        return false;
    }
};
struct Finder : public ILoggerFinder {
    Logger logger;
    ILogger* findLogger() override { return &logger; }
};
struct FakeExprBuilder : public IExprBuilder {
    FakeExprBuilder() { mImpl = nullptr; }
    ~FakeExprBuilder() noexcept override = default;
};

template <typename T>
static T* capability(IPluginV3* plugin, PluginCapabilityType type) {
    return static_cast<T*>(plugin->getCapabilityInterface(type));
}
static Dims dims4(int64_t n, int64_t c, int64_t h, int64_t w) {
    Dims d{}; d.nbDims = 4; d.d[0] = n; d.d[1] = c; d.d[2] = h; d.d[3] = w; return d;
}
static DynamicPluginTensorDesc dyn(Dims d, DataType t, TensorFormat f = TensorFormat::kLINEAR) {
    DynamicPluginTensorDesc x{}; x.desc.dims = d; x.desc.type = t; x.desc.format = f;
    x.min = d; x.max = d; x.opt = d; return x;
}

int main(int argc, char** argv) {
    void* handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!handle) { std::printf("FAIL dlopen: %s\n", dlerror()); return 2; }
    using GetCreators = IPluginCreatorInterface* const* (*)(int32_t&);
    using SetLoggerFinder = void (*)(ILoggerFinder*);
    auto getCreators = reinterpret_cast<GetCreators>(dlsym(handle, "getCreators"));
    auto setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(handle, "setLoggerFinder"));
    if (!getCreators || !setLoggerFinder) { std::printf("FAIL dlsym\n"); return 2; }
    static Finder finder;
    setLoggerFinder(&finder);

    int32_t nb = 0;
    IPluginCreatorInterface* const* creators = getCreators(nb);
    CHECK(nb == 1);
    CHECK(std::strcmp(creators[0]->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0);
    auto* creator = static_cast<IPluginCreatorV3One*>(creators[0]);
    CHECK(std::strcmp(creator->getPluginName(), "EdgesegUnpool") == 0);
    CHECK(std::strcmp(creator->getPluginVersion(), "1") == 0);
    CHECK(std::strcmp(creator->getPluginNamespace(), "edgeseg") == 0);
    CHECK(creator->getFieldNames() != nullptr && creator->getFieldNames()->nbFields == 0);

    PluginFieldCollection none{};
    IPluginV3* plugin = creator->createPlugin("unpool_1", &none, TensorRTPhase::kBUILD);
    CHECK(plugin != nullptr);
    if (!plugin) return 1;
    auto* core = capability<IPluginV3OneCore>(plugin, PluginCapabilityType::kCORE);
    auto* buildCap = capability<IPluginV3OneBuild>(plugin, PluginCapabilityType::kBUILD);
    auto* runtime = capability<IPluginV3OneRuntime>(plugin, PluginCapabilityType::kRUNTIME);
    CHECK(std::strcmp(core->getInterfaceInfo().kind, "PLUGIN_V3ONE_CORE") == 0);
    CHECK(std::strcmp(buildCap->getInterfaceInfo().kind, "PLUGIN_V3ONE_BUILD") == 0);
    CHECK(std::strcmp(runtime->getInterfaceInfo().kind, "PLUGIN_V3ONE_RUNTIME") == 0);
    CHECK(std::strcmp(core->getPluginName(), "EdgesegUnpool") == 0);
    CHECK(std::strcmp(core->getPluginNamespace(), "edgeseg") == 0);
    CHECK(std::strcmp(core->getPluginVersion(), "1") == 0);
    CHECK(buildCap->getNbOutputs() == 1);

    DataType in[2] = {DataType::kHALF, DataType::kHALF};
    DataType outType = DataType::kFLOAT;
    CHECK(buildCap->getOutputDataTypes(&outType, 1, in, 2) == 0 && outType == DataType::kHALF);

    // Formats: FP32 or FP16 linear, all three alike.
    Dims dec = dims4(1, 64, 180, 240), pre = dims4(1, 64, 361, 480);
    for (DataType t : {DataType::kFLOAT, DataType::kHALF}) {
        DynamicPluginTensorDesc io[3] = {dyn(dec, t), dyn(pre, t), dyn(pre, t)};
        for (int pos = 0; pos < 3; ++pos) CHECK(buildCap->supportsFormatCombination(pos, io, 2, 1));
    }
    {
        DynamicPluginTensorDesc io[3]
            = {dyn(dec, DataType::kFLOAT), dyn(pre, DataType::kHALF), dyn(pre, DataType::kFLOAT)};
        CHECK(!buildCap->supportsFormatCombination(1, io, 2, 1));
        io[0] = dyn(dec, DataType::kINT8);
        CHECK(!buildCap->supportsFormatCombination(0, io, 2, 1));
        io[0] = dyn(dec, DataType::kFLOAT, TensorFormat::kCHW32);
        CHECK(!buildCap->supportsFormatCombination(0, io, 2, 1));
    }

    // Output shape: exactly input 1's expressions.
    {
        FakeExprBuilder exprs;
        DimsExprs inputs[2]{};
        static int tokens[8];
        for (int i = 0; i < 2; ++i) {
            inputs[i].nbDims = 4;
            for (int k = 0; k < 4; ++k)
                inputs[i].d[k] = reinterpret_cast<IDimensionExpr const*>(&tokens[4 * i + k]);
        }
        DimsExprs outputs[1]{};
        CHECK(buildCap->getOutputShapes(inputs, 2, nullptr, 0, outputs, 1, exprs) == 0);
        CHECK(outputs[0].nbDims == 4);
        for (int k = 0; k < 4; ++k) CHECK(outputs[0].d[k] == inputs[1].d[k]);
        inputs[1].nbDims = 3;
        CHECK(buildCap->getOutputShapes(inputs, 2, nullptr, 0, outputs, 1, exprs) != 0);
    }

    // Shapes: (N, C, H/2, W/2) against (N, C, H, W), wildcards accepted at build time.
    {
        DynamicPluginTensorDesc ok[2] = {dyn(dec, DataType::kFLOAT), dyn(pre, DataType::kFLOAT)};
        DynamicPluginTensorDesc out1[1] = {dyn(pre, DataType::kFLOAT)};
        CHECK(buildCap->configurePlugin(ok, 2, out1, 1) == 0);
        Dims unknown = dims4(-1, 64, -1, -1);
        DataType const f32 = DataType::kFLOAT;
        DynamicPluginTensorDesc wild[2] = {dyn(unknown, f32), dyn(unknown, f32)};
        CHECK(buildCap->configurePlugin(wild, 2, out1, 1) == 0);
        Dims tooTall = dims4(1, 64, 181, 240);
        DynamicPluginTensorDesc bad[2] = {dyn(tooTall, f32), dyn(pre, f32)};
        CHECK(buildCap->configurePlugin(bad, 2, out1, 1) != 0);
        CHECK(finder.logger.saw("does not match prepool"));
        CHECK(finder.logger.saw("unpool_1"));
    }
    {
        PluginTensorDesc ok[2]{}, out1[1]{};
        ok[0].dims = dims4(2, 3, 8, 5); ok[1].dims = dims4(2, 3, 17, 11); out1[0].dims = ok[1].dims;
        CHECK(runtime->onShapeChange(ok, 2, out1, 1) == 0);
        PluginTensorDesc bad[2]{};
        bad[0].dims = dims4(2, 4, 8, 5); bad[1].dims = dims4(2, 3, 17, 11);
        CHECK(runtime->onShapeChange(bad, 2, out1, 1) != 0);
        // enqueue refuses mismatched shapes before it touches the GPU.
        void const* inputs[2] = {nullptr, nullptr};
        void* outputs[1] = {nullptr};
        CHECK(runtime->enqueue(bad, out1, inputs, outputs, nullptr, nullptr) != 0);
    }

    PluginFieldCollection const* serialized = runtime->getFieldsToSerialize();
    CHECK(serialized != nullptr && serialized->nbFields == 0);
    IPluginV3* copy = plugin->clone();
    CHECK(copy != nullptr);
    IPluginV3* attached = runtime->attachToContext(nullptr);
    CHECK(attached != nullptr);
    if (attached) {
        auto* attachedCore = capability<IPluginV3OneCore>(attached, PluginCapabilityType::kCORE);
        CHECK(std::strcmp(attachedCore->getPluginName(), "EdgesegUnpool") == 0);
    }
    delete copy;
    delete attached;
    delete plugin;

    // Deserialization path: the runtime phase gets the (empty) serialized fields.
    IPluginV3* restored = creator->createPlugin("unpool_1", &none, TensorRTPhase::kRUNTIME);
    CHECK(restored != nullptr);
    delete restored;
    // An unknown attribute is reported, not fatal.
    int32_t value = 3;
    PluginField field("future_attribute", &value, PluginFieldType::kINT32, 1);
    PluginFieldCollection one{}; one.nbFields = 1; one.fields = &field;
    IPluginV3* withField = creator->createPlugin("unpool_2", &one, TensorRTPhase::kBUILD);
    CHECK(withField != nullptr);
    CHECK(finder.logger.saw("future_attribute"));
    delete withField;

    std::printf("%s (%d failures)\n", failures ? "FAILED" : "OK", failures);
    return failures ? 1 : 0;
}
"""


@pytest.mark.slow
@pytest.mark.parametrize(("headers", "standard"), _header_sets(full_builds=True))
def test_plugin_loads_and_answers_like_a_tensorrt_plugin(
    headers: Path, standard: int, built_plugins, tmp_path_factory, tmp_path
) -> None:
    _require_build_tools()
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        missing("g++ (C++ compiler) not found")
    library, binary = _build_once(built_plugins, headers, standard, tmp_path_factory)
    info = build.read_build_config(binary)
    cuda_includes = [d for d in info.get("cuda_include_dirs", "").split(";") if d]
    source = tmp_path / "harness.cpp"
    source.write_text(HARNESS)
    program = tmp_path / "harness"
    command = [cxx, f"-std=c++{standard}", "-O0", "-isystem", str(headers)]
    for folder in cuda_includes:
        command += ["-isystem", folder]
    command += [str(source), "-o", str(program), "-ldl"]
    compiled = subprocess.run(command, capture_output=True, text=True, check=False)
    assert compiled.returncode == 0, compiled.stderr[-4000:]
    env = dict(os.environ)
    library_dir = info.get("cuda_library_dir", "")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (library_dir, env.get("LD_LIBRARY_PATH", "")) if p
    )
    ran = subprocess.run(
        [str(program), str(library)], capture_output=True, text=True, env=env, check=False
    )
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-2000:]
    assert "OK (0 failures)" in ran.stdout
