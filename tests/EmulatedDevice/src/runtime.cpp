// The emulated device's kernel runtime (README.md, "How kernels run"). A launch's blocks are shared out among a
// few worker OS threads; a worker runs one block at a time, each CUDA thread of the block as a fiber on its own
// stack, switching fibers only at __syncthreads and warp operations. That makes __shared__ (thread_local) per
// block, makes barrier order real, and lets a block in which no fiber can move be reported at once. Faults in
// kernel code and the watchdog's interrupt come back to the worker through siglongjmp.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <csetjmp>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "emu_runtime.h"

#if !defined(__x86_64__) && !defined(DICC_EMU_UCONTEXT)
#define DICC_EMU_UCONTEXT 1 // no hand-written switch for this architecture: swapcontext (a syscall per switch)
#endif

namespace dicc_emu
{
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    char buffer[1024];
    int n = vsnprintf(buffer, sizeof buffer, fmt, args);
    va_end(args);
    if (n < (int)sizeof buffer) return std::string(buffer, n < 0 ? 0 : n);
    std::string s(n, '\0');
    va_start(args, fmt);
    vsnprintf(s.data(), n + 1, fmt, args);
    va_end(args);
    return s;
}

namespace
{
constexpr unsigned kMaxThreads = 1024;
constexpr int kMaxWorkerRecords = 256; // workers ever started, replacements of lost ones included
constexpr unsigned char kDynamicSharedCanary = 0xDB;
constexpr unsigned char kDynamicSharedFill = 0xCD; // what a block finds in dynamic shared memory (undefined on a GPU)
int interrupt_signal() { return SIGRTMIN + 6; } // the watchdog's; sent only to our own workers

enum FiberState : uint8_t
{
    kReady,
    kBarrier,
    kWarp,
    kDone,
    kTrapped,
};

struct Worker;

// A CUDA thread's record, at the top of its fiber stack just above its ThreadInfo.
struct Fiber
{
    Worker* worker;
    unsigned index; // linear thread index in the block (x fastest)
    FiberState state;
    uint8_t op;     // WarpOp while state == kWarp
    unsigned mask;
    int arg, width;
    unsigned long long value, result;
};
static_assert(sizeof(ThreadInfo) <= 64 && 64 + sizeof(Fiber) <= kFiberTopBytes, "the fiber records must fit the reserved top");

struct Launch
{
    const KernelEntry* kernel;
    const ModuleEntry* module;
    dim3 grid, block;
    unsigned shared_bytes;
    unsigned threads;
    unsigned long long blocks;
    Schedule schedule;
    unsigned long long seed;
    alignas(64) unsigned char packed[kMaxArgumentBytes];
    std::atomic<unsigned long long> next{0};
    std::atomic<bool> aborted{false};
    // The lowest-numbered block whose failure is reported (-1: the launch as a whole, e.g. the watchdog). Blocks
    // numbered below it run on to their own end, so that when several blocks fail (a deadlock in every block), the
    // message names the lowest one whatever the workers' timing, not whichever worker got there first.
    std::atomic<long long> failed_block{LLONG_MAX};
    std::mutex m;
    CUresult status = CUDA_SUCCESS;
    std::string message;
    std::string interrupted; // where the watchdog's interrupt found the workers
    int pending = 0;         // workers still in this launch (guarded by the pool's mutex)

    void fail(CUresult s, std::string text, long long block = -1)
    {
        std::lock_guard<std::mutex> lock(m);
        if (status == CUDA_SUCCESS || block < failed_block.load())
        {
            status = s;
            message = std::move(text);
            failed_block.store(block);
        }
        aborted.store(true);
    }
};

#if defined(DICC_EMU_UCONTEXT)
struct Context
{
    ucontext_t uc;
};
#else
struct Context
{
    void* sp;
};
#endif

struct Worker
{
    int id = 0;
    std::thread thread;
    pthread_t handle{};
    char* stacks = nullptr; // kMaxThreads fiber stacks of kFiberStackBytes, aligned to kFiberStackBytes
    uintptr_t lo = 0, hi = 0;
    size_t guard = 0;
    Context scheduler{};
    Context* contexts = nullptr; // [kMaxThreads]
    sigjmp_buf jump;
    std::atomic<Launch*> launch{nullptr};
    std::atomic<long long> running_block{-1};
    std::atomic<bool> retired{false};
    unsigned long long seen_generation = 0;

    // Set by the signal handlers before they jump back.
    volatile sig_atomic_t fault_signal = 0;
    volatile int fault_code = 0;
    volatile uintptr_t fault_address = 0, fault_pc = 0;
    volatile int fault_write = -1;

    // The block being run.
    Launch* run = nullptr;
    uint3 block_idx{};
    unsigned n = 0, exited = 0, at_barrier = 0;
    Fiber* current = nullptr;
    bool failed = false;
    CUresult fail_status = CUDA_SUCCESS;
    std::string fail_message;
    std::vector<unsigned> order;
    unsigned char* dynamic = nullptr; // this thread's dynamic shared memory for the launch's module, if it has any

    char* slot(unsigned i) const { return stacks + (size_t)i * kFiberStackBytes; }
    ThreadInfo* info(unsigned i) const { return (ThreadInfo*)(slot(i) + kFiberStackBytes - kFiberTopBytes); }
    Fiber* fiber(unsigned i) const { return (Fiber*)(slot(i) + kFiberStackBytes - kFiberTopBytes + 64); }
};

// Read by the signal handlers: a fixed array of atomics, never freed.
std::atomic<Worker*> g_workers[kMaxWorkerRecords];
std::atomic<int> g_worker_records{0};

struct Pool
{
    std::mutex m;
    std::condition_variable work, done;
    std::vector<Worker*> workers;
    Launch* current = nullptr;
    unsigned long long generation = 0;
};
Pool& pool()
{
    static Pool* p = new Pool; // never destroyed: workers may outlive static destruction at exit
    return *p;
}

Options& mutable_options()
{
    static Options* o = new Options;
    return *o;
}

std::vector<const ModuleEntry*>& module_list()
{
    static auto* list = new std::vector<const ModuleEntry*>;
    return *list;
}

// The calling OS thread's dynamic shared memory of a module, or null when the module declares none.
unsigned char* dynamic_shared_of(const ModuleEntry* m) { return m->dynamic_shared != nullptr ? m->dynamic_shared() : nullptr; }

Fiber* current_fiber()
{
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    return (Fiber*)((sp & ~(kFiberStackBytes - 1)) + kFiberStackBytes - kFiberTopBytes + 64);
}

// ---- context switching ----------------------------------------------------------------------------------

extern "C" [[noreturn]] void dicc_emu_fiber_main(Fiber* f);

#if !defined(DICC_EMU_UCONTEXT)
// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores the stack
// pointer in *save and resumes the context whose stack pointer is `to` (System V x86-64 ABI).
asm(R"(
    .text
    .p2align 4
    .type dicc_emu_switch, @function
dicc_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size dicc_emu_switch, .-dicc_emu_switch

    .p2align 4
    .type dicc_emu_fiber_entry, @function
dicc_emu_fiber_entry:
    movq %r12, %rdi
    xorl %ebp, %ebp
    call dicc_emu_fiber_main
    ud2
    .size dicc_emu_fiber_entry, .-dicc_emu_fiber_entry
)");
extern "C" void dicc_emu_switch(void** save, void* to);
extern "C" void dicc_emu_fiber_entry();

inline void switch_context(Context* from, Context* to) { dicc_emu_switch(&from->sp, to->sp); }

// A fresh fiber: the frame dicc_emu_switch pops, returning into dicc_emu_fiber_entry with r12 = f.
void make_context(Context* c, char* stack_lo, char* stack_top, Fiber* f)
{
    (void)stack_lo;
    auto* sp = (uint64_t*)stack_top; // 16-byte aligned
    unsigned mxcsr;
    unsigned short fpcw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpcw));
    *--sp = (uint64_t)&dicc_emu_fiber_entry; // ret target; rsp is 16-byte aligned after the ret
    *--sp = 0;                               // rbp
    *--sp = 0;                               // rbx
    *--sp = (uint64_t)f;                     // r12
    *--sp = 0;                               // r13
    *--sp = 0;                               // r14
    *--sp = 0;                               // r15
    *--sp = (uint64_t)mxcsr | ((uint64_t)fpcw << 32);
    c->sp = sp;
}
#else
inline void switch_context(Context* from, Context* to) { swapcontext(&from->uc, &to->uc); }

void fiber_trampoline(unsigned hi, unsigned lo)
{
    dicc_emu_fiber_main((Fiber*)(((uintptr_t)hi << 32) | lo));
}

void make_context(Context* c, char* stack_lo, char* stack_top, Fiber* f)
{
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack_lo;
    c->uc.uc_stack.ss_size = (size_t)(stack_top - stack_lo);
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, (void (*)())fiber_trampoline, 2, (unsigned)((uintptr_t)f >> 32), (unsigned)(uintptr_t)f);
}
#endif

// ---- messages -------------------------------------------------------------------------------------------

std::string dims(dim3 d) { return format("(%u,%u,%u)", d.x, d.y, d.z); }
std::string dims(uint3 d) { return format("(%u,%u,%u)", d.x, d.y, d.z); }

uint3 thread_of(const Launch* L, unsigned index)
{
    return uint3{index % L->block.x, index / L->block.x % L->block.y, index / (L->block.x * L->block.y)};
}

// "threadIdx.x 0-15, 20" for a 1-D block, else "threads (0,1,0), (1,1,0)" (at most a few, then a count).
std::string threads_text(const Launch* L, const std::vector<unsigned>& indices)
{
    if (indices.empty()) return "no thread";
    std::string s;
    if (L->block.y == 1 && L->block.z == 1)
    {
        s = "threadIdx.x ";
        for (size_t i = 0; i < indices.size();)
        {
            size_t j = i;
            while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1) j++;
            if (i > 0) s += ", ";
            s += j == i ? format("%u", indices[i]) : format("%u-%u", indices[i], indices[j]);
            i = j + 1;
        }
        return s;
    }
    s = "threads ";
    for (size_t i = 0; i < indices.size() && i < 8; i++) s += (i ? ", " : "") + dims(thread_of(L, indices[i]));
    if (indices.size() > 8) s += format(" and %zu more", indices.size() - 8);
    return s;
}

std::string where(const Worker* w, const Fiber* f)
{
    std::string s = format("kernel %s, block %s of grid %s", w->run->kernel->name, dims(w->block_idx).c_str(),
                           dims(w->run->grid).c_str());
    if (f != nullptr) s += ", thread " + dims(thread_of(w->run, f->index));
    return s;
}

const char* op_name(int op)
{
    switch (op)
    {
    case kShflIdx: return "__shfl_sync";
    case kShflUp: return "__shfl_up_sync";
    case kShflDown: return "__shfl_down_sync";
    case kShflXor: return "__shfl_xor_sync";
    case kBallot: return "__ballot_sync";
    case kAll: return "__all_sync";
    case kAny: return "__any_sync";
    case kSyncWarp: return "__syncwarp";
    }
    return "a warp operation";
}

// Why no fiber of the block can continue: who waits where, and for whom.
std::string deadlock_text(Worker* w)
{
    const Launch* L = w->run;
    std::vector<unsigned> at_barrier;
    std::string s = format("deadlock in %s (%u threads): no thread can continue.", where(w, nullptr).c_str(), w->n);
    for (unsigned i = 0; i < w->n; i++)
        if (w->fiber(i)->state == kBarrier) at_barrier.push_back(i);
    if (!at_barrier.empty())
        s += format(" %s wait at __syncthreads() (%u of %u threads there, %u exited).", threads_text(L, at_barrier).c_str(),
                    w->at_barrier, w->n, w->exited);
    for (unsigned base = 0; base < w->n; base += 32)
    {
        // Each distinct mask waited on in this warp, with its waiters and the lanes it still needs.
        std::map<unsigned, std::vector<unsigned>> groups;
        for (unsigned l = 0; l < 32 && base + l < w->n; l++)
        {
            Fiber* f = w->fiber(base + l);
            if (f->state == kWarp) groups[f->mask].push_back(base + l);
        }
        for (auto& [mask, waiters] : groups)
        {
            Fiber* first = w->fiber(waiters[0]);
            s += format(" Warp %u: %s wait in %s(mask 0x%08x), which also needs", base / 32, threads_text(L, waiters).c_str(),
                        op_name(first->op), mask);
            std::vector<unsigned> missing_none, missing_exited, missing_barrier, missing_other;
            for (unsigned l = 0; l < 32; l++)
            {
                if (!(mask >> l & 1u)) continue;
                unsigned i = base + l;
                if (i >= w->n) { missing_none.push_back(i); continue; }
                Fiber* g = w->fiber(i);
                if (g->state == kWarp && g->mask == mask) continue;
                if (g->state == kDone) missing_exited.push_back(i);
                else if (g->state == kBarrier) missing_barrier.push_back(i);
                else missing_other.push_back(i);
            }
            if (!missing_exited.empty()) s += " " + threads_text(L, missing_exited) + " (exited)";
            if (!missing_barrier.empty()) s += " " + threads_text(L, missing_barrier) + " (waiting at __syncthreads())";
            if (!missing_other.empty()) s += " " + threads_text(L, missing_other) + " (in a warp operation with another mask)";
            if (!missing_none.empty())
                s += format(" lanes %u-%u (which do not exist: the block has %u threads)", missing_none.front() - base,
                            missing_none.back() - base, w->n);
            s += ".";
        }
    }
    return s;
}

// ---- inside a block (fiber side) -------------------------------------------------------------------------

[[noreturn]] void back_to_scheduler_for_good(Fiber* f)
{
    Worker* w = f->worker;
    switch_context(&w->contexts[f->index], &w->scheduler);
    __builtin_trap(); // a finished or trapped fiber is never resumed
}

[[noreturn]] void fail_here(CUresult status, std::string message)
{
    Fiber* f = current_fiber();
    Worker* w = f->worker;
    w->failed = true;
    w->fail_status = status;
    w->fail_message = std::move(message);
    f->state = kTrapped;
    back_to_scheduler_for_good(f);
}

void release_barrier(Worker* w)
{
    for (unsigned i = 0; i < w->n; i++)
    {
        Fiber* g = w->fiber(i);
        if (g->state == kBarrier) g->state = kReady;
    }
    w->at_barrier = 0;
}

// The source lane of lane l's shuffle, or -1 for "its own value" (CUDA Programming Guide, "Warp Shuffle
// Functions": sources outside the lane's width-wide segment give the lane its own value; __shfl_sync wraps
// srcLane into the segment, __shfl_xor_sync may reach earlier segments but not later ones).
int shuffle_source(int op, unsigned l, int arg, int width)
{
    const unsigned w = (unsigned)width, first = l & ~(w - 1), last = first + w - 1, d = (unsigned)arg;
    switch (op)
    {
    case kShflIdx: return (int)(first + (d & (w - 1)));
    case kShflUp: return (l - first) < d ? -1 : (int)(l - d);
    case kShflDown: return d > last - l ? -1 : (int)(l + d);
    case kShflXor: return (l ^ d) > last ? -1 : (int)(l ^ d);
    }
    return -1;
}
} // namespace

extern "C" [[noreturn]] __attribute__((used)) void dicc_emu_fiber_main(Fiber* f)
{
    Worker* w = f->worker;
    w->run->kernel->invoke(w->run->packed);
    f->state = kDone;
    w->exited++;
    if (w->at_barrier > 0 && w->at_barrier + w->exited == w->n) release_barrier(w);
    back_to_scheduler_for_good(f);
}

void syncthreads()
{
    Fiber* f = current_fiber();
    Worker* w = f->worker;
    w->at_barrier++;
    if (w->at_barrier + w->exited == w->n)
    {
        release_barrier(w); // the last to arrive goes straight on
        return;
    }
    f->state = kBarrier;
    switch_context(&w->contexts[f->index], &w->scheduler);
}

unsigned long long warp_op(WarpOp op, unsigned mask, unsigned long long value, int arg, int width)
{
    Fiber* f = current_fiber();
    Worker* w = f->worker;
    const unsigned lane = f->index & 31, base = f->index - lane;
    if (!(mask >> lane & 1u))
        fail_here(CUDA_ERROR_LAUNCH_FAILED, format("%s: %s(mask 0x%08x) is called by lane %u, which its mask leaves out",
                                                   where(w, f).c_str(), op_name(op), mask, lane));
    if (op <= kShflXor && (width < 1 || width > 32 || (width & (width - 1)) != 0))
        fail_here(CUDA_ERROR_LAUNCH_FAILED, format("%s: %s with width %d (a power of two up to 32 is required)",
                                                   where(w, f).c_str(), op_name(op), width));
    f->op = (uint8_t)op;
    f->mask = mask;
    f->value = value;
    f->arg = arg;
    f->width = width;
    f->state = kWarp;

    // Complete when every lane of the mask waits with the same mask; otherwise wait for the rest.
    Fiber* lanes[32] = {};
    for (unsigned m = mask; m != 0; m &= m - 1)
    {
        const unsigned l = (unsigned)__builtin_ctz(m);
        if (base + l >= w->n) goto wait;
        Fiber* g = w->fiber(base + l);
        if (g->state != kWarp || g->mask != mask) goto wait;
        if (g->op != op)
            fail_here(CUDA_ERROR_LAUNCH_FAILED,
                      format("%s: lanes %u and %u of warp %u meet in different warp operations (%s, %s) with mask 0x%08x",
                             where(w, f).c_str(), lane, l, base / 32, op_name(op), op_name(g->op), mask));
        lanes[l] = g;
    }
    {
        unsigned long long vote = 0;
        bool all = true, any = false;
        for (unsigned m = mask; m != 0; m &= m - 1)
        {
            const unsigned l = (unsigned)__builtin_ctz(m);
            if (lanes[l]->value != 0) { vote |= 1ull << l; any = true; }
            else all = false;
        }
        for (unsigned m = mask; m != 0; m &= m - 1)
        {
            const unsigned l = (unsigned)__builtin_ctz(m);
            Fiber* g = lanes[l];
            switch (op)
            {
            case kBallot: g->result = vote; break;
            case kAll: g->result = all; break;
            case kAny: g->result = any; break;
            case kSyncWarp: g->result = 0; break;
            default:
            {
                const int src = shuffle_source(op, l, g->arg, g->width);
                if (src < 0 || (unsigned)src == l) g->result = g->value;
                else if (!(mask >> src & 1u))
                    fail_here(CUDA_ERROR_LAUNCH_FAILED,
                              format("%s: in %s(mask 0x%08x), lane %u of warp %u reads lane %d, which is not in the mask "
                                     "(its value is undefined on a GPU)",
                                     where(w, g).c_str(), op_name(op), mask, l, base / 32, src));
                else g->result = lanes[src]->value;
            }
            }
        }
        for (unsigned m = mask; m != 0; m &= m - 1) lanes[__builtin_ctz(m)]->state = kReady;
        return f->result;
    }
wait:
    switch_context(&w->contexts[f->index], &w->scheduler);
    return f->result;
}

[[noreturn]] void trap(const char* what, const void* address)
{
    Fiber* f = current_fiber();
    Worker* w = f->worker;
    const bool misaligned = std::strcmp(what, "misaligned atomic operation") == 0;
    std::string text = format("%s: %s", where(w, f).c_str(), what);
    if (address != nullptr) text += " at " + describe_device_address((uintptr_t)address, 0);
    fail_here(misaligned ? CUDA_ERROR_MISALIGNED_ADDRESS : CUDA_ERROR_LAUNCH_FAILED, text);
}

namespace
{
// ---- running a block (worker side) -----------------------------------------------------------------------

unsigned long long mix(unsigned long long x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Runs block `linear` of the worker's launch to the end; false when it failed (w->fail_*).
bool run_block(Worker* w, unsigned long long linear)
{
    Launch* L = w->run;
    w->block_idx = uint3{(unsigned)(linear % L->grid.x), (unsigned)(linear / L->grid.x % L->grid.y),
                         (unsigned)(linear / ((unsigned long long)L->grid.x * L->grid.y))};
    w->n = L->threads;
    w->exited = w->at_barrier = 0;
    w->failed = false;
    w->current = nullptr;
    if (w->dynamic != nullptr && L->shared_bytes > 0) std::memset(w->dynamic, kDynamicSharedFill, L->shared_bytes);
    for (unsigned i = 0; i < w->n; i++)
    {
        ThreadInfo* t = w->info(i);
        t->thread_idx = thread_of(L, i);
        t->block_idx = w->block_idx;
        t->block_dim = L->block;
        t->grid_dim = L->grid;
        Fiber* f = w->fiber(i);
        f->worker = w;
        f->index = i;
        f->state = kReady;
        f->result = 0;
        make_context(&w->contexts[i], w->slot(i) + w->guard, (char*)t, f);
    }
    w->order.resize(w->n);
    for (unsigned i = 0; i < w->n; i++) w->order[i] = L->schedule == Schedule::Reverse ? w->n - 1 - i : i;
    if (L->schedule == Schedule::Random)
    {
        unsigned long long state = mix(L->seed ^ mix(linear));
        for (unsigned i = w->n - 1; i > 0; i--)
        {
            state = mix(state);
            std::swap(w->order[i], w->order[state % (i + 1)]);
        }
    }
    for (;;)
    {
        bool progress = false;
        for (unsigned k = 0; k < w->n; k++)
        {
            Fiber* f = w->fiber(w->order[k]);
            if (f->state != kReady) continue;
            progress = true;
            w->current = f;
            switch_context(&w->scheduler, &w->contexts[f->index]);
            w->current = nullptr;
            if (w->failed) return false;
            // A lower-numbered block failed, or the watchdog stopped the launch (blocks below a failed one go on).
            if (L->aborted.load(std::memory_order_relaxed) && (long long)linear > L->failed_block.load()) return true;
        }
        if (w->exited == w->n) return true;
        if (!progress)
        {
            w->fail_status = CUDA_ERROR_LAUNCH_FAILED;
            w->fail_message = deadlock_text(w);
            return false;
        }
    }
}

const char* signal_text(int sig, int code)
{
    switch (sig)
    {
    case SIGSEGV: return "an illegal memory access";
    case SIGBUS: return "a bus error (an access the memory cannot serve)";
    case SIGFPE: return code == FPE_INTDIV ? "an integer division by zero" : code == FPE_INTOVF ? "an integer overflow trap" : "an arithmetic trap";
    case SIGILL: return "an illegal instruction (__builtin_trap or code the compiler proved unreachable)";
    }
    return "a signal";
}

std::string fault_message(Worker* w, Fiber* f, CUresult* status)
{
    const int sig = w->fault_signal;
    const uintptr_t address = w->fault_address;
    std::string s = format("%s: %s", where(w, f).c_str(), signal_text(sig, w->fault_code));
    *status = sig == SIGILL ? CUDA_ERROR_ILLEGAL_INSTRUCTION : sig == SIGFPE ? CUDA_ERROR_LAUNCH_FAILED : CUDA_ERROR_ILLEGAL_ADDRESS;
    if (sig == SIGSEGV || sig == SIGBUS)
    {
        if (address >= w->lo && address < w->hi && (address - w->lo) % kFiberStackBytes < w->guard)
        {
            *status = CUDA_ERROR_HARDWARE_STACK_ERROR;
            return format("%s: thread %s overflowed its %zu KiB stack (deep recursion or a large local array)",
                          where(w, nullptr).c_str(), dims(thread_of(w->run, (unsigned)((address - w->lo) / kFiberStackBytes))).c_str(),
                          (kFiberStackBytes - w->guard - kFiberTopBytes) / 1024);
        }
        s += format(": %s of ", w->fault_write == 1 ? "write" : w->fault_write == 0 ? "read" : "access");
        s += describe_device_address(address, 0);
    }
    s += format(" (code address %p)", (void*)w->fault_pc);
    return s;
}

// This worker's part of a launch: blocks taken one by one until none is left or the launch failed.
void run_share(Worker* w, Launch* L)
{
    w->run = L;
    w->launch.store(L);
    unsigned char* dynamic = dynamic_shared_of(L->module);
    w->dynamic = dynamic;
    if (dynamic != nullptr)
        std::memset(dynamic + L->shared_bytes, kDynamicSharedCanary, kDynamicSharedOptinBytes - L->shared_bytes);
    w->fault_signal = 0;
    if (sigsetjmp(w->jump, 1) != 0)
    {
        // A signal handler jumped back: a fault in kernel code, or the watchdog's interrupt.
        Fiber* f = w->current;
        w->current = nullptr;
        if (w->fault_signal == interrupt_signal())
        {
            std::lock_guard<std::mutex> lock(L->m);
            L->interrupted += format(" Block %s was stopped in thread %s.", dims(w->block_idx).c_str(),
                                     f ? dims(thread_of(L, f->index)).c_str() : "(none)");
        }
        else
        {
            CUresult status;
            std::string text = fault_message(w, f, &status);
            L->fail(status, text, w->running_block.load());
        }
        w->running_block.store(-1);
        w->launch.store(nullptr);
        return;
    }
    while (!L->aborted.load(std::memory_order_relaxed))
    {
        const unsigned long long b = L->next.fetch_add(1);
        if (b >= L->blocks) break;
        w->running_block.store((long long)b);
        if (!run_block(w, b))
        {
            L->fail(w->fail_status, w->fail_message, (long long)b);
            break;
        }
    }
    w->running_block.store(-1);
    if (dynamic != nullptr && !L->aborted.load())
    {
        for (size_t i = L->shared_bytes; i < kDynamicSharedOptinBytes; i++)
            if (dynamic[i] != kDynamicSharedCanary)
            {
                L->fail(CUDA_ERROR_ILLEGAL_ADDRESS,
                        format("kernel %s (grid %s, block %s) wrote dynamic shared memory at byte %zu, beyond the %u bytes "
                               "the launch gave it",
                               L->kernel->name, dims(L->grid).c_str(), dims(L->block).c_str(), i, L->shared_bytes));
                break;
            }
    }
    w->launch.store(nullptr);
}

void worker_main(Worker* w)
{
    w->handle = pthread_self();
    // Our signals must reach this thread whatever mask the launching thread had.
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, interrupt_signal()}) sigaddset(&set, s);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    // The fault handler runs on its own stack: a fiber that overflowed has none left.
    stack_t alt{};
    alt.ss_size = 64 * 1024;
    alt.ss_sp = std::malloc(alt.ss_size);
    sigaltstack(&alt, nullptr);
    // Allocate this thread's TLS block (all __shared__ memory of the library) now, outside any fiber.
    for (const ModuleEntry* m : module_list())
        if (unsigned char* d = dynamic_shared_of(m)) d[0] = 0;

    Pool& p = pool();
    for (;;)
    {
        Launch* L;
        {
            std::unique_lock<std::mutex> lock(p.m);
            p.work.wait(lock, [&] { return p.generation != w->seen_generation || w->retired.load(); });
            if (w->retired.load()) return;
            w->seen_generation = p.generation;
            L = p.current;
        }
        run_share(w, L);
        std::lock_guard<std::mutex> lock(p.m);
        if (w->retired.load()) return; // lost to the watchdog meanwhile: the launch was given up
        if (--L->pending == 0) p.done.notify_all();
    }
}

Worker* start_worker()
{
    int record = g_worker_records.fetch_add(1);
    if (record >= kMaxWorkerRecords) return nullptr;
    auto* w = new Worker;
    w->id = record;
    w->guard = (size_t)sysconf(_SC_PAGESIZE);
    const size_t bytes = (size_t)kMaxThreads * kFiberStackBytes;
    // Reserve, then align to the stack size (the stack pointer finds a fiber's records by masking).
    char* raw = (char*)mmap(nullptr, bytes + kFiberStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
    {
        delete w;
        return nullptr;
    }
    w->stacks = (char*)(((uintptr_t)raw + kFiberStackBytes - 1) & ~(kFiberStackBytes - 1));
    for (unsigned i = 0; i < kMaxThreads; i++) mprotect(w->slot(i), w->guard, PROT_NONE); // each stack's guard page
    w->lo = (uintptr_t)w->stacks;
    w->hi = w->lo + bytes;
    w->contexts = new Context[kMaxThreads];
    {
        std::lock_guard<std::mutex> lock(pool().m);
        w->seen_generation = pool().generation;
    }
    g_workers[record].store(w);
    w->thread = std::thread(worker_main, w);
    w->thread.detach();
    return w;
}

void ensure_workers()
{
    Pool& p = pool();
    int want = options().workers;
    if (want <= 0) want = (int)std::min(8u, std::max(1u, std::thread::hardware_concurrency()));
    std::vector<Worker*> fresh;
    int have;
    {
        std::lock_guard<std::mutex> lock(p.m);
        have = (int)p.workers.size();
        while (have > want) // fewer wanted (a test changed the option): retire the extra ones
        {
            Worker* w = p.workers.back();
            p.workers.pop_back();
            w->retired.store(true);
            have--;
        }
    }
    p.work.notify_all();
    for (; have < want; have++)
        if (Worker* w = start_worker()) fresh.push_back(w);
    std::lock_guard<std::mutex> lock(p.m);
    for (Worker* w : fresh) p.workers.push_back(w);
}

// ---- signals ----------------------------------------------------------------------------------------------

struct sigaction g_previous[NSIG];

Worker* worker_for_stack(uintptr_t sp)
{
    const int n = std::min(g_worker_records.load(), kMaxWorkerRecords);
    for (int i = 0; i < n; i++)
    {
        Worker* w = g_workers[i].load();
        if (w != nullptr && sp >= w->lo && sp < w->hi) return w;
    }
    return nullptr;
}

uintptr_t stack_pointer(void* context)
{
#if defined(__x86_64__)
    return (uintptr_t)((ucontext_t*)context)->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)((ucontext_t*)context)->uc_mcontext.sp;
#else
#error "the emulated device reads the interrupted stack pointer; add this architecture"
#endif
}

void chain(int sig, siginfo_t* info, void* context)
{
    const struct sigaction& old = g_previous[sig];
    if (old.sa_flags & SA_SIGINFO)
    {
        if (old.sa_sigaction != nullptr) old.sa_sigaction(sig, info, context);
        return;
    }
    if (old.sa_handler == SIG_IGN) return;
    if (old.sa_handler == SIG_DFL)
    {
        // Re-raise with the default action (for a fault: returning re-executes the faulting instruction).
        signal(sig, SIG_DFL);
        if (info->si_code <= 0) raise(sig);
        return;
    }
    old.sa_handler(sig);
}

void on_fault(int sig, siginfo_t* info, void* context)
{
    Worker* w = worker_for_stack(stack_pointer(context));
    if (w != nullptr && w->launch.load() != nullptr)
    {
        w->fault_signal = sig;
        w->fault_code = info->si_code;
        w->fault_address = (uintptr_t)info->si_addr;
#if defined(__x86_64__)
        w->fault_pc = (uintptr_t)((ucontext_t*)context)->uc_mcontext.gregs[REG_RIP];
        w->fault_write = sig == SIGSEGV ? (int)((((ucontext_t*)context)->uc_mcontext.gregs[REG_ERR] >> 1) & 1) : -1;
#endif
        siglongjmp(w->jump, 1);
    }
    chain(sig, info, context);
}

void on_interrupt(int sig, siginfo_t* info, void* context)
{
    Worker* w = worker_for_stack(stack_pointer(context));
    Launch* L = w != nullptr ? w->launch.load() : nullptr;
    if (L != nullptr && L->aborted.load())
    {
        w->fault_signal = sig;
        siglongjmp(w->jump, 1);
    }
    // Otherwise the interrupt found the worker outside kernel code, where its scheduler sees the abort flag
    // before it resumes a fiber. The signal is ours alone (sent only to our workers): never chained.
    (void)info;
}
} // namespace

void install_signal_handlers()
{
    static std::once_flag once;
    std::call_once(once, [] {
        for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, interrupt_signal()})
        {
            struct sigaction action{};
            action.sa_sigaction = sig == interrupt_signal() ? on_interrupt : on_fault;
            action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
            sigemptyset(&action.sa_mask);
            sigaction(sig, &action, &g_previous[sig]);
        }
    });
}

void register_module(const ModuleEntry* module) { module_list().push_back(module); }

const std::vector<const ModuleEntry*>& modules() { return module_list(); }

void configure(const Options& o)
{
    mutable_options() = o;
}

const Options& options() { return mutable_options(); }

CUresult launch(const LaunchRequest& r, std::string* message)
{
    static std::mutex one_at_a_time; // streams run in issue order; one launch at a time is a valid schedule
    std::lock_guard<std::mutex> serial(one_at_a_time);
    install_signal_handlers();
    ensure_workers();
    Pool& p = pool();

    auto* L = new Launch;
    L->kernel = r.kernel;
    L->module = r.module;
    L->grid = r.grid;
    L->block = r.block;
    L->shared_bytes = r.shared_bytes;
    L->threads = r.block.x * r.block.y * r.block.z;
    L->blocks = (unsigned long long)r.grid.x * r.grid.y * r.grid.z;
    L->schedule = options().schedule;
    L->seed = options().seed;
    if (r.packed != nullptr) std::memcpy(L->packed, r.packed, r.kernel->args_bytes);
    else r.kernel->pack(r.params, L->packed); // cuLaunchKernel copies the arguments before it returns

    std::unique_lock<std::mutex> lock(p.m);
    if (p.workers.empty())
    {
        delete L;
        *message = "the emulated device could not start a worker thread";
        return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
    }
    L->pending = (int)p.workers.size();
    p.current = L;
    p.generation++;
    p.work.notify_all();
    auto finished = [&] { return L->pending == 0; };
    const int watchdog = options().watchdog_ms;
    bool done = true;
    if (watchdog <= 0) p.done.wait(lock, finished);
    else done = p.done.wait_for(lock, std::chrono::milliseconds(watchdog), finished);
    if (!done)
    {
        std::string running;
        for (Worker* w : p.workers)
            if (w->launch.load() == L && w->running_block.load() >= 0)
            {
                unsigned long long b = (unsigned long long)w->running_block.load();
                running += (running.empty() ? "" : ", ") +
                           dims(uint3{(unsigned)(b % L->grid.x), (unsigned)(b / L->grid.x % L->grid.y),
                                      (unsigned)(b / ((unsigned long long)L->grid.x * L->grid.y))});
            }
        L->fail(CUDA_ERROR_LAUNCH_TIMEOUT,
                format("kernel %s (grid %s, block %s) did not finish within the watchdog's %d ms (DICC_EMU_WATCHDOG_MS): "
                       "an endless loop, or a wait on something no thread will do. Blocks running: %s; %llu of %llu blocks "
                       "started.",
                       L->kernel->name, dims(L->grid).c_str(), dims(L->block).c_str(), watchdog,
                       running.empty() ? "none" : running.c_str(), std::min(L->next.load(), L->blocks), L->blocks));
        // Stop the spinning workers: the interrupt takes a worker in kernel code back to its scheduler.
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (!finished() && std::chrono::steady_clock::now() < give_up)
        {
            for (Worker* w : p.workers)
                if (w->launch.load() == L) pthread_kill(w->handle, interrupt_signal());
            p.done.wait_for(lock, std::chrono::milliseconds(20), finished);
        }
        if (!finished())
        {
            // A worker that cannot be interrupted is abandoned (it spins on) and replaced.
            std::vector<Worker*> keep;
            int lost = 0;
            for (Worker* w : p.workers)
            {
                if (w->launch.load() == L) { w->retired.store(true); lost++; }
                else keep.push_back(w);
            }
            p.workers = keep;
            std::string text;
            {
                std::lock_guard<std::mutex> l(L->m);
                text = L->message + format(" %d worker thread(s) could not be stopped and were abandoned.", lost);
            }
            *message = text;
            lock.unlock();
            ensure_workers();
            return CUDA_ERROR_LAUNCH_TIMEOUT; // L is leaked: abandoned workers may still read it
        }
    }
    p.current = nullptr;
    lock.unlock();
    CUresult status;
    {
        std::lock_guard<std::mutex> l(L->m);
        status = L->status;
        *message = L->message + L->interrupted;
    }
    delete L;
    return status;
}
} // namespace dicc_emu
