/* Stand-ins for the TensorRT libraries the Python bindings link against (libnvinfer.so.N,
 * libnvonnxparser.so.N, libnvinfer_plugin.so.N), so `import tensorrt` works on a machine
 * without TensorRT and the bindings' classes, enums and signatures can be contract-tested.
 *
 * They export exactly the symbols `nm -D --undefined-only tensorrt.so` lists for the bindings
 * of 10.3, 10.16 and 11.4 (the C entry points of NvInfer.h, NvInferRuntime.h, NvOnnxParser.h
 * and NvInferPlugin.h). Every factory returns NULL, so the bindings refuse to create a builder,
 * runtime or parser ("factory function returned nullptr"): nothing here computes anything.
 * Built by .ci/tensorrt-bindings; never installed, never loaded by edgeseg itself. */
#include <stddef.h>
#include <stdint.h>

void* createInferBuilder_INTERNAL(void* logger, int32_t version) { (void) logger; (void) version; return NULL; }
void* createInferRuntime_INTERNAL(void* logger, int32_t version) { (void) logger; (void) version; return NULL; }
void* createInferRefitter_INTERNAL(void* engine, void* logger, int32_t version)
{
    (void) engine; (void) logger; (void) version;
    return NULL;
}
void* getPluginRegistry(void) { return NULL; }
void* getBuilderPluginRegistry(int32_t capability) { (void) capability; return NULL; }
void* createNvOnnxParser_INTERNAL(void* network, void* logger, int32_t version)
{
    (void) network; (void) logger; (void) version;
    return NULL;
}
void* createNvOnnxParserRefitter_INTERNAL(void* refitter, void* logger, int32_t version)
{
    (void) refitter; (void) logger; (void) version;
    return NULL;
}
int32_t getNvOnnxParserVersion(void) { return 0; }
int initLibNvInferPlugins(void* logger, char const* libNamespace) { (void) logger; (void) libNamespace; return 1; }
