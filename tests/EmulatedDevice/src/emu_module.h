// What an emulated module tells the runtime: its kernels, each with a trampoline that unpacks cuLaunchKernel's
// void** argument array into the kernel's own parameter types, deduced from the kernel's signature. Included
// by the per-module source that build.sh generates after the module's kernels (README.md, "Modules").
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

namespace dicc_emu
{
// sm_80's largest dynamic shared memory per block (163 KiB, with the opt-in attribute).
constexpr size_t kDynamicSharedOptinBytes = 166912;
// CUDA's limit on a kernel's parameter space.
constexpr size_t kMaxArgumentBytes = 4096;

struct KernelEntry
{
    const char* name;
    int param_count;
    size_t args_bytes;                                   // the packed arguments
    void (*pack)(void* const* params, void* packed);     // copy the launch's arguments (params[i] points to argument i)
    void (*invoke)(const void* packed);                  // call the kernel with them (on a fiber)
};

struct ModuleEntry
{
    const char* file;                    // "bias.cu"
    const KernelEntry* kernels;
    int kernel_count;
    unsigned char* (*dynamic_shared)();  // returns this OS thread's dynamic shared memory (kDynamicSharedOptinBytes), or null
};

// Called by each module's constructor when the library is loaded.
void register_module(const ModuleEntry* module);

template <typename F, F f>
struct Kernel;

template <typename... A, void (*f)(A...)>
struct Kernel<void (*)(A...), f>
{
    using Args = std::tuple<std::remove_cv_t<A>...>;
    static constexpr int param_count = (int)sizeof...(A);
    static_assert(sizeof(Args) <= kMaxArgumentBytes, "kernel parameters exceed CUDA's 4 KiB");
    static_assert((std::is_trivially_copyable_v<std::remove_cv_t<A>> && ...), "kernel parameters must be trivially copyable");

    static void pack(void* const* params, void* packed) { pack_each(params, packed, std::index_sequence_for<A...>{}); }

    static void invoke(const void* packed) { std::apply(f, *static_cast<const Args*>(packed)); }

private:
    template <size_t... I>
    static void pack_each(void* const* params, void* packed, std::index_sequence<I...>)
    {
        Args* args = new (packed) Args();
        // memcpy: the caller's argument copies need not be aligned for their type.
        (std::memcpy(&std::get<I>(*args), params[I], sizeof(std::tuple_element_t<I, Args>)), ...);
    }
};
} // namespace dicc_emu

#define DICC_EMU_KERNEL_TRAITS(name) ::dicc_emu::Kernel<decltype(&name), &name>
#define DICC_EMU_KERNEL(name)                                                                                  \
    ::dicc_emu::KernelEntry{#name, DICC_EMU_KERNEL_TRAITS(name)::param_count, sizeof(DICC_EMU_KERNEL_TRAITS(name)::Args), \
                            &DICC_EMU_KERNEL_TRAITS(name)::pack, &DICC_EMU_KERNEL_TRAITS(name)::invoke},
