// Plain C entry points of the edgeseg unpooling kernel: no TensorRT type, no C++ type.
//
// Tensors are contiguous NCHW. decoder is (n, c, h / 2, w / 2), prepool and out are (n, c, h, w).
// out[n, c, y, x] = decoder[n, c, y / 2, x / 2] where (y, x) is the first maximum (PyTorch's
// max_pool2d rule, NaN included) of prepool's 2x2 window containing it, else 0; rows/columns past
// 2 * (h / 2) / 2 * (w / 2) are 0. Exactly torch.nn.functional.max_unpool2d(decoder,
// max_pool2d(prepool, 2, 2, return_indices=True)[1], 2, 2, output_size=(h, w)).
#ifndef EDGESEG_UNPOOL_KERNEL_H
#define EDGESEG_UNPOOL_KERNEL_H

#if defined(_WIN32)
#define EDGESEG_UNPOOL_API __declspec(dllexport)
#else
#define EDGESEG_UNPOOL_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

// Element types accepted by edgeseg_unpool_forward (the dtype argument).
#define EDGESEG_UNPOOL_FLOAT32 0
#define EDGESEG_UNPOOL_FLOAT16 1

// Status codes. The forward pass returns EDGESEG_UNPOOL_OK, one of these, or a positive
// cudaError_t value from the launch.
#define EDGESEG_UNPOOL_OK 0
#define EDGESEG_UNPOOL_BAD_ARGUMENT (-1)
#define EDGESEG_UNPOOL_BAD_DTYPE (-2)

// Enqueues the unpooling of device buffers on `stream` (a cudaStream_t; 0 is the legacy default
// stream). Returns without launching for an empty tensor. Does not synchronise.
EDGESEG_UNPOOL_API int edgeseg_unpool_forward(void const* decoder, void const* prepool, void* out, int n, int c,
    int h, int w, int dtype, void* stream);

// A readable name for a status of edgeseg_unpool_forward (CUDA's own text for CUDA errors).
EDGESEG_UNPOOL_API char const* edgeseg_unpool_status_string(int status);

// The same computation on host memory, FP32 only, through the very index function the kernel runs
// (unpool_kernel.cuh). For tests on machines without a GPU.
EDGESEG_UNPOOL_API int edgeseg_unpool_host_f32(
    float const* decoder, float const* prepool, float* out, int n, int c, int h, int w);

#ifdef __cplusplus
}
#endif

#endif // EDGESEG_UNPOOL_KERNEL_H
