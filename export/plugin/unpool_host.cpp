// Host build of the unpooling: the kernel's own per-thread body (unpoolWindowAt() in
// unpool_kernel.cuh), looped over every window index on the CPU, so machines without a GPU test
// the exact logic each GPU thread runs, paired and scalar paths both.
// Compiles with a plain C++ compiler (g++ -O2 -shared -fPIC) and, as host code, with nvcc.
#include "unpool_kernel.cuh"
#include "unpool_kernel.h"

#include <stdint.h>

extern "C" EDGESEG_UNPOOL_API int edgeseg_unpool_host_f32(
    float const* decoder, float const* prepool, float* out, int n, int c, int h, int w)
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
    if (prepool == nullptr || out == nullptr || (decoder == nullptr && h >= 2 && w >= 2))
    {
        return EDGESEG_UNPOOL_BAD_ARGUMENT;
    }
    // The same choices as the CUDA launch (unpool_kernel.cu): paired or scalar path, 32- or
    // 64-bit window index; then every window index a GPU thread would take, in order.
    int64_t const windows = edgeseg::unpoolWindowCount(planes, h, w);
    bool const paired = edgeseg::unpoolCanPair(prepool, out, w, sizeof(float));
    using Pair = edgeseg::UnpoolPair<float>;
    if (windows < (int64_t{1} << 31))
    {
        for (uint32_t i = 0; i < static_cast<uint32_t>(windows); ++i)
        {
            if (paired)
            {
                edgeseg::unpoolWindowAt<float, true, Pair, uint32_t>(decoder, prepool, out, h, w, i);
            }
            else
            {
                edgeseg::unpoolWindowAt<float, false, Pair, uint32_t>(decoder, prepool, out, h, w, i);
            }
        }
    }
    else
    {
        for (uint64_t i = 0; i < static_cast<uint64_t>(windows); ++i)
        {
            if (paired)
            {
                edgeseg::unpoolWindowAt<float, true, Pair, uint64_t>(decoder, prepool, out, h, w, i);
            }
            else
            {
                edgeseg::unpoolWindowAt<float, false, Pair, uint64_t>(decoder, prepool, out, h, w, i);
            }
        }
    }
    return EDGESEG_UNPOOL_OK;
}
