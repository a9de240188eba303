// SegNet max-unpooling without an index tensor: the index logic, shared by host and device.
//
// PyTorch's max_unpool2d(decoder, indices, 2, 2, output_size=(H, W)), with indices from
// max_pool2d(prepool, 2, 2, return_indices=True), puts decoder[n, c, py, px] at the position of
// the first maximum of the 2x2 window (py, px) of prepool and 0 elsewhere. This header recomputes
// that position from prepool itself, so TensorRT never carries an index tensor.
//
// The functions here are plain inline templates marked __host__ __device__ when a CUDA compiler
// reads the header, and plain C++ otherwise. unpoolWindowAt() is the whole per-thread body of the
// CUDA kernel (flat window index -> plane and window, argmax, loads and stores, both the paired
// and the scalar path); unpool_kernel.cu calls it from a grid-stride loop, unpool_host.cpp from a
// plain loop over the same indices, so CI (no GPU) tests what every GPU thread runs. Only the
// launch and the device's 2-element vector types (float2 / __half2, for Pair) stay device-only.
//
// No TensorRT type appears here, nor in the C entry points (unpool_kernel.h).
#ifndef EDGESEG_UNPOOL_KERNEL_CUH
#define EDGESEG_UNPOOL_KERNEL_CUH

#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define EDGESEG_HD __host__ __device__ __forceinline__
#include <cuda_fp16.h>
#else
#define EDGESEG_HD inline
#endif

namespace edgeseg
{

// Comparisons happen in float: half -> float is exact, so the order (and NaN-ness) of two
// values is the same as in the original type; PyTorch also compares in its accumulate type.
template <typename T>
EDGESEG_HD float unpoolToFloat(T v)
{
    return static_cast<float>(v);
}

template <typename T>
EDGESEG_HD T unpoolZero()
{
    return static_cast<T>(0.0f);
}

#if defined(__CUDACC__)
template <>
EDGESEG_HD float unpoolToFloat<__half>(__half v)
{
    return __half2float(v);
}

template <>
EDGESEG_HD __half unpoolZero<__half>()
{
    return __float2half(0.0f);
}
#endif

// Position (0..3, row-major: 0 = top-left, 1 = top-right, 2 = bottom-left, 3 = bottom-right) of
// the maximum PyTorch's max_pool2d reports for a 2x2 window with values v0..v3.
//
// PyTorch's CPU and CUDA max_pool2d kernels scan the window row-major and take a value as the new
// maximum when `val > maxval || isnan(val)`. Hence: ties keep the earliest position (strict >),
// a NaN always wins over a number, and among several NaNs the last one wins. Starting from v0 is
// the same as PyTorch's start at -inf with index 0: v0 either replaces -inf or is -inf itself.
// `x != x` is the NaN test; it stays correct because nothing here is built with fast-math.
EDGESEG_HD int unpoolWindowArgmax(float v0, float v1, float v2, float v3)
{
    int best = 0;
    float maxval = v0;
    if (v1 > maxval || v1 != v1)
    {
        best = 1;
        maxval = v1;
    }
    if (v2 > maxval || v2 != v2)
    {
        best = 2;
        maxval = v2;
    }
    if (v3 > maxval || v3 != v3)
    {
        best = 3;
    }
    return best;
}

// The four output values of one full window: the decoder value at the argmax position of the
// prepool values p00, p01 (top row) and p10, p11 (bottom row), zero at the other three.
template <typename T>
EDGESEG_HD void unpoolWindowValues(
    T p00, T p01, T p10, T p11, T value, T& o00, T& o01, T& o10, T& o11)
{
    int const best
        = unpoolWindowArgmax(unpoolToFloat(p00), unpoolToFloat(p01), unpoolToFloat(p10), unpoolToFloat(p11));
    T const zero = unpoolZero<T>();
    o00 = best == 0 ? value : zero;
    o01 = best == 1 ? value : zero;
    o10 = best == 2 ? value : zero;
    o11 = best == 3 ? value : zero;
}

// Writes output window (wy, wx) of one (n, c) plane with plain scalar loads and stores.
//
// planePre / planeOut point at the plane's first element of prepool / out (h x w, row-major),
// planeDec at the decoder plane (h / 2 x w / 2). Windows are indexed over ceil(h / 2) x
// ceil(w / 2): window (wy, wx) owns output rows 2wy, 2wy+1 and columns 2wx, 2wx+1 that lie inside
// the plane. A window with wy == h / 2 or wx == w / 2 exists only for an odd h or w; max_pool2d
// (floor mode) dropped that last row or column, so its outputs are 0. Every output element
// belongs to exactly one window, so one call per window writes the whole output once.
template <typename T>
EDGESEG_HD void unpoolWindowScalar(
    T const* planeDec, T const* planePre, T* planeOut, int h, int w, int wy, int wx)
{
    int const ph = h / 2;
    int const pw = w / 2;
    int64_t const row0 = static_cast<int64_t>(2 * wy) * w + 2 * wx;
    if (wy < ph && wx < pw)
    {
        int64_t const row1 = row0 + w;
        T o00, o01, o10, o11;
        unpoolWindowValues<T>(planePre[row0], planePre[row0 + 1], planePre[row1], planePre[row1 + 1],
            planeDec[static_cast<int64_t>(wy) * pw + wx], o00, o01, o10, o11);
        planeOut[row0] = o00;
        planeOut[row0 + 1] = o01;
        planeOut[row1] = o10;
        planeOut[row1 + 1] = o11;
        return;
    }
    // A border window left over by floor-mode pooling: zero every element of it inside the plane.
    T const zero = unpoolZero<T>();
    bool const hasCol1 = 2 * wx + 1 < w;
    planeOut[row0] = zero;
    if (hasCol1)
    {
        planeOut[row0 + 1] = zero;
    }
    if (2 * wy + 1 < h)
    {
        planeOut[row0 + w] = zero;
        if (hasCol1)
        {
            planeOut[row0 + w + 1] = zero;
        }
    }
}

// Two adjacent elements, for the host's paired path; the device uses float2 / __half2 instead.
template <typename T>
struct alignas(2 * sizeof(T)) UnpoolPair
{
    T x;
    T y;
};

// 2-element loads and stores at a 2-element-aligned address. On the device one vector instruction;
// on the host memcpy, the aliasing-safe spelling of the same access.
template <typename Pair, typename T>
EDGESEG_HD Pair unpoolLoadPair(T const* p)
{
#if defined(__CUDA_ARCH__)
    return *reinterpret_cast<Pair const*>(p);
#else
    Pair v;
    memcpy(&v, p, sizeof(Pair));
    return v;
#endif
}

template <typename Pair, typename T>
EDGESEG_HD void unpoolStorePair(T* p, T a, T b)
{
    Pair v;
    v.x = a;
    v.y = b;
#if defined(__CUDA_ARCH__)
    *reinterpret_cast<Pair*>(p) = v;
#else
    memcpy(p, &v, sizeof(Pair));
#endif
}

// The paired variant of unpoolWindowScalar(): each of the window's two rows is one 2-element load
// and one 2-element store. Requires an even w (so no window lacks a column) and planePre /
// planeOut aligned to two elements. A window with wy == h / 2 (odd h) zeroes the last row.
template <typename T, typename Pair>
EDGESEG_HD void unpoolWindowPaired(T const* planeDec, T const* planePre, T* planeOut, int h, int w, int wy, int wx)
{
    int64_t const row0 = static_cast<int64_t>(2 * wy) * w + 2 * wx;
    if (wy < h / 2)
    {
        Pair const top = unpoolLoadPair<Pair>(planePre + row0);
        Pair const bottom = unpoolLoadPair<Pair>(planePre + row0 + w);
        T const value = planeDec[static_cast<int64_t>(wy) * (w / 2) + wx];
        T o00, o01, o10, o11;
        unpoolWindowValues<T>(top.x, top.y, bottom.x, bottom.y, value, o00, o01, o10, o11);
        unpoolStorePair<Pair>(planeOut + row0, o00, o01);
        unpoolStorePair<Pair>(planeOut + row0 + w, o10, o11);
    }
    else
    {
        T const zero = unpoolZero<T>();
        unpoolStorePair<Pair>(planeOut + row0, zero, zero);
    }
}

// Whether the paired path applies: even w and both pre-pool and output buffers aligned to two
// elements (every plane and row then starts aligned too, as h * w and w are even).
EDGESEG_HD bool unpoolCanPair(void const* prepool, void const* out, int w, unsigned elementSize)
{
    uintptr_t const align = 2u * elementSize;
    return w % 2 == 0 && reinterpret_cast<uintptr_t>(prepool) % align == 0
        && reinterpret_cast<uintptr_t>(out) % align == 0;
}

// Number of windows over all planes: planes * ceil(h / 2) * ceil(w / 2). One per GPU thread.
EDGESEG_HD int64_t unpoolWindowCount(int64_t planes, int h, int w)
{
    return planes * ((h + 1) / 2) * static_cast<int64_t>((w + 1) / 2);
}

// The per-thread body of the kernel: window i of the flat range [0, unpoolWindowCount()), ordered
// plane-major, then window row, then window column (so consecutive i are neighbours in a row).
// Index is uint32_t when the window count is below 2^31 (32-bit division is several times cheaper
// than 64-bit on a GPU), else uint64_t.
template <typename T, bool kPaired, typename Pair, typename Index>
EDGESEG_HD void unpoolWindowAt(T const* decoder, T const* prepool, T* out, int h, int w, Index i)
{
    Index const windowsPerRow = static_cast<Index>((w + 1) / 2);
    Index const windowsPerPlane = static_cast<Index>((h + 1) / 2) * windowsPerRow;
    Index const plane = i / windowsPerPlane;
    Index const inPlane = i - plane * windowsPerPlane;
    int const wy = static_cast<int>(inPlane / windowsPerRow);
    int const wx = static_cast<int>(inPlane - static_cast<Index>(wy) * windowsPerRow);
    int64_t const planeSize = static_cast<int64_t>(h) * w;
    int64_t const decPlaneSize = static_cast<int64_t>(h / 2) * (w / 2);
    T const* planeDec = decoder + static_cast<int64_t>(plane) * decPlaneSize;
    T const* planePre = prepool + static_cast<int64_t>(plane) * planeSize;
    T* planeOut = out + static_cast<int64_t>(plane) * planeSize;
    if constexpr (kPaired)
    {
        unpoolWindowPaired<T, Pair>(planeDec, planePre, planeOut, h, w, wy, wx);
    }
    else
    {
        unpoolWindowScalar<T>(planeDec, planePre, planeOut, h, w, wy, wx);
    }
}

} // namespace edgeseg

#endif // EDGESEG_UNPOOL_KERNEL_CUH
