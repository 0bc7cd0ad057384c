// The contract between kernels compiled for the emulated device (emu_device.h) and the runtime (runtime.cpp):
// where a CUDA thread finds its coordinates, and the runtime calls that kernels make. README.md, "How kernels run".
#pragma once

#include <cstdint>

namespace dicc_emu
{
struct uint3
{
    unsigned x, y, z;
};

// CUDA's dim3 as kernels see it (read only).
struct dim3
{
    unsigned x, y, z;
};

// What a CUDA thread knows about its place in the launch. The runtime writes it at a fixed offset from the
// top of the thread's fiber stack; stacks are aligned to their size, so the stack pointer finds it.
struct ThreadInfo
{
    uint3 thread_idx;
    uint3 block_idx;
    dim3 block_dim;
    dim3 grid_dim;
};

constexpr uintptr_t kFiberStackBytes = 64 * 1024;  // a power of two; the runtime aligns each fiber stack to it
constexpr uintptr_t kFiberTopBytes = 256;          // reserved at the top of each stack: ThreadInfo, then the runtime's fiber record

__attribute__((always_inline)) inline const ThreadInfo* self()
{
    uintptr_t sp;
#if defined(__x86_64__)
    asm("mov %%rsp, %0" : "=r"(sp)); // not volatile: within one function the value never changes
#else
    sp = (uintptr_t)__builtin_frame_address(0);
#endif
    return (const ThreadInfo*)((sp & ~(kFiberStackBytes - 1)) + kFiberStackBytes - kFiberTopBytes);
}

// ---- runtime entry points (runtime.cpp) ----
enum WarpOp : int
{
    kShflIdx,
    kShflUp,
    kShflDown,
    kShflXor,
    kBallot,
    kAll,
    kAny,
    kSyncWarp,
};
void syncthreads();
unsigned long long warp_op(WarpOp op, unsigned mask, unsigned long long value, int arg, int width);
[[noreturn]] void trap(const char* what, const void* address);
} // namespace dicc_emu
