// CUDA kernel of the edgeseg unpooling (FP32 and FP16, contiguous NCHW) behind a plain C entry
// point (unpool_kernel.h). The index logic lives in unpool_kernel.cuh, shared with the host build.
//
// Launch shape: one thread per 2x2 output window, over ceil(H/2) x ceil(W/2) windows per plane.
// The kernel is memory-bound (per window it reads 4 prepool values and 1 decoder value and writes
// 4 outputs, about 9 elements for a handful of compares), so what matters is touching each byte
// once, in full transactions, with few instructions per byte:
//  * Each prepool element is read exactly once. The alternative, one thread per output element,
//    makes the 4 threads of a window each re-read the whole window (4x the load requests, served by
//    L1/L2 but still load/store-unit work) and repeat the same argmax four times.
//  * Consecutive threads take consecutive windows of a row, so a warp covers 64 consecutive
//    elements of two rows (where W >= 64; narrower planes continue in the next row pair, still
//    with no gaps): each row is one contiguous 256-byte (FP32) or 128-byte (FP16) segment,
//    read with one 2-element vector load per thread (float2 / half2) when W is even, and written
//    back the same way. The decoder read (32 consecutive elements per warp) is coalesced too.
//  * Every thread has three independent loads in flight before its first compare, which hides
//    DRAM latency without needing more threads; N*C*ceil(H/2)*ceil(W/2) threads (84k for SegNet's
//    smallest 512x22x30 layer, 2.8M for the largest) fill any Jetson or desktop GPU.
// An odd W breaks the 2-element alignment of rows, so that case (and any misaligned buffer) runs
// the scalar variant. Each thread's body is unpoolWindowAt() from unpool_kernel.cuh, which the
// host reference (unpool_host.cpp) runs over the same window indices.
#include "unpool_kernel.cuh"
#include "unpool_kernel.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdint.h>

namespace edgeseg
{
namespace
{

constexpr int kThreadsPerBlock = 256;

template <typename T>
struct Vec2Of;

template <>
struct Vec2Of<float>
{
    using type = float2;
};

template <>
struct Vec2Of<__half>
{
    using type = __half2;
};

// Grid-stride loop over the windows; each iteration is unpoolWindowAt(), the body the host
// reference runs too. kPaired: float2 / __half2 loads and stores (see unpoolCanPair()).
template <typename T, bool kPaired, typename Index>
__global__ void __launch_bounds__(kThreadsPerBlock) unpoolKernel(T const* __restrict__ decoder,
    T const* __restrict__ prepool, T* __restrict__ out, int h, int w, Index totalWindows)
{
    Index const stride = static_cast<Index>(gridDim.x) * blockDim.x;
    for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < totalWindows; i += stride)
    {
        unpoolWindowAt<T, kPaired, typename Vec2Of<T>::type, Index>(decoder, prepool, out, h, w, i);
    }
}

template <typename T, bool kPaired, typename Index>
cudaError_t launchTyped(
    void const* decoder, void const* prepool, void* out, int h, int w, int64_t windows, cudaStream_t stream)
{
    int64_t blocks = (windows + kThreadsPerBlock - 1) / kThreadsPerBlock;
    // The grid-stride loop covers whatever a capped grid leaves.
    int64_t const maxBlocks = 0x7fffffff;
    if (blocks > maxBlocks)
    {
        blocks = maxBlocks;
    }
    T const* decoderT = static_cast<T const*>(decoder);
    T const* prepoolT = static_cast<T const*>(prepool);
    T* outT = static_cast<T*>(out);
    Index total = static_cast<Index>(windows);
    void* args[] = {&decoderT, &prepoolT, &outT, &h, &w, &total};
    // The launch's own status, from cudaLaunchKernel's return value. Reading cudaGetLastError()
    // after a <<<>>> launch would instead report (and reset) whatever error an earlier, unrelated
    // runtime call of this thread left behind, blaming the plugin and hiding it from its owner.
    // A sticky error of an earlier asynchronous launch is still returned: the context is lost.
    cudaError_t const before = cudaPeekAtLastError();
    cudaError_t const status = cudaLaunchKernel(reinterpret_cast<void const*>(&unpoolKernel<T, kPaired, Index>),
        dim3(static_cast<unsigned int>(blocks)), dim3(kThreadsPerBlock), args, 0, stream);
    if (status != cudaSuccess && before == cudaSuccess)
    {
        // Our own failure, reported through the return value: take it back out of the thread's
        // last-error slot so the next caller of cudaGetLastError() does not see it a second time.
        // An error that was already there stays for its owner.
        static_cast<void>(cudaGetLastError());
    }
    return status;
}

template <typename T>
cudaError_t launch(void const* decoder, void const* prepool, void* out, int h, int w, int64_t planes,
    cudaStream_t stream)
{
    int64_t const windows = unpoolWindowCount(planes, h, w);
    bool const paired = unpoolCanPair(prepool, out, w, sizeof(T));
    // Below 2^31, i + stride stays below 2^32 in the 32-bit loop.
    bool const small = windows < (int64_t{1} << 31);
    if (paired)
    {
        return small ? launchTyped<T, true, uint32_t>(decoder, prepool, out, h, w, windows, stream)
                     : launchTyped<T, true, uint64_t>(decoder, prepool, out, h, w, windows, stream);
    }
    return small ? launchTyped<T, false, uint32_t>(decoder, prepool, out, h, w, windows, stream)
                 : launchTyped<T, false, uint64_t>(decoder, prepool, out, h, w, windows, stream);
}

} // namespace
} // namespace edgeseg

extern "C" EDGESEG_UNPOOL_API int edgeseg_unpool_forward(void const* decoder, void const* prepool, void* out,
    int n, int c, int h, int w, int dtype, void* stream)
{
    if (n < 0 || c < 0 || h < 0 || w < 0)
    {
        return EDGESEG_UNPOOL_BAD_ARGUMENT;
    }
    int64_t const planes = static_cast<int64_t>(n) * c;
    if (planes == 0 || h == 0 || w == 0)
    {
        return EDGESEG_UNPOOL_OK;
    }
    // The decoder may be empty (h or w below 2) and then its pointer may be null.
    bool const decoderEmpty = h < 2 || w < 2;
    if (prepool == nullptr || out == nullptr || (decoder == nullptr && !decoderEmpty))
    {
        return EDGESEG_UNPOOL_BAD_ARGUMENT;
    }
    cudaStream_t const s = static_cast<cudaStream_t>(stream);
    cudaError_t status;
    switch (dtype)
    {
    case EDGESEG_UNPOOL_FLOAT32: status = edgeseg::launch<float>(decoder, prepool, out, h, w, planes, s); break;
    case EDGESEG_UNPOOL_FLOAT16: status = edgeseg::launch<__half>(decoder, prepool, out, h, w, planes, s); break;
    default: return EDGESEG_UNPOOL_BAD_DTYPE;
    }
    return static_cast<int>(status);
}

extern "C" EDGESEG_UNPOOL_API char const* edgeseg_unpool_status_string(int status)
{
    switch (status)
    {
    case EDGESEG_UNPOOL_OK: return "ok";
    case EDGESEG_UNPOOL_BAD_ARGUMENT: return "bad argument (negative size or null buffer)";
    case EDGESEG_UNPOOL_BAD_DTYPE: return "unsupported dtype (0 = float32, 1 = float16)";
    default: return cudaGetErrorString(static_cast<cudaError_t>(status));
    }
}
