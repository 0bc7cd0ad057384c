// Between the fake driver (driver.cpp) and the kernel runtime (runtime.cpp). README.md describes both.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cuda_api.h"
#include "emu_abi.h"
#include "emu_module.h"

namespace dicc_emu
{
enum class Schedule
{
    Forward, // each block's threads run in threadIdx order, each until it blocks
    Reverse, // the other way round
    Random,  // a random order per block, from DICC_EMU_SEED
};

struct Options
{
    int workers = 0;           // OS threads running blocks (0: min(cores, 8)); DICC_EMU_WORKERS
    int watchdog_ms = 10000;   // a launch running longer fails (0: never); DICC_EMU_WATCHDOG_MS
    Schedule schedule = Schedule::Forward; // DICC_EMU_SCHEDULE=forward|reverse|random
    unsigned long long seed = 1;            // DICC_EMU_SEED, for the random schedule
    bool quiet = false;        // DICC_EMU_QUIET=1: failures are not echoed to stderr
};

// Applies options; workers are (re)started lazily by the next launch.
void configure(const Options& options);
const Options& options();

struct LaunchRequest
{
    const KernelEntry* kernel;
    const ModuleEntry* module;
    dim3 grid, block;
    unsigned shared_bytes;
    void* const* params;          // cuLaunchKernel's kernelParams, or
    const void* packed = nullptr; // arguments already packed by kernel->pack (a captured launch replayed)
};

// Runs a launch to completion (or failure) and returns a CUresult; *message is set on failure.
CUresult launch(const LaunchRequest& request, std::string* message);

// Every module linked into the library, in registration order.
const std::vector<const ModuleEntry*>& modules();

// From driver.cpp: what a device address is, relative to the nearest allocation (for fault messages).
std::string describe_device_address(uintptr_t address, size_t bytes);

// Installs the fault and watchdog signal handlers (once); they chain to the previous handlers for any fault
// that is not an emulated kernel's.
void install_signal_handlers();
} // namespace dicc_emu
