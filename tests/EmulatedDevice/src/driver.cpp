// The fake CUDA driver (README.md): the driver API functions the engine binds, over host memory. Device
// memory is host memory with guard pages; streams run their work at once, in issue order; events time with a
// host clock; modules are recognised by their kernel names and bound to the kernels compiled into this library.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "emu_runtime.h"

namespace dicc_emu
{
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
}

using dicc_emu::format;

struct DiccEmuContext
{
    int device;
};
// Work recorded by stream capture, replayed in order by cuGraphLaunch (each step returns a CUresult).
using DiccEmuWork = std::vector<std::function<CUresult()>>;

struct DiccEmuStream
{
    unsigned flags;
    int capture = 0; // CU_STREAM_CAPTURE_STATUS_*: 0 none, 1 active, 2 invalidated
    std::shared_ptr<DiccEmuWork> captured;
};
struct DiccEmuGraph
{
    std::shared_ptr<DiccEmuWork> work;
};
struct DiccEmuGraphExec
{
    std::shared_ptr<DiccEmuWork> work;
};
struct DiccEmuEvent
{
    unsigned flags;
    bool recorded = false;
    std::chrono::steady_clock::time_point when{};
};
struct DiccEmuFunction
{
    const dicc_emu::KernelEntry* kernel;
    struct DiccEmuModule* module;
    int max_dynamic_shared;
};
struct DiccEmuModule
{
    const dicc_emu::ModuleEntry* entry;
    std::vector<DiccEmuFunction*> functions;
};

namespace
{
constexpr const char* kDeviceName = "Dicc emulated device";
constexpr size_t kTotalMemory = 16ull << 30;      // what the device reports; allocations beyond it fail
constexpr int kDefaultDynamicShared = 48 * 1024;  // without cuFuncSetAttribute, as on a GPU
constexpr int kDriverVersion = 12060;             // CUDA 12.6: the cuda.h CudaDriver.cs was checked against
constexpr unsigned char kGapCanary = 0xA5;        // fills the bytes between an allocation and its guard pages
constexpr size_t kQuarantineLimit = 4096;         // freed allocations kept inaccessible (use after free faults)

struct Allocation
{
    uintptr_t user = 0;   // what cuMemAlloc returned
    size_t size = 0;      // what was asked for
    size_t rounded = 0;   // size rounded up to the alignment; user + rounded is the start of the guard page after it
    uintptr_t map = 0;    // the mapping: a guard page, the data pages, a guard page
    size_t map_bytes = 0;
    unsigned long long serial = 0;
};

struct Driver
{
    std::mutex m; // everything below except what has its own lock
    bool initialized = false;
    int primary_retains = 0;
    DiccEmuContext primary{0};
    std::set<DiccEmuStream*> streams;
    std::set<DiccEmuEvent*> events;
    std::set<DiccEmuModule*> loaded;
    std::set<DiccEmuFunction*> functions;
    std::set<DiccEmuGraph*> graphs;
    std::set<DiccEmuGraphExec*> execs;
    std::set<void*> host;
    std::map<std::string, std::pair<unsigned long long, double>> profile; // kernel -> launches, seconds
    bool profiling = false;
    int fill = 0xFF;    // fresh device memory; -1: none (zero pages)
    size_t align = 16;  // allocation start alignment and size rounding: 16 (default) or 256 (CUDA's guarantee)

    std::mutex memory; // allocations (taken by fault reports from worker threads: never held during a launch)
    std::map<uintptr_t, Allocation> live;
    std::deque<Allocation> quarantine;
    size_t allocated = 0;
    unsigned long long next_serial = 1;

    std::mutex errors;
    std::map<CUresult, const char*> detail; // the last detailed message per status
    const char* last = "";
};

Driver& driver()
{
    static Driver* d = new Driver; // never destroyed: worker threads may report during exit
    return *d;
}

size_t page_size()
{
    static const size_t p = (size_t)sysconf(_SC_PAGESIZE);
    return p;
}

thread_local CUcontext t_current = nullptr;

const char* status_name(CUresult s)
{
    switch (s)
    {
    case CUDA_SUCCESS: return "CUDA_SUCCESS";
    case CUDA_ERROR_INVALID_VALUE: return "CUDA_ERROR_INVALID_VALUE";
    case CUDA_ERROR_OUT_OF_MEMORY: return "CUDA_ERROR_OUT_OF_MEMORY";
    case CUDA_ERROR_NOT_INITIALIZED: return "CUDA_ERROR_NOT_INITIALIZED";
    case CUDA_ERROR_INVALID_DEVICE: return "CUDA_ERROR_INVALID_DEVICE";
    case CUDA_ERROR_INVALID_IMAGE: return "CUDA_ERROR_INVALID_IMAGE";
    case CUDA_ERROR_INVALID_CONTEXT: return "CUDA_ERROR_INVALID_CONTEXT";
    case CUDA_ERROR_INVALID_HANDLE: return "CUDA_ERROR_INVALID_HANDLE";
    case CUDA_ERROR_ILLEGAL_STATE: return "CUDA_ERROR_ILLEGAL_STATE";
    case CUDA_ERROR_NOT_FOUND: return "CUDA_ERROR_NOT_FOUND";
    case CUDA_ERROR_NOT_READY: return "CUDA_ERROR_NOT_READY";
    case CUDA_ERROR_ILLEGAL_ADDRESS: return "CUDA_ERROR_ILLEGAL_ADDRESS";
    case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
    case CUDA_ERROR_LAUNCH_TIMEOUT: return "CUDA_ERROR_LAUNCH_TIMEOUT";
    case CUDA_ERROR_HARDWARE_STACK_ERROR: return "CUDA_ERROR_HARDWARE_STACK_ERROR";
    case CUDA_ERROR_ILLEGAL_INSTRUCTION: return "CUDA_ERROR_ILLEGAL_INSTRUCTION";
    case CUDA_ERROR_MISALIGNED_ADDRESS: return "CUDA_ERROR_MISALIGNED_ADDRESS";
    case CUDA_ERROR_LAUNCH_FAILED: return "CUDA_ERROR_LAUNCH_FAILED";
    case CUDA_ERROR_NOT_SUPPORTED: return "CUDA_ERROR_NOT_SUPPORTED";
    case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED: return "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED";
    case CUDA_ERROR_STREAM_CAPTURE_INVALIDATED: return "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED";
    case CUDA_ERROR_UNKNOWN: return "CUDA_ERROR_UNKNOWN";
    }
    return nullptr;
}

const char* status_text(CUresult s)
{
    switch (s)
    {
    case CUDA_SUCCESS: return "no error";
    case CUDA_ERROR_INVALID_VALUE: return "invalid argument";
    case CUDA_ERROR_OUT_OF_MEMORY: return "out of memory";
    case CUDA_ERROR_NOT_INITIALIZED: return "initialization error";
    case CUDA_ERROR_INVALID_DEVICE: return "invalid device ordinal";
    case CUDA_ERROR_INVALID_IMAGE: return "device kernel image is invalid";
    case CUDA_ERROR_INVALID_CONTEXT: return "invalid device context";
    case CUDA_ERROR_INVALID_HANDLE: return "invalid resource handle";
    case CUDA_ERROR_ILLEGAL_STATE: return "the operation cannot be performed in the present state";
    case CUDA_ERROR_NOT_FOUND: return "named symbol not found";
    case CUDA_ERROR_NOT_READY: return "device not ready";
    case CUDA_ERROR_ILLEGAL_ADDRESS: return "an illegal memory access was encountered";
    case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: return "too many resources requested for launch";
    case CUDA_ERROR_LAUNCH_TIMEOUT: return "the launch timed out and was terminated";
    case CUDA_ERROR_HARDWARE_STACK_ERROR: return "an illegal instruction was encountered (stack overflow)";
    case CUDA_ERROR_ILLEGAL_INSTRUCTION: return "an illegal instruction was encountered";
    case CUDA_ERROR_MISALIGNED_ADDRESS: return "misaligned address";
    case CUDA_ERROR_LAUNCH_FAILED: return "unspecified launch failure";
    case CUDA_ERROR_NOT_SUPPORTED: return "operation not supported";
    case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED: return "operation not permitted when stream is capturing";
    case CUDA_ERROR_STREAM_CAPTURE_INVALIDATED: return "operation failed due to a previous error during capture";
    case CUDA_ERROR_UNKNOWN: return "unknown error";
    }
    return nullptr;
}

// Every failure goes through here: the message is kept for cuGetErrorString and dicc_emu_last_error, and
// echoed to stderr for kernel failures (unless DICC_EMU_QUIET=1).
CUresult fail(CUresult status, const std::string& message, bool echo = false)
{
    Driver& d = driver();
    std::string text = format("%s: [dicc emulated device] %s", status_text(status), message.c_str());
    const char* kept = strdup(text.c_str()); // kept for good: callers may hold the pointer
    {
        std::lock_guard<std::mutex> lock(d.errors);
        d.detail[status] = kept;
        d.last = kept;
    }
    if (echo && !dicc_emu::options().quiet) std::fprintf(stderr, "%s\n", kept);
    return status;
}

std::string hex(uintptr_t p) { return format("0x%llx", (unsigned long long)p); }

CUresult require_initialized(const char* api)
{
    std::lock_guard<std::mutex> lock(driver().m);
    if (!driver().initialized) return fail(CUDA_ERROR_NOT_INITIALIZED, format("%s before cuInit", api));
    return CUDA_SUCCESS;
}

// Calls that need a context: cuInit done and the (primary) context current on this thread and retained.
CUresult require_context(const char* api)
{
    if (CUresult s = require_initialized(api)) return s;
    std::lock_guard<std::mutex> lock(driver().m);
    if (t_current == nullptr)
        return fail(CUDA_ERROR_INVALID_CONTEXT, format("%s: no context is current on this thread (cuCtxSetCurrent)", api));
    if (driver().primary_retains == 0)
        return fail(CUDA_ERROR_INVALID_CONTEXT, format("%s: the current context was released (cuDevicePrimaryCtxRelease)", api));
    return CUDA_SUCCESS;
}

CUresult check_stream(CUstream s, const char* api)
{
    // 0 is the legacy default stream; 1 and 2 are CU_STREAM_LEGACY and CU_STREAM_PER_THREAD.
    if ((uintptr_t)s <= 2) return CUDA_SUCCESS;
    std::lock_guard<std::mutex> lock(driver().m);
    if (!driver().streams.count(s)) return fail(CUDA_ERROR_INVALID_HANDLE, format("%s: %p is not a live stream", api, (void*)s));
    return CUDA_SUCCESS;
}

// Records `step` when `stream` is capturing (true), for cuGraphLaunch to run later; false when it is not.
bool captured(CUstream stream, std::function<CUresult()> step)
{
    if ((uintptr_t)stream <= 2) return false;
    std::lock_guard<std::mutex> lock(driver().m);
    if (!driver().streams.count(stream) || stream->capture != 1) return false;
    stream->captured->push_back(std::move(step));
    return true;
}

// A synchronising call on a capturing stream is not allowed: it invalidates the capture, as on a GPU.
CUresult refuse_if_capturing(CUstream stream, const char* api)
{
    if ((uintptr_t)stream <= 2) return CUDA_SUCCESS;
    std::lock_guard<std::mutex> lock(driver().m);
    if (!driver().streams.count(stream) || stream->capture == 0) return CUDA_SUCCESS;
    stream->capture = 2;
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, format("%s: the stream is capturing (the capture is now invalidated)", api));
}

// ---- device memory ----------------------------------------------------------------------------------------

// "just past the end of " for the first byte after an allocation, "N bytes past the end of " beyond it.
std::string past_end(uintptr_t distance)
{
    return distance == 0 ? "just past the end of " : format("%llu bytes past the end of ", (unsigned long long)distance);
}

std::string describe_locked(const Driver& d, uintptr_t address, size_t bytes)
{
    std::string s = hex(address);
    if (address < 65536) return s + format(" (a null pointer plus %llu)", (unsigned long long)address);
    auto after = d.live.upper_bound(address);
    const Allocation* below = after != d.live.begin() ? &std::prev(after)->second : nullptr;
    const Allocation* above = after != d.live.end() ? &after->second : nullptr;
    auto name = [](const Allocation& a) {
        return format("the %zu-byte allocation #%llu at %s", a.size, a.serial, hex(a.user).c_str());
    };
    if (below != nullptr && address < below->user + below->size)
    {
        s += format(", byte %llu of %s", (unsigned long long)(address - below->user), name(*below).c_str());
        if (bytes > 0 && address + bytes > below->user + below->size)
            s += format(", but the %zu bytes run %llu bytes past its end", bytes,
                        (unsigned long long)(address + bytes - below->user - below->size));
        return s;
    }
    if (below != nullptr && address < below->user + below->rounded + page_size())
        return s + ", " + past_end(address - below->user - below->size) + name(*below);
    if (above != nullptr && address >= above->map)
        return s + format(", %llu bytes before the start of %s", (unsigned long long)(above->user - address), name(*above).c_str());
    for (const Allocation& a : d.quarantine)
        if (address >= a.map && address < a.map + a.map_bytes)
            return s + format(", in the %zu-byte allocation #%llu at %s, which cuMemFree_v2 has freed (a use after free)",
                              a.size, a.serial, hex(a.user).c_str());
    s += ", which is in no device allocation";
    if (below != nullptr) s += format(" (%llu bytes after the end of %s)", (unsigned long long)(address - below->user - below->size), name(*below).c_str());
    else if (above != nullptr) s += format(" (%llu bytes before %s)", (unsigned long long)(above->user - address), name(*above).c_str());
    return s;
}

// The allocation holding [p, p + bytes), or null.
const Allocation* find_range(const Driver& d, uintptr_t p, size_t bytes)
{
    auto after = d.live.upper_bound(p);
    if (after == d.live.begin()) return nullptr;
    const Allocation& a = std::prev(after)->second;
    if (p >= a.user && bytes <= a.size && p - a.user <= a.size - bytes) return &a;
    return nullptr;
}

CUresult check_range(CUdeviceptr p, size_t bytes, const char* api, const char* what)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.memory);
    if (bytes == 0 || find_range(d, (uintptr_t)p, bytes) != nullptr) return CUDA_SUCCESS;
    return fail(CUDA_ERROR_INVALID_VALUE, format("%s: the %s [%s, +%zu bytes) is not inside one device allocation: %s", api, what,
                                                 hex(p).c_str(), bytes, describe_locked(d, (uintptr_t)p, bytes).c_str()));
}

void fill_canaries(const Allocation& a)
{
    std::memset((void*)(a.map + page_size()), kGapCanary, a.user - a.map - page_size());
    std::memset((void*)(a.user + a.size), kGapCanary, a.rounded - a.size);
}

void release_mapping(Driver& d, const Allocation& a)
{
    // Keep the range reserved and inaccessible for a while, so that a use after free faults.
    madvise((void*)a.map, a.map_bytes, MADV_DONTNEED);
    mprotect((void*)a.map, a.map_bytes, PROT_NONE);
    d.quarantine.push_back(a);
    if (d.quarantine.size() > kQuarantineLimit)
    {
        munmap((void*)d.quarantine.front().map, d.quarantine.front().map_bytes);
        d.quarantine.pop_front();
    }
}

// Bytes written into the gaps next to allocations (the guard pages only catch what lies beyond them).
std::string corrupted_gaps()
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.memory);
    std::string found;
    for (auto& [user, a] : d.live)
    {
        const auto* lead = (const unsigned char*)(a.map + page_size());
        const size_t lead_bytes = a.user - a.map - page_size();
        for (size_t i = 0; i < lead_bytes; i++)
            if (lead[i] != kGapCanary)
            {
                found += format(" It wrote %s, %zu bytes before the start of the %zu-byte allocation #%llu at %s.",
                                hex((uintptr_t)(lead + i)).c_str(), lead_bytes - i, a.size, a.serial, hex(a.user).c_str());
                break;
            }
        const auto* tail = (const unsigned char*)(a.user + a.size);
        for (size_t i = 0; i < a.rounded - a.size; i++)
            if (tail[i] != kGapCanary)
            {
                found += format(" It wrote %s, %sthe %zu-byte allocation #%llu at %s.", hex((uintptr_t)(tail + i)).c_str(),
                                past_end(i).c_str(), a.size, a.serial, hex(a.user).c_str());
                break;
            }
        if (!found.empty()) fill_canaries(a);
    }
    return found;
}

// ---- modules ---------------------------------------------------------------------------------------------

bool is_ident(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$'; }

// Whether `name` occurs in [p, p + n) as a whole identifier.
bool contains_token(const char* p, size_t n, const char* name)
{
    const size_t k = std::strlen(name);
    for (size_t i = 0; i + k <= n; i++)
    {
        const void* hit = std::memchr(p + i, name[0], n - i - k + 1);
        if (hit == nullptr) return false;
        i = (size_t)((const char*)hit - p);
        if (std::memcmp(p + i, name, k) == 0 && (i == 0 || !is_ident(p[i - 1])) && (i + k == n || !is_ident(p[i + k]))) return true;
    }
    return false;
}

template <typename T>
T read_at(const unsigned char* p, size_t offset)
{
    T v;
    std::memcpy(&v, p + offset, sizeof v);
    return v;
}

// The kernels (global function symbols) of a 64-bit little-endian ELF image (a cubin); false if it is not one.
bool elf_kernels(const unsigned char* p, std::set<std::string>* names)
{
    if (std::memcmp(p, "\x7f" "ELF", 4) != 0 || p[4] != 2 || p[5] != 1) return false;
    const auto shoff = read_at<uint64_t>(p, 0x28);
    const auto shentsize = read_at<uint16_t>(p, 0x3A), shnum = read_at<uint16_t>(p, 0x3C);
    if (shentsize < 64 || shnum == 0 || shoff > (1ull << 30)) return false;
    for (unsigned i = 0; i < shnum; i++)
    {
        const unsigned char* sh = p + shoff + (size_t)i * shentsize;
        if (read_at<uint32_t>(sh, 4) != 2) continue; // SHT_SYMTAB
        const auto off = read_at<uint64_t>(sh, 0x18), size = read_at<uint64_t>(sh, 0x20);
        const auto link = read_at<uint32_t>(sh, 0x28);
        const auto entsize = read_at<uint64_t>(sh, 0x38);
        if (link >= shnum || entsize < 24) return false;
        const unsigned char* strtab_sh = p + shoff + (size_t)link * shentsize;
        const char* strtab = (const char*)p + read_at<uint64_t>(strtab_sh, 0x18);
        for (uint64_t s = 0; s + entsize <= size; s += entsize)
        {
            const unsigned char* sym = p + off + s;
            const unsigned char info = sym[4];
            if ((info & 0xF) == 2 && (info >> 4) == 1) names->insert(strtab + read_at<uint32_t>(sym, 0)); // STT_FUNC, STB_GLOBAL
        }
        return true;
    }
    return false;
}

// The kernels (.entry directives) of PTX text.
void ptx_kernels(const char* text, std::set<std::string>* names)
{
    for (const char* q = std::strstr(text, ".entry"); q != nullptr; q = std::strstr(q + 6, ".entry"))
    {
        const char* n = q + 6;
        if (*n != ' ' && *n != '\t') continue;
        while (*n == ' ' || *n == '\t') n++;
        const char* e = n;
        while (is_ident(*e)) e++;
        if (e > n) names->insert(std::string(n, e));
    }
}

std::string join(const std::set<std::string>& s)
{
    std::string r;
    for (const auto& x : s) r += (r.empty() ? "" : ", ") + x;
    return r;
}

std::set<std::string> kernel_set(const dicc_emu::ModuleEntry* m)
{
    std::set<std::string> s;
    for (int i = 0; i < m->kernel_count; i++) s.insert(m->kernels[i].name);
    return s;
}

// Which emulated module an image is: the one with exactly the image's kernels (PTX or cubin), else, for an
// image we cannot read (a fatbin), the one whose kernel names all occur in it.
const dicc_emu::ModuleEntry* identify(const void* image, std::string* why)
{
    const auto* p = (const unsigned char*)image;
    std::set<std::string> names;
    bool listed = elf_kernels(p, &names);
    if (!listed && std::memcmp(p, "\x50\xed\x55\xba", 4) != 0) // not a fatbin: PTX text
    {
        ptx_kernels((const char*)p, &names);
        listed = !names.empty();
    }
    const auto& modules = dicc_emu::modules();
    if (listed)
    {
        for (const auto* m : modules)
            if (kernel_set(m) == names) return m;
        for (const auto* m : modules)
        {
            std::set<std::string> ours = kernel_set(m), extra, missing;
            for (const auto& n : names) if (!ours.count(n)) extra.insert(n);
            for (const auto& n : ours) if (!names.count(n)) missing.insert(n);
            if (extra.size() + missing.size() < ours.size() + names.size()) // they share kernels
            {
                *why = format("the image's kernels (%s) are not those of the emulated module %s (%s)", join(names).c_str(), m->file,
                              join(ours).c_str());
                if (!extra.empty()) *why += "; only the image has " + join(extra);
                if (!missing.empty()) *why += "; only the emulated module has " + join(missing);
                *why += ". The emulator library is older or newer than kernels/: rebuild it (tests/EmulatedDevice/build.sh).";
                return nullptr;
            }
        }
        *why = format("the image's kernels (%s) belong to no emulated module", join(names).c_str());
    }
    else
    {
        size_t bytes = 0;
        if (std::memcmp(p, "\x50\xed\x55\xba", 4) == 0)
            bytes = read_at<uint16_t>(p, 6) + read_at<uint64_t>(p, 8); // fatbin header: size, then the payload's size
        const dicc_emu::ModuleEntry* best = nullptr;
        for (const auto* m : modules)
        {
            bool all = true;
            for (int i = 0; i < m->kernel_count && all; i++) all = contains_token((const char*)p, bytes, m->kernels[i].name);
            if (all && (best == nullptr || m->kernel_count > best->kernel_count)) best = m;
        }
        if (best != nullptr) return best;
        *why = "the image (a fatbin, perhaps compressed) names the kernels of no emulated module";
    }
    std::string known;
    for (const auto* m : modules) known += (known.empty() ? "" : ", ") + std::string(m->file);
    *why += format(" (emulated modules: %s)", known.c_str());
    return nullptr;
}

void read_options(dicc_emu::Options* o, Driver& d)
{
    auto number = [](const char* name, long long fallback) {
        const char* v = std::getenv(name);
        return v != nullptr && *v != '\0' ? std::strtoll(v, nullptr, 0) : fallback;
    };
    o->workers = (int)number("DICC_EMU_WORKERS", 0);
    o->watchdog_ms = (int)number("DICC_EMU_WATCHDOG_MS", 10000);
    o->seed = (unsigned long long)number("DICC_EMU_SEED", 1);
    const char* quiet = std::getenv("DICC_EMU_QUIET");
    o->quiet = quiet != nullptr && std::strcmp(quiet, "1") == 0;
    const char* schedule = std::getenv("DICC_EMU_SCHEDULE");
    if (schedule != nullptr && std::strcmp(schedule, "reverse") == 0) o->schedule = dicc_emu::Schedule::Reverse;
    else if (schedule != nullptr && std::strcmp(schedule, "random") == 0) o->schedule = dicc_emu::Schedule::Random;
    const char* fill = std::getenv("DICC_EMU_FILL");
    if (fill != nullptr && std::strcmp(fill, "none") == 0) d.fill = -1;
    else if (fill != nullptr && *fill != '\0') d.fill = (int)(std::strtol(fill, nullptr, 0) & 0xFF);
    const char* align = std::getenv("DICC_EMU_ALIGN");
    if (align != nullptr && std::strcmp(align, "256") == 0) d.align = 256;
    const char* profile = std::getenv("DICC_EMU_PROFILE");
    d.profiling = profile != nullptr && std::strcmp(profile, "1") == 0;
}

void print_profile()
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    std::vector<std::pair<double, std::string>> rows;
    double total = 0;
    for (auto& [name, v] : d.profile)
    {
        rows.push_back({v.second, format("%10.3f s %8llu launches  %s", v.second, v.first, name.c_str())});
        total += v.second;
    }
    std::sort(rows.rbegin(), rows.rend());
    std::fprintf(stderr, "dicc emulated device: %.3f s in kernels\n", total);
    for (auto& r : rows) std::fprintf(stderr, "%s\n", r.second.c_str());
}

CUresult copy(void* dst, const void* src, size_t bytes)
{
    if (bytes > 0) std::memmove(dst, src, bytes);
    return CUDA_SUCCESS;
}

CUresult memset_checked(CUdeviceptr dst, unsigned value, size_t count, size_t width, const char* api)
{
    if (CUresult s = require_context(api)) return s;
    if (dst % width != 0) return fail(CUDA_ERROR_INVALID_VALUE, format("%s: %s is not %zu-byte aligned", api, hex(dst).c_str(), width));
    if (CUresult s = check_range(dst, count * width, api, "destination")) return s;
    if (width == 1) std::memset((void*)dst, (int)value, count);
    else
    {
        auto* p = (unsigned*)dst;
        for (size_t i = 0; i < count; i++) p[i] = value;
    }
    return CUDA_SUCCESS;
}
} // namespace

namespace
{
CUresult run_launch(const dicc_emu::LaunchRequest& r);
}

namespace dicc_emu
{
std::string describe_device_address(uintptr_t address, size_t bytes)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.memory);
    return describe_locked(d, address, bytes);
}
} // namespace dicc_emu

extern "C" {

// ---- initialisation, version, errors ----

CUresult cuInit(unsigned flags)
{
    if (flags != 0) return fail(CUDA_ERROR_INVALID_VALUE, format("cuInit: flags must be 0, not %u", flags));
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    if (!d.initialized)
    {
        dicc_emu::Options o;
        read_options(&o, d);
        dicc_emu::configure(o);
        if (d.profiling) std::atexit(print_profile);
        d.initialized = true;
    }
    return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* version)
{
    if (version == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuDriverGetVersion: null pointer");
    *version = kDriverVersion;
    return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult error, const char** str)
{
    if (str == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *str = status_name(error);
    return *str != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult error, const char** str)
{
    if (str == nullptr) return CUDA_ERROR_INVALID_VALUE;
    Driver& d = driver();
    {
        std::lock_guard<std::mutex> lock(d.errors);
        auto it = d.detail.find(error);
        if (it != d.detail.end())
        {
            *str = it->second;
            return CUDA_SUCCESS;
        }
    }
    *str = status_text(error);
    return *str != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

long long dicc_emu_launches(const char* kernel)
{
    if (kernel == nullptr) return -1;
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    auto it = d.profile.find(kernel);
    return it == d.profile.end() ? 0 : (long long)it->second.first;
}

const char* dicc_emu_last_error(void)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.errors);
    return d.last;
}

int dicc_emu_set_option(const char* name, const char* value)
{
    if (name == nullptr || value == nullptr) return -1;
    Driver& d = driver();
    dicc_emu::Options o = dicc_emu::options();
    std::string n = name;
    if (n == "DICC_EMU_WORKERS") o.workers = std::atoi(value);
    else if (n == "DICC_EMU_WATCHDOG_MS") o.watchdog_ms = std::atoi(value);
    else if (n == "DICC_EMU_SEED") o.seed = std::strtoull(value, nullptr, 0);
    else if (n == "DICC_EMU_QUIET") o.quiet = std::strcmp(value, "1") == 0;
    else if (n == "DICC_EMU_SCHEDULE")
    {
        std::string v = value;
        if (v == "forward") o.schedule = dicc_emu::Schedule::Forward;
        else if (v == "reverse") o.schedule = dicc_emu::Schedule::Reverse;
        else if (v == "random") o.schedule = dicc_emu::Schedule::Random;
        else return -1;
    }
    else if (n == "DICC_EMU_ALIGN")
    {
        std::lock_guard<std::mutex> lock(d.m);
        if (std::strcmp(value, "16") != 0 && std::strcmp(value, "256") != 0) return -1;
        d.align = (size_t)std::atoi(value);
        return 0;
    }
    else if (n == "DICC_EMU_FILL")
    {
        std::lock_guard<std::mutex> lock(d.m);
        d.fill = std::strcmp(value, "none") == 0 ? -1 : (int)(std::strtol(value, nullptr, 0) & 0xFF);
        return 0;
    }
    else return -1;
    dicc_emu::configure(o);
    return 0;
}

// ---- devices ----

CUresult cuDeviceGetCount(int* count)
{
    if (CUresult s = require_initialized("cuDeviceGetCount")) return s;
    if (count == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetCount: null pointer");
    *count = 1;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* device, int ordinal)
{
    if (CUresult s = require_initialized("cuDeviceGet")) return s;
    if (device == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGet: null pointer");
    if (ordinal != 0) return fail(CUDA_ERROR_INVALID_DEVICE, format("cuDeviceGet: ordinal %d; the emulator has one device, 0", ordinal));
    *device = 0;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice dev)
{
    if (CUresult s = require_initialized("cuDeviceGetName")) return s;
    if (dev != 0) return fail(CUDA_ERROR_INVALID_DEVICE, format("cuDeviceGetName: device %d", dev));
    if (name == nullptr || len <= 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetName: no buffer");
    std::snprintf(name, (size_t)len, "%s", kDeviceName);
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* value, int attribute, CUdevice dev)
{
    if (CUresult s = require_initialized("cuDeviceGetAttribute")) return s;
    if (dev != 0) return fail(CUDA_ERROR_INVALID_DEVICE, format("cuDeviceGetAttribute: device %d", dev));
    if (value == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetAttribute: null pointer");
    int v;
    switch (attribute) // an sm_80 (A100-like) part with 4 multiprocessors, so grid-stride grids stay small
    {
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: v = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: v = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: v = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: v = 64; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: v = 2147483647; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: v = 65535; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: v = 65535; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: v = kDefaultDynamicShared; break;
    case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: v = 65536; break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: v = 32; break;
    case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK: v = 65536; break;
    case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: v = 1410000; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: v = 4; break;
    case CU_DEVICE_ATTRIBUTE_INTEGRATED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_MODE: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_ECC_ENABLED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: v = 1215000; break;
    case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: v = 5120; break;
    case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: v = 40 << 20; break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: v = 2048; break;
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: v = 8; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: v = 167936; break;
    case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR: v = 65536; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: v = (int)dicc_emu::kDynamicSharedOptinBytes; break;
    default:
        return fail(CUDA_ERROR_INVALID_VALUE,
                    format("cuDeviceGetAttribute: the emulator does not model attribute %d (add it to tests/EmulatedDevice/src/driver.cpp)", attribute));
    }
    *value = v;
    return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev)
{
    if (CUresult s = require_initialized("cuDeviceTotalMem_v2")) return s;
    if (dev != 0) return fail(CUDA_ERROR_INVALID_DEVICE, format("cuDeviceTotalMem_v2: device %d", dev));
    if (bytes == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceTotalMem_v2: null pointer");
    *bytes = kTotalMemory;
    return CUDA_SUCCESS;
}

// ---- primary context ----

CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice dev)
{
    if (CUresult s = require_initialized("cuDevicePrimaryCtxRetain")) return s;
    if (dev != 0) return fail(CUDA_ERROR_INVALID_DEVICE, format("cuDevicePrimaryCtxRetain: device %d", dev));
    if (context == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuDevicePrimaryCtxRetain: null pointer");
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    d.primary_retains++;
    *context = &d.primary;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    if (CUresult s = require_initialized("cuDevicePrimaryCtxRelease_v2")) return s;
    if (dev != 0) return fail(CUDA_ERROR_INVALID_DEVICE, format("cuDevicePrimaryCtxRelease_v2: device %d", dev));
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    if (d.primary_retains == 0) return fail(CUDA_ERROR_INVALID_CONTEXT, "cuDevicePrimaryCtxRelease_v2: the primary context is not retained");
    if (--d.primary_retains > 0) return CUDA_SUCCESS;
    // The last release destroys the context and everything in it, as on a GPU: later use of its memory faults.
    std::lock_guard<std::mutex> memory(d.memory);
    for (auto& [user, a] : d.live) release_mapping(d, a);
    d.live.clear();
    d.allocated = 0;
    for (auto* s : d.streams) delete s;
    for (auto* e : d.events) delete e;
    for (auto* m : d.loaded) delete m;
    for (auto* f : d.functions) delete f;
    for (auto* g : d.graphs) delete g;
    for (auto* e : d.execs) delete e;
    d.graphs.clear();
    d.execs.clear();
    d.streams.clear();
    d.events.clear();
    d.loaded.clear();
    d.functions.clear();
    return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext context)
{
    if (CUresult s = require_initialized("cuCtxSetCurrent")) return s;
    if (context != nullptr && context != &driver().primary)
        return fail(CUDA_ERROR_INVALID_CONTEXT, format("cuCtxSetCurrent: %p is not the emulated device's context", (void*)context));
    t_current = context;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext* context)
{
    if (CUresult s = require_initialized("cuCtxGetCurrent")) return s;
    if (context == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuCtxGetCurrent: null pointer");
    *context = t_current;
    return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void)
{
    if (CUresult s = require_context("cuCtxSynchronize")) return s;
    std::lock_guard<std::mutex> lock(driver().m);
    for (auto* s : driver().streams)
        if (s->capture != 0)
        {
            s->capture = 2; // synchronising the device during a capture invalidates it, as on a GPU
            return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuCtxSynchronize: a stream is capturing (the capture is now invalidated)");
        }
    return CUDA_SUCCESS; // work ran when it was issued
}

CUresult cuMemGetInfo_v2(size_t* free, size_t* total)
{
    if (CUresult s = require_context("cuMemGetInfo_v2")) return s;
    if (free == nullptr || total == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemGetInfo_v2: null pointer");
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.memory);
    *total = kTotalMemory;
    *free = kTotalMemory - d.allocated;
    return CUDA_SUCCESS;
}

// ---- memory ----

CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize)
{
    if (CUresult s = require_context("cuMemAlloc_v2")) return s;
    if (dptr == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemAlloc_v2: null pointer");
    if (bytesize == 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemAlloc_v2: 0 bytes");
    Driver& d = driver();
    const size_t page = page_size();
    Allocation a;
    size_t align;
    {
        std::lock_guard<std::mutex> lock(d.m);
        align = d.align;
    }
    a.size = bytesize;
    a.rounded = (bytesize + align - 1) & ~(align - 1);
    const size_t data = (a.rounded + page - 1) & ~(page - 1);
    a.map_bytes = data + 2 * page;
    {
        std::lock_guard<std::mutex> lock(d.memory);
        if (bytesize > kTotalMemory - d.allocated)
            return fail(CUDA_ERROR_OUT_OF_MEMORY, format("cuMemAlloc_v2: %zu bytes requested, %zu of %zu free", bytesize,
                                                         kTotalMemory - d.allocated, kTotalMemory));
    }
    void* map = mmap(nullptr, a.map_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) return fail(CUDA_ERROR_OUT_OF_MEMORY, format("cuMemAlloc_v2: mmap of %zu bytes failed", a.map_bytes));
    a.map = (uintptr_t)map;
    if (mprotect((void*)(a.map + page), data, PROT_READ | PROT_WRITE) != 0)
    {
        munmap(map, a.map_bytes);
        return fail(CUDA_ERROR_OUT_OF_MEMORY, format("cuMemAlloc_v2: mprotect of %zu bytes failed", data));
    }
    // The end of the data flush against the guard page after it: overruns fault at once (README.md, "Memory").
    a.user = a.map + page + data - a.rounded;
    fill_canaries(a);
    int fill;
    {
        std::lock_guard<std::mutex> lock(d.m);
        fill = d.fill;
    }
    if (fill >= 0) std::memset((void*)a.user, fill, a.size); // device memory starts undefined, not zero
    std::lock_guard<std::mutex> lock(d.memory);
    a.serial = d.next_serial++;
    d.live[a.user] = a;
    d.allocated += a.size;
    *dptr = a.user;
    return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    if (CUresult s = require_context("cuMemFree_v2")) return s;
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.memory);
    auto it = d.live.find((uintptr_t)dptr);
    if (it == d.live.end())
        return fail(CUDA_ERROR_INVALID_VALUE, format("cuMemFree_v2: %s is not the start of a live allocation: %s", hex(dptr).c_str(),
                                                     describe_locked(d, (uintptr_t)dptr, 0).c_str()));
    d.allocated -= it->second.size;
    release_mapping(d, it->second);
    d.live.erase(it);
    return CUDA_SUCCESS;
}

CUresult cuMemHostAlloc(void** pointer, size_t bytesize, unsigned flags)
{
    (void)flags;
    if (CUresult s = require_context("cuMemHostAlloc")) return s;
    if (pointer == nullptr || bytesize == 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemHostAlloc: null pointer or 0 bytes");
    void* p = std::aligned_alloc(4096, (bytesize + 4095) & ~(size_t)4095);
    if (p == nullptr) return fail(CUDA_ERROR_OUT_OF_MEMORY, format("cuMemHostAlloc: %zu bytes", bytesize));
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    d.host.insert(p);
    *pointer = p;
    return CUDA_SUCCESS;
}

CUresult cuMemFreeHost(void* pointer)
{
    if (CUresult s = require_context("cuMemFreeHost")) return s;
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    if (!d.host.erase(pointer)) return fail(CUDA_ERROR_INVALID_VALUE, format("cuMemFreeHost: %p was not allocated by cuMemHostAlloc", pointer));
    std::free(pointer);
    return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes)
{
    if (CUresult s = require_context("cuMemcpyHtoD_v2")) return s;
    if (CUresult s = check_range(dst, bytes, "cuMemcpyHtoD_v2", "destination")) return s;
    return copy((void*)dst, src, bytes);
}

CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes)
{
    if (CUresult s = require_context("cuMemcpyDtoH_v2")) return s;
    if (CUresult s = check_range(src, bytes, "cuMemcpyDtoH_v2", "source")) return s;
    return copy(dst, (const void*)src, bytes);
}

CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes)
{
    if (CUresult s = require_context("cuMemcpyDtoD_v2")) return s;
    if (CUresult s = check_range(dst, bytes, "cuMemcpyDtoD_v2", "destination")) return s;
    if (CUresult s = check_range(src, bytes, "cuMemcpyDtoD_v2", "source")) return s;
    return copy((void*)dst, (const void*)src, bytes);
}

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, CUstream stream)
{
    if (CUresult s = check_stream(stream, "cuMemcpyHtoDAsync_v2")) return s;
    if (CUresult s = check_range(dst, bytes, "cuMemcpyHtoDAsync_v2", "destination")) return s;
    if (captured(stream, [=] { return cuMemcpyHtoD_v2(dst, src, bytes); })) return CUDA_SUCCESS; // reads the host memory when replayed
    return cuMemcpyHtoD_v2(dst, src, bytes);
}

CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, CUstream stream)
{
    if (CUresult s = check_stream(stream, "cuMemcpyDtoHAsync_v2")) return s;
    if (CUresult s = check_range(src, bytes, "cuMemcpyDtoHAsync_v2", "source")) return s;
    if (captured(stream, [=] { return cuMemcpyDtoH_v2(dst, src, bytes); })) return CUDA_SUCCESS;
    return cuMemcpyDtoH_v2(dst, src, bytes);
}

CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream)
{
    if (CUresult s = check_stream(stream, "cuMemcpyDtoDAsync_v2")) return s;
    if (CUresult s = check_range(dst, bytes, "cuMemcpyDtoDAsync_v2", "destination")) return s;
    if (CUresult s = check_range(src, bytes, "cuMemcpyDtoDAsync_v2", "source")) return s;
    if (captured(stream, [=] { return cuMemcpyDtoD_v2(dst, src, bytes); })) return CUDA_SUCCESS;
    return cuMemcpyDtoD_v2(dst, src, bytes);
}

CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, size_t count) { return memset_checked(dst, value, count, 1, "cuMemsetD8_v2"); }
CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned value, size_t count) { return memset_checked(dst, value, count, 4, "cuMemsetD32_v2"); }

CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t count, CUstream stream)
{
    if (CUresult s = check_stream(stream, "cuMemsetD8Async")) return s;
    if (CUresult s = check_range(dst, count, "cuMemsetD8Async", "destination")) return s;
    if (captured(stream, [=] { return memset_checked(dst, value, count, 1, "cuMemsetD8Async"); })) return CUDA_SUCCESS;
    return memset_checked(dst, value, count, 1, "cuMemsetD8Async");
}

CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned value, size_t count, CUstream stream)
{
    if (CUresult s = check_stream(stream, "cuMemsetD32Async")) return s;
    if (CUresult s = check_range(dst, count * 4, "cuMemsetD32Async", "destination")) return s;
    if (captured(stream, [=] { return memset_checked(dst, value, count, 4, "cuMemsetD32Async"); })) return CUDA_SUCCESS;
    return memset_checked(dst, value, count, 4, "cuMemsetD32Async");
}

// ---- streams and events ----

CUresult cuStreamCreate(CUstream* stream, unsigned flags)
{
    if (CUresult s = require_context("cuStreamCreate")) return s;
    if (stream == nullptr || flags > 1) return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamCreate: null pointer or unknown flags");
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    auto* s = new DiccEmuStream{flags, 0, nullptr};
    d.streams.insert(s);
    *stream = s;
    return CUDA_SUCCESS;
}

CUresult cuStreamDestroy_v2(CUstream stream)
{
    if (CUresult s = require_context("cuStreamDestroy_v2")) return s;
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    if (!d.streams.erase(stream)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuStreamDestroy_v2: %p is not a live stream", (void*)stream));
    delete stream;
    return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream stream)
{
    if (CUresult s = require_context("cuStreamSynchronize")) return s;
    if (CUresult s = check_stream(stream, "cuStreamSynchronize")) return s;
    return refuse_if_capturing(stream, "cuStreamSynchronize");
}

CUresult cuStreamQuery(CUstream stream)
{
    if (CUresult s = require_context("cuStreamQuery")) return s;
    if (CUresult s = check_stream(stream, "cuStreamQuery")) return s;
    return refuse_if_capturing(stream, "cuStreamQuery"); // otherwise always idle: work runs when issued
}

CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned flags)
{
    (void)flags;
    if (CUresult s = require_context("cuStreamWaitEvent")) return s;
    if (CUresult s = check_stream(stream, "cuStreamWaitEvent")) return s;
    std::lock_guard<std::mutex> lock(driver().m);
    if (!driver().events.count(event)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuStreamWaitEvent: %p is not a live event", (void*)event));
    return CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent* event, unsigned flags)
{
    if (CUresult s = require_context("cuEventCreate")) return s;
    if (event == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuEventCreate: null pointer");
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    auto* e = new DiccEmuEvent{flags};
    d.events.insert(e);
    *event = e;
    return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent event)
{
    if (CUresult s = require_context("cuEventDestroy_v2")) return s;
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    if (!d.events.erase(event)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuEventDestroy_v2: %p is not a live event", (void*)event));
    delete event;
    return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent event, CUstream stream)
{
    if (CUresult s = require_context("cuEventRecord")) return s;
    if (CUresult s = check_stream(stream, "cuEventRecord")) return s;
    if (captured(stream, [=] { return cuEventRecord(event, nullptr); })) return CUDA_SUCCESS;
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    if (!d.events.count(event)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuEventRecord: %p is not a live event", (void*)event));
    event->recorded = true;
    event->when = std::chrono::steady_clock::now(); // the stream's earlier work has finished by now
    return CUDA_SUCCESS;
}

CUresult cuEventSynchronize(CUevent event)
{
    if (CUresult s = require_context("cuEventSynchronize")) return s;
    std::lock_guard<std::mutex> lock(driver().m);
    if (!driver().events.count(event)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuEventSynchronize: %p is not a live event", (void*)event));
    return CUDA_SUCCESS;
}

CUresult cuEventQuery(CUevent event) { return cuEventSynchronize(event); }

CUresult cuEventElapsedTime(float* milliseconds, CUevent start, CUevent end)
{
    if (CUresult s = require_context("cuEventElapsedTime")) return s;
    if (milliseconds == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuEventElapsedTime: null pointer");
    std::lock_guard<std::mutex> lock(driver().m);
    for (CUevent e : {start, end})
    {
        if (!driver().events.count(e)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuEventElapsedTime: %p is not a live event", (void*)e));
        if (e->flags & CU_EVENT_DISABLE_TIMING)
            return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime: an event was created with CU_EVENT_DISABLE_TIMING");
        if (!e->recorded) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime: an event has not been recorded");
    }
    *milliseconds = std::chrono::duration<float, std::milli>(end->when - start->when).count();
    return CUDA_SUCCESS;
}

// ---- modules and kernels ----

CUresult cuModuleLoadData(CUmodule* module, const void* image)
{
    if (CUresult s = require_context("cuModuleLoadData")) return s;
    if (module == nullptr || image == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuModuleLoadData: null pointer");
    std::string why;
    const dicc_emu::ModuleEntry* entry = identify(image, &why);
    if (entry == nullptr) return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: " + why, true);
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    auto* m = new DiccEmuModule{entry, {}};
    for (int i = 0; i < entry->kernel_count; i++)
    {
        auto* f = new DiccEmuFunction{&entry->kernels[i], m, kDefaultDynamicShared};
        m->functions.push_back(f);
        d.functions.insert(f);
    }
    d.loaded.insert(m);
    *module = m;
    return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule module)
{
    if (CUresult s = require_context("cuModuleUnload")) return s;
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    if (!d.loaded.erase(module)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuModuleUnload: %p is not a loaded module", (void*)module));
    for (auto* f : module->functions)
    {
        d.functions.erase(f);
        delete f;
    }
    delete module;
    return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction* function, CUmodule module, const char* name)
{
    if (CUresult s = require_context("cuModuleGetFunction")) return s;
    if (function == nullptr || name == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuModuleGetFunction: null pointer");
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    if (!d.loaded.count(module)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuModuleGetFunction: %p is not a loaded module", (void*)module));
    for (auto* f : module->functions)
        if (std::strcmp(f->kernel->name, name) == 0)
        {
            *function = f;
            return CUDA_SUCCESS;
        }
    return fail(CUDA_ERROR_NOT_FOUND, format("cuModuleGetFunction: module %s has no kernel %s", module->entry->file, name));
}

CUresult cuFuncGetAttribute(int* value, int attribute, CUfunction function)
{
    if (CUresult s = require_context("cuFuncGetAttribute")) return s;
    if (value == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuFuncGetAttribute: null pointer");
    std::lock_guard<std::mutex> lock(driver().m);
    if (!driver().functions.count(function)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuFuncGetAttribute: %p is not a function", (void*)function));
    switch (attribute) // register and memory sizes are not modelled: plausible values (README.md, "What only a GPU verifies")
    {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; break;
    case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *value = 0; break;
    case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: *value = 0; break;
    case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: *value = 0; break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS: *value = 32; break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION: *value = 80; break;
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *value = 80; break;
    case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA: *value = 0; break;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *value = function->max_dynamic_shared; break;
    default: return fail(CUDA_ERROR_INVALID_VALUE, format("cuFuncGetAttribute: the emulator does not model attribute %d", attribute));
    }
    return CUDA_SUCCESS;
}

CUresult cuFuncSetAttribute(CUfunction function, int attribute, int value)
{
    if (CUresult s = require_context("cuFuncSetAttribute")) return s;
    std::lock_guard<std::mutex> lock(driver().m);
    if (!driver().functions.count(function)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuFuncSetAttribute: %p is not a function", (void*)function));
    if (attribute != CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)
        return fail(CUDA_ERROR_INVALID_VALUE, format("cuFuncSetAttribute: the emulator only sets MAX_DYNAMIC_SHARED_SIZE_BYTES, not %d", attribute));
    if (value < 0 || value > (int)dicc_emu::kDynamicSharedOptinBytes)
        return fail(CUDA_ERROR_INVALID_VALUE, format("cuFuncSetAttribute: %d bytes of dynamic shared memory; the device allows up to %zu",
                                                     value, dicc_emu::kDynamicSharedOptinBytes));
    function->max_dynamic_shared = value;
    return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction function, unsigned gridDimX, unsigned gridDimY, unsigned gridDimZ, unsigned blockDimX,
                        unsigned blockDimY, unsigned blockDimZ, unsigned sharedMemBytes, CUstream stream, void** kernelParams,
                        void** extra)
{
    if (CUresult s = require_context("cuLaunchKernel")) return s;
    if (CUresult s = check_stream(stream, "cuLaunchKernel")) return s;
    Driver& d = driver();
    dicc_emu::LaunchRequest r;
    {
        std::lock_guard<std::mutex> lock(d.m);
        if (!d.functions.count(function)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuLaunchKernel: %p is not a function", (void*)function));
        r.kernel = function->kernel;
        r.module = function->module->entry;
        const char* name = r.kernel->name;
        if (extra != nullptr) return fail(CUDA_ERROR_NOT_SUPPORTED, format("cuLaunchKernel(%s): the emulator takes arguments through kernelParams only", name));
        if (kernelParams == nullptr && r.kernel->param_count > 0)
            return fail(CUDA_ERROR_INVALID_VALUE, format("cuLaunchKernel(%s): kernelParams is null but the kernel has %d parameters", name, r.kernel->param_count));
        const unsigned long long threads = (unsigned long long)blockDimX * blockDimY * blockDimZ;
        if (gridDimX == 0 || gridDimY == 0 || gridDimZ == 0 || gridDimX > 2147483647u || gridDimY > 65535 || gridDimZ > 65535)
            return fail(CUDA_ERROR_INVALID_VALUE, format("cuLaunchKernel(%s): grid (%u,%u,%u) is outside (1..2^31-1, 1..65535, 1..65535)",
                                                         name, gridDimX, gridDimY, gridDimZ));
        if (threads == 0 || blockDimX > 1024 || blockDimY > 1024 || blockDimZ > 64 || threads > 1024)
            return fail(CUDA_ERROR_INVALID_VALUE, format("cuLaunchKernel(%s): block (%u,%u,%u) is empty or over the device's limits "
                                                         "(1024 threads, 1024 x 1024 x 64)",
                                                         name, blockDimX, blockDimY, blockDimZ));
        if (sharedMemBytes > (unsigned)function->max_dynamic_shared)
            return fail(CUDA_ERROR_INVALID_VALUE, format("cuLaunchKernel(%s): %u bytes of dynamic shared memory exceed the kernel's limit of %d "
                                                         "(cuFuncSetAttribute MAX_DYNAMIC_SHARED_SIZE_BYTES raises it)",
                                                         name, sharedMemBytes, function->max_dynamic_shared));
    }
    r.grid = dicc_emu::dim3{gridDimX, gridDimY, gridDimZ};
    r.block = dicc_emu::dim3{blockDimX, blockDimY, blockDimZ};
    r.shared_bytes = sharedMemBytes;
    r.params = kernelParams;
    // Captured: the arguments are copied now (as cuLaunchKernel does), the kernel runs when the graph is launched.
    std::shared_ptr<unsigned char[]> packed(new (std::align_val_t(64)) unsigned char[dicc_emu::kMaxArgumentBytes],
                                            [](unsigned char* p) { operator delete[](p, std::align_val_t(64)); });
    r.kernel->pack(kernelParams, packed.get());
    dicc_emu::LaunchRequest replay = r;
    replay.params = nullptr;
    replay.packed = packed.get();
    if (captured(stream, [replay, packed] { return run_launch(replay); })) return CUDA_SUCCESS;
    return run_launch(replay);
}

} // extern "C"

namespace
{
// Runs a launch, checks the gaps next to every allocation, keeps the profile; reports a failure (echoed).
CUresult run_launch(const dicc_emu::LaunchRequest& r)
{
    Driver& d = driver();
    const unsigned gridDimX = r.grid.x, gridDimY = r.grid.y, gridDimZ = r.grid.z;
    const unsigned blockDimX = r.block.x, blockDimY = r.block.y, blockDimZ = r.block.z;
    std::string message;
    const auto started = std::chrono::steady_clock::now();
    CUresult status = dicc_emu::launch(r, &message); // the driver's lock is not held: fault reports need it
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (status == CUDA_SUCCESS)
    {
        std::string gaps = corrupted_gaps();
        if (!gaps.empty())
        {
            status = CUDA_ERROR_ILLEGAL_ADDRESS;
            message = format("kernel %s (grid (%u,%u,%u), block (%u,%u,%u)) wrote outside its allocations, into the bytes between an "
                             "allocation and its guard page (found after the launch, so the block and thread are not known).",
                             r.kernel->name, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ) +
                      gaps;
        }
    }
    else corrupted_gaps(); // restore the canaries a failed launch may have hit
    {
        std::lock_guard<std::mutex> lock(d.m);
        auto& row = d.profile[r.kernel->name]; // counted always: tests check that every kernel ran (dicc_emu_launches)
        row.first++;
        row.second += seconds;
    }
    if (status != CUDA_SUCCESS) return fail(status, message, true);
    return CUDA_SUCCESS;
}
} // namespace

extern "C" {

// ---- stream capture and graphs: the captured work, replayed in order ----

CUresult cuStreamBeginCapture_v2(CUstream stream, int mode)
{
    (void)mode; // only the capturing stream records; other threads' calls are not checked against the mode
    if (CUresult s = require_context("cuStreamBeginCapture_v2")) return s;
    if ((uintptr_t)stream <= 2)
        return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamBeginCapture_v2: the legacy default stream cannot capture");
    if (CUresult s = check_stream(stream, "cuStreamBeginCapture_v2")) return s;
    std::lock_guard<std::mutex> lock(driver().m);
    if (stream->capture != 0) return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamBeginCapture_v2: the stream is capturing already");
    stream->capture = 1;
    stream->captured = std::make_shared<DiccEmuWork>();
    return CUDA_SUCCESS;
}

CUresult cuStreamEndCapture(CUstream stream, CUgraph* graph)
{
    if (CUresult s = require_context("cuStreamEndCapture")) return s;
    if (CUresult s = check_stream(stream, "cuStreamEndCapture")) return s;
    if (graph == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamEndCapture: null pointer");
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    if ((uintptr_t)stream <= 2 || stream->capture == 0) return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamEndCapture: the stream is not capturing");
    const bool invalidated = stream->capture == 2;
    auto work = std::move(stream->captured);
    stream->capture = 0;
    if (invalidated)
        return fail(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "cuStreamEndCapture: a call during the capture invalidated it");
    auto* g = new DiccEmuGraph{std::move(work)};
    d.graphs.insert(g);
    *graph = g;
    return CUDA_SUCCESS;
}

CUresult cuStreamIsCapturing(CUstream stream, int* status)
{
    if (CUresult s = check_stream(stream, "cuStreamIsCapturing")) return s;
    if (status == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamIsCapturing: null pointer");
    std::lock_guard<std::mutex> lock(driver().m);
    *status = (uintptr_t)stream <= 2 ? CU_STREAM_CAPTURE_STATUS_NONE : stream->capture;
    return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec* exec, CUgraph graph, unsigned long long flags)
{
    if (CUresult s = require_context("cuGraphInstantiateWithFlags")) return s;
    if (exec == nullptr || flags != 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuGraphInstantiateWithFlags: null pointer or flags the emulator does not model");
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.m);
    if (!d.graphs.count(graph)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuGraphInstantiateWithFlags: %p is not a graph", (void*)graph));
    auto* e = new DiccEmuGraphExec{graph->work};
    d.execs.insert(e);
    *exec = e;
    return CUDA_SUCCESS;
}

CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream)
{
    if (CUresult s = require_context("cuGraphLaunch")) return s;
    if (CUresult s = check_stream(stream, "cuGraphLaunch")) return s;
    std::shared_ptr<DiccEmuWork> work;
    {
        std::lock_guard<std::mutex> lock(driver().m);
        if (!driver().execs.count(exec)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuGraphLaunch: %p is not an instantiated graph", (void*)exec));
        work = exec->work;
    }
    if (captured(stream, [work]() -> CUresult {
            for (auto& step : *work)
                if (CUresult s = step()) return s;
            return CUDA_SUCCESS;
        }))
        return CUDA_SUCCESS;
    for (auto& step : *work)
        if (CUresult s = step()) return s; // its message is set by the step
    return CUDA_SUCCESS;
}

CUresult cuGraphExecDestroy(CUgraphExec exec)
{
    if (CUresult s = require_context("cuGraphExecDestroy")) return s;
    std::lock_guard<std::mutex> lock(driver().m);
    if (!driver().execs.erase(exec)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuGraphExecDestroy: %p is not an instantiated graph", (void*)exec));
    delete exec;
    return CUDA_SUCCESS;
}

CUresult cuGraphDestroy(CUgraph graph)
{
    if (CUresult s = require_context("cuGraphDestroy")) return s;
    std::lock_guard<std::mutex> lock(driver().m);
    if (!driver().graphs.erase(graph)) return fail(CUDA_ERROR_INVALID_HANDLE, format("cuGraphDestroy: %p is not a graph", (void*)graph));
    delete graph;
    return CUDA_SUCCESS;
}

} // extern "C"
