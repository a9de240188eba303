// TensorRT IPluginV3 wrapper of the edgeseg unpooling kernel (op type EdgesegUnpool, version "1",
// namespace "edgeseg").
//
// Inputs: 0 = decoder tensor (N, C, H / 2, W / 2), 1 = the encoder's pre-pool tensor (N, C, H, W).
// Output: (N, C, H, W), the type of input 0. FP32 or FP16 (both inputs the same), linear NCHW.
// No attributes, no workspace, nothing serialized.
//
// Written against the public headers of TensorRT 10.0 and later; checked to compile against the
// headers of 10.3 (JetPack 6.1/6.2) and 11.1. The library links no TensorRT library: TensorRT
// loads it with IPluginRegistry::loadLibrary, which calls the exported getCreators().
#ifndef EDGESEG_UNPOOL_PLUGIN_H
#define EDGESEG_UNPOOL_PLUGIN_H

#include "NvInferRuntime.h"

#include <string>

namespace edgeseg
{

constexpr char const* kUNPOOL_PLUGIN_NAME = "EdgesegUnpool";
constexpr char const* kUNPOOL_PLUGIN_VERSION = "1";
constexpr char const* kUNPOOL_PLUGIN_NAMESPACE = "edgeseg";

class UnpoolPlugin final : public nvinfer1::IPluginV3,
                           public nvinfer1::IPluginV3OneCore,
                           public nvinfer1::IPluginV3OneBuild,
                           public nvinfer1::IPluginV3OneRuntime
{
public:
    explicit UnpoolPlugin(std::string layerName);
    UnpoolPlugin(UnpoolPlugin const&) = default;
    ~UnpoolPlugin() override = default;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

    // IPluginV3OneBuild
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;
    int32_t getNbOutputs() const noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

private:
    // Empty string when decoder (N, C, PH, PW) and prepool (N, C, H, W) fit PH = H / 2 and
    // PW = W / 2; else the reason. Dimensions of -1 (not known yet) are accepted.
    std::string shapeProblem(nvinfer1::Dims const& decoder, nvinfer1::Dims const& prepool) const;
    void logError(std::string const& message) const noexcept;
    void logError(char const* message) const noexcept;

    std::string mLayerName;
    nvinfer1::PluginFieldCollection mNoFields{};
};

class UnpoolPluginCreator final : public nvinfer1::IPluginCreatorV3One
{
public:
    UnpoolPluginCreator() = default;
    ~UnpoolPluginCreator() override = default;

    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

private:
    nvinfer1::PluginFieldCollection mNoFields{};
};

} // namespace edgeseg

#endif // EDGESEG_UNPOOL_PLUGIN_H
