// TensorRT IPluginV3 wrapper of the edgeseg unpooling kernel; see unpool_plugin.h.
//
// API references: NvInferRuntime.h (IPluginV3OneCore/Build/Runtime, IPluginCreatorV3One,
// ILoggerFinder) and, from TensorRT 10.6 on, NvInferPluginBase.h (IPluginV3,
// PluginFieldCollection), of TensorRT 10.3.0 and 11.1; the signatures of getCreators and
// setLoggerFinder are those of TensorRT's own plugin libraries (plugin/common/vfcCommon.h in 10.3,
// plugin/vc/vfcCommon.h in 11.1). The methods this file overrides have the same signatures in both
// versions; the one difference it needs is marked with NV_TENSORRT_MAJOR below.
#include "unpool_plugin.h"

#include "unpool_kernel.h"

#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <new>
#include <string>
#include <utility>

#if defined(_WIN32)
#define EDGESEG_PLUGIN_API __declspec(dllexport)
#else
#define EDGESEG_PLUGIN_API __attribute__((visibility("default")))
#endif

using nvinfer1::DataType;
using nvinfer1::Dims;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::ILogger;
using nvinfer1::ILoggerFinder;
using nvinfer1::IPluginCapability;
using nvinfer1::IPluginV3;
using nvinfer1::PluginCapabilityType;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginTensorDesc;
using nvinfer1::TensorFormat;

namespace
{

constexpr int32_t kNB_INPUTS = 2;
constexpr int32_t kNB_OUTPUTS = 1;
constexpr int32_t kRANK = 4;

// The logger of the engine or execution context, set by TensorRT through setLoggerFinder().
std::mutex gLoggerMutex;
ILoggerFinder* gLoggerFinder{nullptr};

void logMessage(ILogger::Severity severity, std::string const& message) noexcept
{
    std::lock_guard<std::mutex> lock(gLoggerMutex);
    if (gLoggerFinder == nullptr)
    {
        return;
    }
    ILogger* logger = gLoggerFinder->findLogger();
    if (logger != nullptr)
    {
        logger->log(severity, message.c_str());
    }
}

bool isSupportedType(DataType type)
{
    return type == DataType::kFLOAT || type == DataType::kHALF;
}

std::string dimsToString(Dims const& dims)
{
    std::string text = "(";
    for (int32_t i = 0; i < dims.nbDims; ++i)
    {
        text += (i == 0 ? "" : ", ") + std::to_string(dims.d[i]);
    }
    return text + ")";
}

} // namespace

namespace edgeseg
{

// ---------------------------------------------------------------------------------------------
// UnpoolPlugin

UnpoolPlugin::UnpoolPlugin(std::string layerName)
    : mLayerName(std::move(layerName))
{
}

IPluginCapability* UnpoolPlugin::getCapabilityInterface(PluginCapabilityType type) noexcept
{
    switch (type)
    {
    case PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
    case PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

IPluginV3* UnpoolPlugin::clone() noexcept
{
    try
    {
        return new UnpoolPlugin(*this);
    }
    catch (std::exception const& e)
    {
        logError(std::string("clone failed: ") + e.what());
    }
    return nullptr;
}

char const* UnpoolPlugin::getPluginName() const noexcept
{
    return kUNPOOL_PLUGIN_NAME;
}

char const* UnpoolPlugin::getPluginVersion() const noexcept
{
    return kUNPOOL_PLUGIN_VERSION;
}

char const* UnpoolPlugin::getPluginNamespace() const noexcept
{
    return kUNPOOL_PLUGIN_NAMESPACE;
}

int32_t UnpoolPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    if (in == nullptr || out == nullptr || nbInputs != kNB_INPUTS || nbOutputs != kNB_OUTPUTS)
    {
        logError("expects 2 inputs (decoder, prepool) and 1 output");
        return -1;
    }
    try
    {
        std::string const problem = shapeProblem(in[0].desc.dims, in[1].desc.dims);
        if (!problem.empty())
        {
            logError(problem);
            return -1;
        }
    }
    catch (...)
    {
        return -1;
    }
    return 0;
}

int32_t UnpoolPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    if (outputTypes == nullptr || inputTypes == nullptr || nbInputs != kNB_INPUTS || nbOutputs != kNB_OUTPUTS)
    {
        return -1;
    }
    outputTypes[0] = inputTypes[0];
    return 0;
}

int32_t UnpoolPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
    int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs, nvinfer1::IExprBuilder& /*exprBuilder*/) noexcept
{
    if (inputs == nullptr || outputs == nullptr || nbInputs != kNB_INPUTS || nbOutputs != kNB_OUTPUTS)
    {
        logError("expects 2 inputs (decoder, prepool) and 1 output");
        return -1;
    }
    if (inputs[0].nbDims != kRANK || inputs[1].nbDims != kRANK)
    {
        logError("expects 4-D NCHW inputs, got ranks " + std::to_string(inputs[0].nbDims) + " and "
            + std::to_string(inputs[1].nbDims));
        return -1;
    }
    // The unpooled map has exactly the pre-pool size (odd H or W included).
    outputs[0] = inputs[1];
    return 0;
}

bool UnpoolPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (inOut == nullptr || nbInputs != kNB_INPUTS || nbOutputs != kNB_OUTPUTS || pos < 0
        || pos >= kNB_INPUTS + kNB_OUTPUTS)
    {
        return false;
    }
    PluginTensorDesc const& desc = inOut[pos].desc;
    if (desc.format != TensorFormat::kLINEAR)
    {
        return false;
    }
    if (pos == 0)
    {
        return isSupportedType(desc.type);
    }
    // Prepool and output share the decoder's type: one kernel instance per type, and the argmax is
    // decided on values of the precision the network computed them in.
    return desc.type == inOut[0].desc.type;
}

int32_t UnpoolPlugin::getNbOutputs() const noexcept
{
    return kNB_OUTPUTS;
}

size_t UnpoolPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
    DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    return 0;
}

int32_t UnpoolPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    if (in == nullptr || out == nullptr || nbInputs != kNB_INPUTS || nbOutputs != kNB_OUTPUTS)
    {
        logError("expects 2 inputs (decoder, prepool) and 1 output");
        return -1;
    }
    try
    {
        std::string const problem = shapeProblem(in[0].dims, in[1].dims);
        if (!problem.empty())
        {
            logError(problem);
            return -1;
        }
    }
    catch (...)
    {
        return -1;
    }
    return 0;
}

int32_t UnpoolPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
    void const* const* inputs, void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept
{
    if (inputDesc == nullptr || inputs == nullptr || outputs == nullptr || !isSupportedType(inputDesc[0].type))
    {
        return -1;
    }
    Dims const& decoder = inputDesc[0].dims;
    Dims const& prepool = inputDesc[1].dims;
    try
    {
        // Checked again here: the kernel indexes the decoder by the prepool's shape. No allocation
        // unless something is wrong.
        std::string const problem = shapeProblem(decoder, prepool);
        if (!problem.empty() || prepool.d[0] < 0 || prepool.d[1] < 0 || prepool.d[2] < 0 || prepool.d[3] < 0)
        {
            logError(problem.empty() ? "unresolved input dimensions at enqueue" : problem);
            return -1;
        }
    }
    catch (...)
    {
        return -1;
    }
    int const dtype = inputDesc[0].type == DataType::kHALF ? EDGESEG_UNPOOL_FLOAT16 : EDGESEG_UNPOOL_FLOAT32;
    int const status = edgeseg_unpool_forward(inputs[0], inputs[1], outputs[0], static_cast<int>(prepool.d[0]),
        static_cast<int>(prepool.d[1]), static_cast<int>(prepool.d[2]), static_cast<int>(prepool.d[3]), dtype,
        static_cast<void*>(stream));
    if (status != EDGESEG_UNPOOL_OK)
    {
        logError(std::string("kernel launch failed: ") + edgeseg_unpool_status_string(status));
    }
    return status;
}

IPluginV3* UnpoolPlugin::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept
{
    // No per-context resources: a plain copy.
    return clone();
}

PluginFieldCollection const* UnpoolPlugin::getFieldsToSerialize() noexcept
{
    // No attributes: the kernel needs nothing but the tensors.
    mNoFields.nbFields = 0;
    mNoFields.fields = nullptr;
    return &mNoFields;
}

std::string UnpoolPlugin::shapeProblem(Dims const& decoder, Dims const& prepool) const
{
    if (decoder.nbDims != kRANK || prepool.nbDims != kRANK)
    {
        return "expects 4-D NCHW inputs, got decoder " + dimsToString(decoder) + " and prepool "
            + dimsToString(prepool);
    }
    auto const fits = [](int64_t got, int64_t expected) { return got < 0 || expected < 0 || got == expected; };
    auto const halved = [](int64_t size) { return size < 0 ? size : size / 2; };
    bool const ok = fits(decoder.d[0], prepool.d[0]) && fits(decoder.d[1], prepool.d[1])
        && fits(decoder.d[2], halved(prepool.d[2])) && fits(decoder.d[3], halved(prepool.d[3]));
    int64_t const intMax = std::numeric_limits<int>::max();
    for (int32_t i = 0; i < kRANK; ++i)
    {
        if (prepool.d[i] > intMax)
        {
            return "prepool dimension " + std::to_string(prepool.d[i]) + " exceeds the kernel's 32-bit sizes";
        }
    }
    if (!ok)
    {
        return "decoder " + dimsToString(decoder) + " does not match prepool " + dimsToString(prepool)
            + ": expected (N, C, H / 2, W / 2) of the prepool's (N, C, H, W)";
    }
    return std::string();
}

void UnpoolPlugin::logError(char const* message) const noexcept
{
    try
    {
        logError(std::string(message));
    }
    catch (...)
    {
    }
}

void UnpoolPlugin::logError(std::string const& message) const noexcept
{
    try
    {
        logMessage(ILogger::Severity::kERROR,
            std::string(kUNPOOL_PLUGIN_NAMESPACE) + "::" + kUNPOOL_PLUGIN_NAME + " (" + mLayerName + "): " + message);
    }
    catch (...)
    {
    }
}

// ---------------------------------------------------------------------------------------------
// UnpoolPluginCreator

IPluginV3* UnpoolPluginCreator::createPlugin(
    char const* name, PluginFieldCollection const* fc, nvinfer1::TensorRTPhase /*phase*/) noexcept
{
    try
    {
        std::string const layerName = name != nullptr ? name : "";
        // Version 1 has no attributes. An unknown field means an ONNX written for a later version of
        // the plugin; the computation does not depend on it, so say so and go on.
        if (fc != nullptr && fc->fields != nullptr)
        {
            for (int32_t i = 0; i < fc->nbFields; ++i)
            {
                char const* field = fc->fields[i].name != nullptr ? fc->fields[i].name : "?";
                logMessage(ILogger::Severity::kWARNING,
                    std::string(kUNPOOL_PLUGIN_NAMESPACE) + "::" + kUNPOOL_PLUGIN_NAME + " (" + layerName
                        + "): ignoring unknown attribute '" + field + "'");
            }
        }
        return new UnpoolPlugin(layerName);
    }
    catch (std::exception const& e)
    {
        logMessage(ILogger::Severity::kERROR, std::string("EdgesegUnpool: createPlugin failed: ") + e.what());
    }
    return nullptr;
}

PluginFieldCollection const* UnpoolPluginCreator::getFieldNames() noexcept
{
    mNoFields.nbFields = 0;
    mNoFields.fields = nullptr;
    return &mNoFields;
}

char const* UnpoolPluginCreator::getPluginName() const noexcept
{
    return kUNPOOL_PLUGIN_NAME;
}

char const* UnpoolPluginCreator::getPluginVersion() const noexcept
{
    return kUNPOOL_PLUGIN_VERSION;
}

char const* UnpoolPluginCreator::getPluginNamespace() const noexcept
{
    return kUNPOOL_PLUGIN_NAMESPACE;
}

} // namespace edgeseg

// -------------------------------------------------------------------------------------------------
// Entry points IPluginRegistry::loadLibrary looks up in a plugin library.

extern "C" EDGESEG_PLUGIN_API nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static edgeseg::UnpoolPluginCreator creator;
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&creator};
    nbCreators = 1;
    return creators;
}

extern "C" EDGESEG_PLUGIN_API void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
#if NV_TENSORRT_MAJOR >= 11
    // TensorRT 11 made ILoggerFinder a versioned interface (NvInferRuntime.h of 11.0 and 11.1:
    // `class ILoggerFinder : public IVersionedInterface`, getInterfaceInfo() returning
    // {"ILoggerFinder", 1, 0}); in 10.x (10.3 through 10.16) it is a plain class with
    // findLogger() alone, so there is nothing to check. Keep only a finder
    // whose layout this library was compiled for.
    if (finder != nullptr)
    {
        nvinfer1::InterfaceInfo const info = finder->getInterfaceInfo();
        if (info.kind == nullptr || std::strcmp(info.kind, "ILoggerFinder") != 0 || info.major != 1)
        {
            return;
        }
    }
#endif
    std::lock_guard<std::mutex> lock(gLoggerMutex);
    if (gLoggerFinder == nullptr && finder != nullptr)
    {
        gLoggerFinder = finder;
    }
}
