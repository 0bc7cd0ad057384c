// The CUDA device API as our kernels use it, for kernels/*.cu compiled by g++ for the emulated device.
// Force-included (g++ -include) before each module; the kernels themselves are compiled unchanged.
// How it maps onto the emulator (tests/EmulatedDevice/README.md, "How kernels run"):
//   - every CUDA thread is a fiber; threadIdx & co. are read from the top of the fiber's own stack;
//   - a block's fibers all run on one OS thread at a time, so __shared__ = thread_local is per block;
//   - __syncthreads and the warp operations are calls into the runtime, which switches fibers;
//   - atomics are std::atomic_ref (blocks may run in parallel on several OS threads).
// Provide exactly what the kernels use; a kernel needing more fails to compile here, which is the signal to add it.
#pragma once

#include <math.h> // the C library's math functions, with C++ overloads in the global namespace (expf, fma, ...)
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "emu_abi.h"

namespace dicc_emu
{
template <typename T>
__attribute__((always_inline)) inline T shuffle(WarpOp op, unsigned mask, T value, int arg, int width)
{
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "CUDA shuffles values of up to 8 bytes");
    unsigned long long bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    bits = warp_op(op, mask, bits, arg, width);
    T result;
    std::memcpy(&result, &bits, sizeof(T));
    return result;
}

template <typename T>
__attribute__((always_inline)) inline std::atomic_ref<T> atomic_at(T* address)
{
    // A misaligned atomic is an error on the GPU; atomic_ref would silently tear.
    if ((uintptr_t)address % std::atomic_ref<T>::required_alignment) trap("misaligned atomic operation", address);
    return std::atomic_ref<T>(*address);
}

template <typename T>
__attribute__((always_inline)) inline T atomic_min(T* address, T value)
{
    auto a = atomic_at(address);
    T old = a.load(std::memory_order_relaxed);
    while (value < old && !a.compare_exchange_weak(old, value, std::memory_order_relaxed)) {}
    return old;
}

template <typename T>
__attribute__((always_inline)) inline T atomic_max(T* address, T value)
{
    auto a = atomic_at(address);
    T old = a.load(std::memory_order_relaxed);
    while (value > old && !a.compare_exchange_weak(old, value, std::memory_order_relaxed)) {}
    return old;
}
} // namespace dicc_emu

// ---- qualifiers ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
// Block-scope thread_local is static storage per OS thread, and one OS thread runs a block at a time: per-block
// storage. "extern __shared__ T name[]" (dynamic shared memory) becomes an undefined TLS symbol that build.sh
// defines per module with the device's largest dynamic size (README.md, "Shared memory").
#define __shared__ thread_local
// __restrict__ is a g++ keyword already.

// ---- built-in variables ----
#define threadIdx (::dicc_emu::self()->thread_idx)
#define blockIdx (::dicc_emu::self()->block_idx)
#define blockDim (::dicc_emu::self()->block_dim)
#define gridDim (::dicc_emu::self()->grid_dim)
constexpr int warpSize = 32;

// ---- vector types ----
struct alignas(16) uint4
{
    unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

// ---- synchronisation ----
inline void __syncthreads() { ::dicc_emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::dicc_emu::warp_op(::dicc_emu::kSyncWarp, mask, 0, 0, 32); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_signal_fence(std::memory_order_seq_cst); }
[[noreturn]] inline void __trap() { ::dicc_emu::trap("__trap()", nullptr); }

// ---- warp operations (CUDA Programming Guide, "Warp Shuffle Functions", "Warp Vote Functions") ----
template <typename T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32)
{
    return ::dicc_emu::shuffle(::dicc_emu::kShflIdx, mask, var, src_lane, width);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32)
{
    return ::dicc_emu::shuffle(::dicc_emu::kShflUp, mask, var, (int)delta, width);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32)
{
    return ::dicc_emu::shuffle(::dicc_emu::kShflDown, mask, var, (int)delta, width);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32)
{
    return ::dicc_emu::shuffle(::dicc_emu::kShflXor, mask, var, lane_mask, width);
}
inline unsigned __ballot_sync(unsigned mask, int predicate)
{
    return (unsigned)::dicc_emu::warp_op(::dicc_emu::kBallot, mask, predicate != 0, 0, 32);
}
inline int __all_sync(unsigned mask, int predicate) { return (int)::dicc_emu::warp_op(::dicc_emu::kAll, mask, predicate != 0, 0, 32); }
inline int __any_sync(unsigned mask, int predicate) { return (int)::dicc_emu::warp_op(::dicc_emu::kAny, mask, predicate != 0, 0, 32); }

// ---- integer intrinsics ----
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b)
{
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }

// ---- bit casts ----
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }

// ---- IEEE operations with round-to-nearest: plain operations (built with -ffp-contract=off, SSE2 arithmetic) ----
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __double2float_rn(double a) { return (float)a; }

// ---- atomics (relaxed, as on the GPU) ----
inline int atomicAdd(int* p, int v) { return ::dicc_emu::atomic_at(p).fetch_add(v, std::memory_order_relaxed); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return ::dicc_emu::atomic_at(p).fetch_add(v, std::memory_order_relaxed); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v)
{
    return ::dicc_emu::atomic_at(p).fetch_add(v, std::memory_order_relaxed);
}
inline float atomicAdd(float* p, float v) { return ::dicc_emu::atomic_at(p).fetch_add(v, std::memory_order_relaxed); }
inline double atomicAdd(double* p, double v) { return ::dicc_emu::atomic_at(p).fetch_add(v, std::memory_order_relaxed); }
inline int atomicMin(int* p, int v) { return ::dicc_emu::atomic_min(p, v); }
inline unsigned atomicMin(unsigned* p, unsigned v) { return ::dicc_emu::atomic_min(p, v); }
inline long long atomicMin(long long* p, long long v) { return ::dicc_emu::atomic_min(p, v); }
inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) { return ::dicc_emu::atomic_min(p, v); }
inline int atomicMax(int* p, int v) { return ::dicc_emu::atomic_max(p, v); }
inline unsigned atomicMax(unsigned* p, unsigned v) { return ::dicc_emu::atomic_max(p, v); }
inline long long atomicMax(long long* p, long long v) { return ::dicc_emu::atomic_max(p, v); }
inline unsigned long long atomicMax(unsigned long long* p, unsigned long long v) { return ::dicc_emu::atomic_max(p, v); }
inline int atomicExch(int* p, int v) { return ::dicc_emu::atomic_at(p).exchange(v, std::memory_order_relaxed); }
inline int atomicCAS(int* p, int expected, int desired)
{
    ::dicc_emu::atomic_at(p).compare_exchange_strong(expected, desired, std::memory_order_relaxed);
    return expected;
}
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long expected, unsigned long long desired)
{
    ::dicc_emu::atomic_at(p).compare_exchange_strong(expected, desired, std::memory_order_relaxed);
    return expected;
}
