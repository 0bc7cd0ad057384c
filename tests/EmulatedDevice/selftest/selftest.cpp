// The emulated device's self-test (README.md, "Self-test"): the test kernels of selftest_kernels.cu run through
// the fake driver's API, their results checked against values computed here by hand, and the emulator's error
// reports (deadlock, watchdog, out-of-bounds accesses, ...) checked for the status and the names they must give.
// Built and run by build.sh --selftest; exits non-zero when a check fails.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_api.h"

namespace
{
int g_passed = 0, g_failed = 0;

void check(bool ok, const std::string& what)
{
    if (ok) g_passed++;
    else
    {
        g_failed++;
        std::printf("FAILED: %s\n", what.c_str());
    }
}

std::string text_of(CUresult s)
{
    const char* t = nullptr;
    cuGetErrorString(s, &t);
    return t ? t : "(none)";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The detailed message of the last failure must name everything in `parts`.
void check_message(CUresult status, CUresult expected, const std::vector<std::string>& parts, const std::string& what)
{
    const char* name = nullptr;
    cuGetErrorName(status, &name);
    check(status == expected, what + ": status " + (name ? name : std::to_string(status)));
    const std::string text = text_of(status);
    if (std::getenv("DICC_EMU_SELFTEST_VERBOSE") != nullptr) std::printf("%s:\n  %s\n", what.c_str(), text.c_str());
    for (const auto& p : parts) check(contains(text, p), what + ": message names '" + p + "': " + text);
    check(contains(dicc_emu_last_error(), parts.empty() ? "" : parts[0]), what + ": dicc_emu_last_error");
}

struct Dim
{
    unsigned x = 1, y = 1, z = 1;
};

CUmodule g_module;

template <typename... A>
CUresult launch(const char* kernel, Dim grid, Dim block, unsigned shared, A... args)
{
    CUfunction f;
    CUresult s = cuModuleGetFunction(&f, g_module, kernel);
    if (s != CUDA_SUCCESS) return s;
    void* params[] = {&args..., nullptr};
    return cuLaunchKernel(f, grid.x, grid.y, grid.z, block.x, block.y, block.z, shared, nullptr, params, nullptr);
}

template <typename T>
CUdeviceptr upload(const std::vector<T>& host)
{
    CUdeviceptr d = 0;
    cuMemAlloc_v2(&d, host.size() * sizeof(T));
    cuMemcpyHtoD_v2(d, host.data(), host.size() * sizeof(T));
    return d;
}

template <typename T>
std::vector<T> download(CUdeviceptr d, size_t n)
{
    std::vector<T> host(n);
    cuMemcpyDtoH_v2(host.data(), d, n * sizeof(T));
    return host;
}

const char* const kKernels[] = {
    "st_tree_sum", "st_tree_sum_racy", "st_early_return", "st_warp_ops", "st_atomics64", "st_deadlock_barrier_vs_shuffle",
    "st_deadlock_exited_lane", "st_shfl_outside_mask", "st_spin", "st_write_at", "st_read_at", "st_shared_isolation",
    "st_dynamic_fill", "st_misaligned_atomic", "st_divide", "st_stack_overflow", "st_coordinates"};

// PTX-like text declaring the given kernels (the emulator reads .entry names; nothing else of it).
std::string fake_ptx(const std::vector<std::string>& names)
{
    std::string s = ".version 7.8\n.target sm_80\n.address_size 64\n";
    for (const auto& n : names) s += ".visible .entry " + n + "(\n\t.param .u64 p\n)\n{\n\tret;\n}\n";
    return s;
}

void test_initialisation_and_modules()
{
    CUcontext ctx;
    check(cuDevicePrimaryCtxRetain(&ctx, 0) == CUDA_ERROR_NOT_INITIALIZED, "calls before cuInit fail with NOT_INITIALIZED");
    check(cuInit(0) == CUDA_SUCCESS, "cuInit");
    int count = 0, major = 0, minor = 0, sms = 0, optin = 0;
    char name[64] = {};
    cuDeviceGetCount(&count);
    cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0);
    cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0);
    cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0);
    cuDeviceGetAttribute(&optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 0);
    cuDeviceGetName(name, sizeof name, 0);
    check(count == 1 && major == 8 && minor == 0 && sms == 4 && optin == 166912, "one sm_80 device with 4 SMs and 163 KiB opt-in shared memory");
    check(std::strcmp(name, "Dicc emulated device") == 0, std::string("device name: ") + name);
    CUdeviceptr p;
    check(cuMemAlloc_v2(&p, 16) == CUDA_ERROR_INVALID_CONTEXT, "cuMemAlloc without a current context fails");
    check(cuDevicePrimaryCtxRetain(&ctx, 0) == CUDA_SUCCESS && cuCtxSetCurrent(ctx) == CUDA_SUCCESS, "primary context");

    std::vector<std::string> names(std::begin(kKernels), std::end(kKernels));
    std::string image = fake_ptx(names);
    check(cuModuleLoadData(&g_module, image.c_str()) == CUDA_SUCCESS, "the self-test module is recognised by its kernel names");
    CUfunction f;
    check_message(cuModuleGetFunction(&f, g_module, "st_missing"), CUDA_ERROR_NOT_FOUND, {"st_missing"}, "unknown kernel name");

    CUmodule other;
    std::string unknown = fake_ptx({"some_kernel_f32", "another_f32"});
    check_message(cuModuleLoadData(&other, unknown.c_str()), CUDA_ERROR_INVALID_IMAGE, {"some_kernel_f32", "no emulated module"},
                  "an image of unknown kernels");
    // A module of kernels/ (linked in too): found among the others by its own kernel names, and it runs.
    CUmodule elementwise;
    std::string image2 = fake_ptx({"fill_f32", "relu_forward_f32", "relu_backward_f32", "multiply_f32"});
    check(cuModuleLoadData(&elementwise, image2.c_str()) == CUDA_SUCCESS, "elementwise.cu is recognised among the modules");
    CUfunction fill;
    CUdeviceptr x;
    cuMemAlloc_v2(&x, 1000 * sizeof(float));
    float value = -2.5f;
    long long n = 1000;
    void* params[] = {&x, &value, &n};
    check(cuModuleGetFunction(&fill, elementwise, "fill_f32") == CUDA_SUCCESS &&
              cuLaunchKernel(fill, 2, 1, 1, 128, 1, 1, 0, nullptr, params, nullptr) == CUDA_SUCCESS,
          "kernels/elementwise.cu fill_f32 runs");
    std::vector<float> back(1000);
    cuMemcpyDtoH_v2(back.data(), x, 1000 * sizeof(float));
    check(std::all_of(back.begin(), back.end(), [](float v) { return v == -2.5f; }), "fill_f32 wrote every element (grid-stride)");
    cuMemFree_v2(x);
    cuModuleUnload(elementwise);

    names.push_back("st_added_later");
    std::string newer = fake_ptx(names);
    check_message(cuModuleLoadData(&other, newer.c_str()), CUDA_ERROR_INVALID_IMAGE, {"st_added_later", "rebuild"},
                  "an image with a kernel the library lacks");
}

void test_memory_api()
{
    std::vector<int> data(1000);
    for (int i = 0; i < 1000; i++) data[i] = i * 7 - 3;
    CUdeviceptr d = upload(data);
    check(download<int>(d, 1000) == data, "cuMemcpyHtoD / DtoH round trip");
    CUdeviceptr e;
    cuMemAlloc_v2(&e, 4000);
    cuMemcpyDtoD_v2(e, d, 4000);
    check(download<int>(e, 1000) == data, "cuMemcpyDtoD");
    cuMemsetD32_v2(e + 40, 0xdeadbeefu, 10);
    cuMemsetD8_v2(e, 0x01, 4);
    auto back = download<int>(e, 1000);
    check(back[0] == 0x01010101 && back[9] == data[9] && back[10] == (int)0xdeadbeef && back[19] == (int)0xdeadbeef && back[20] == data[20],
          "cuMemsetD8 / D32 touch exactly their bytes");
    check_message(cuMemcpyHtoD_v2(e + 3996, data.data(), 8), CUDA_ERROR_INVALID_VALUE, {"not inside one device allocation", "past its end"},
                  "a copy running past an allocation");
    check_message(cuMemsetD32_v2(e + 2, 0, 1), CUDA_ERROR_INVALID_VALUE, {"aligned"}, "cuMemsetD32 on a misaligned address");
    size_t free_bytes = 0, total = 0;
    cuMemGetInfo_v2(&free_bytes, &total);
    check(total == (16ull << 30) && free_bytes < total, "cuMemGetInfo");
    check_message(cuMemFree_v2(e + 4), CUDA_ERROR_INVALID_VALUE, {"not the start of a live allocation"}, "cuMemFree of an inner pointer");
    cuMemFree_v2(e);
    cuMemFree_v2(d);

    CUevent a, b, untimed;
    cuEventCreate(&a, 0);
    cuEventCreate(&b, 0);
    cuEventCreate(&untimed, CU_EVENT_DISABLE_TIMING);
    cuEventRecord(a, nullptr);
    std::vector<char> big(1 << 24, 1);
    CUdeviceptr g = upload(big);
    cuEventRecord(b, nullptr);
    cuEventRecord(untimed, nullptr);
    float ms = -1;
    check(cuEventElapsedTime(&ms, a, b) == CUDA_SUCCESS && ms > 0 && ms < 10000, "events time work with a host clock");
    check(cuEventElapsedTime(&ms, a, untimed) == CUDA_ERROR_INVALID_HANDLE, "an event without timing cannot be timed");
    cuMemFree_v2(g);
    CUstream s;
    cuStreamCreate(&s, 1);
    check(cuStreamQuery(s) == CUDA_SUCCESS && cuStreamSynchronize(s) == CUDA_SUCCESS, "streams are always idle");
    cuStreamDestroy_v2(s);
    check(cuStreamSynchronize(s) == CUDA_ERROR_INVALID_HANDLE, "a destroyed stream is refused");
    check(cuStreamBeginCapture_v2(nullptr, 0) == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "the legacy stream cannot capture");
}

void test_graphs()
{
    CUstream s;
    cuStreamCreate(&s, 1);
    std::vector<long long> in(64, 0);
    CUdeviceptr din = upload(in), dout;
    cuMemAlloc_v2(&dout, sizeof(long long));
    cuMemsetD8_v2(dout, 0, sizeof(long long));
    std::vector<long long> host(64);
    int status = -1;
    check(cuStreamBeginCapture_v2(s, 0) == CUDA_SUCCESS && cuStreamIsCapturing(s, &status) == CUDA_SUCCESS && status == 1, "capture begins");
    CUfunction f;
    cuModuleGetFunction(&f, g_module, "st_tree_sum");
    int n = 64;
    void* params[] = {&din, &dout, &n};
    check(cuMemcpyHtoDAsync_v2(din, host.data(), 64 * sizeof(long long), s) == CUDA_SUCCESS &&
              cuLaunchKernel(f, 1, 1, 1, 64, 1, 1, 0, s, params, nullptr) == CUDA_SUCCESS,
          "a copy and a launch are captured");
    CUgraph graph;
    CUgraphExec exec;
    check(cuStreamEndCapture(s, &graph) == CUDA_SUCCESS && cuGraphInstantiateWithFlags(&exec, graph, 0) == CUDA_SUCCESS, "capture ends");
    check(download<long long>(dout, 1)[0] == 0, "captured work does not run while it is captured");
    for (int replay = 1; replay <= 3; replay++)
    {
        for (int i = 0; i < 64; i++) host[i] = replay * (i + 1);
        check(cuGraphLaunch(exec, s) == CUDA_SUCCESS && download<long long>(dout, 1)[0] == replay * 64 * 65 / 2,
              "a replay copies the host memory as it is then and runs the kernel (" + std::to_string(replay) + ")");
    }
    cuStreamBeginCapture_v2(s, 0);
    check(cuStreamSynchronize(s) == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "synchronising a capturing stream is refused");
    check(cuStreamEndCapture(s, &graph) == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "and invalidates the capture");
    cuGraphExecDestroy(exec);
    cuStreamDestroy_v2(s);
    cuMemFree_v2(din);
    cuMemFree_v2(dout);
}

void test_tree_sum()
{
    const int threads = 256, blocks = 40, n = threads * blocks - 17;
    std::vector<long long> in(n);
    for (int i = 0; i < n; i++) in[i] = (long long)(i % 1013) * 1000003 - 77;
    CUdeviceptr din = upload(in), dout;
    cuMemAlloc_v2(&dout, blocks * sizeof(long long));
    std::vector<long long> expected(blocks, 0);
    for (int i = 0; i < n; i++) expected[i / threads] += in[i];
    for (const char* schedule : {"forward", "reverse", "random"})
    {
        dicc_emu_set_option("DICC_EMU_SCHEDULE", schedule);
        check(launch("st_tree_sum", {blocks}, {threads}, 0, din, dout, n) == CUDA_SUCCESS, std::string("tree sum runs: ") + schedule);
        check(download<long long>(dout, blocks) == expected, std::string("tree sum is exact with barriers, schedule ") + schedule);
        check(launch("st_tree_sum_racy", {blocks}, {threads}, 0, din, dout, n) == CUDA_SUCCESS, "racy tree sum runs");
        // Reverse order runs each thread after all higher ones finished: a sequential order in which this tree is right.
        if (std::strcmp(schedule, "reverse") != 0)
            check(download<long long>(dout, blocks) != expected, std::string("the same tree without barriers is wrong, schedule ") + schedule);
    }
    dicc_emu_set_option("DICC_EMU_SCHEDULE", "forward");
    // 1024 threads, one block per OS thread at a time.
    std::vector<long long> ones(1024 * 3, 1);
    CUdeviceptr d1 = upload(ones);
    check(launch("st_tree_sum", {3}, {1024}, 0, d1, dout, 1024 * 3) == CUDA_SUCCESS, "tree sum of 1024 threads");
    check(download<long long>(dout, 3) == std::vector<long long>{1024, 1024, 1024}, "1024-thread barriers");
    cuMemFree_v2(d1);
    cuMemFree_v2(din);
    cuMemFree_v2(dout);
}

void test_early_return()
{
    const int threads = 96, blocks = 5, active = 37;
    std::vector<int> sentinel(threads * blocks, -1);
    CUdeviceptr out = upload(sentinel);
    for (const char* schedule : {"forward", "reverse"})
    {
        dicc_emu_set_option("DICC_EMU_SCHEDULE", schedule);
        cuMemcpyHtoD_v2(out, sentinel.data(), sentinel.size() * 4);
        check(launch("st_early_return", {blocks}, {threads}, 0, out, active) == CUDA_SUCCESS,
              std::string("threads that returned count as arrived at __syncthreads: ") + schedule);
        auto got = download<int>(out, sentinel.size());
        bool ok = true;
        for (int b = 0; b < blocks; b++)
            for (int t = 0; t < threads; t++) ok &= got[b * threads + t] == (t < active ? 42 + b : -1);
        check(ok, std::string("early return: values after the barrier: ") + schedule);
    }
    dicc_emu_set_option("DICC_EMU_SCHEDULE", "forward");
    cuMemFree_v2(out);
}

void test_warp_ops()
{
    const int threads = 64;
    std::vector<int> in(threads);
    for (int t = 0; t < threads; t++) in[t] = (t * 37 + 11) % 101;
    CUdeviceptr din = upload(in), dout;
    cuMemAlloc_v2(&dout, threads * 13 * sizeof(int));
    for (int width : {32, 16, 8, 4})
    {
        check(launch("st_warp_ops", {1}, {threads}, 0, din, dout, width) == CUDA_SUCCESS, "warp operations run");
        auto o = download<int>(dout, threads * 13);
        int wrong = 0;
        std::string first;
        for (int t = 0; t < threads; t++)
        {
            const int base = t & ~31, lane = t & 31, seg = lane & ~(width - 1), v = in[t];
            auto at = [&](int l) { return in[base + l]; };
            unsigned ballot1 = 0, half_ballot = 0;
            int big = 0;
            for (int l = 0; l < 32; l++)
            {
                ballot1 |= (unsigned)(at(l) & 1) << l;
                big += at(l) > 50;
                if ((l < 16) == (lane < 16)) half_ballot |= (unsigned)((at(l) & 2) != 0) << l;
            }
            const int xor9 = lane ^ 9;
            const int expect[13] = {
                at(3),
                at(seg + ((lane + 5) & (width - 1))),
                lane - seg >= 3 ? at(lane - 3) : v,
                lane - seg + 5 < width ? at(lane + 5) : v,
                xor9 <= seg + width - 1 ? at(xor9) : v, // earlier segments are reachable, later ones give the own value
                (int)ballot1,
                big,
                at(lane ^ 1),
                (int)half_ballot,
                v,       // delta 40 leaves the warp: own value
                at(31),  // srcLane -1 wraps to 31
                at(lane ^ 16),
                lane ^ 16,
            };
            for (int k = 0; k < 13; k++)
                if (o[t * 13 + k] != expect[k])
                {
                    if (wrong++ == 0)
                        first = "thread " + std::to_string(t) + " result " + std::to_string(k) + ": " + std::to_string(o[t * 13 + k]) +
                                ", expected " + std::to_string(expect[k]);
                }
        }
        check(wrong == 0, "warp operations with width " + std::to_string(width) + " (" + std::to_string(wrong) + " wrong; " + first + ")");
        // Spot checks written out by hand.
        if (width == 8)
        {
            check(o[0 * 13 + 4] == in[0], "xor 9, width 8: lane 0 would read lane 9 of a later segment, so it keeps its own value");
            check(o[9 * 13 + 4] == in[0], "xor 9, width 8: lane 9 reads lane 0 of an earlier segment");
            check(o[6 * 13 + 1] == in[3], "shfl lane + 5 = 11, width 8: wraps to lane 3");
            check(o[5 * 13 + 3] == in[5], "shfl_down 5, width 8: lane 5 + 5 leaves its segment, own value");
            check(o[13 * 13 + 2] == in[10], "shfl_up 3, width 8: lane 13 reads lane 10");
            check(o[10 * 13 + 2] == in[10], "shfl_up 3, width 8: lane 10 is at offset 2 of its segment, own value");
        }
        check(o[40 * 13 + 0] == in[35], "warp 1: __shfl_sync(3) reads its own warp's lane 3");
    }
    cuMemFree_v2(din);
    cuMemFree_v2(dout);

    CUdeviceptr out;
    cuMemAlloc_v2(&out, 64 * sizeof(int));
    check_message(launch("st_shfl_outside_mask", {1}, {32}, 0, out), CUDA_ERROR_LAUNCH_FAILED,
                  {"st_shfl_outside_mask", "not in the mask", "0x0000ffff"}, "a shuffle reading a lane outside its mask");
    cuMemFree_v2(out);
}

void test_atomics64()
{
    dicc_emu_set_option("DICC_EMU_WORKERS", "4"); // global atomics from several OS threads at once
    const int n = 200000;
    unsigned long long zero = 0, small = 0;
    long long large = 0;
    CUdeviceptr sum = upload(std::vector<unsigned long long>{zero}), largest = upload(std::vector<unsigned long long>{small}),
                smallest = upload(std::vector<long long>{large});
    check(launch("st_atomics64", {64}, {256}, 0, sum, largest, smallest, n) == CUDA_SUCCESS, "64-bit atomics run");
    unsigned long long expected_sum = 0;
    for (unsigned long long i = 0; i < (unsigned long long)n; i++) expected_sum += (i << 32) | 1u;
    const unsigned long long last = ((unsigned long long)(n - 1) << 32) | 1u;
    check(download<unsigned long long>(sum, 1)[0] == expected_sum, "atomicAdd of 64-bit values (shared, then global)");
    check(download<unsigned long long>(largest, 1)[0] == last * 3, "atomicMax on unsigned long long");
    check(download<long long>(smallest, 1)[0] == -(long long)last, "atomicMin on long long (negative values)");
    cuMemFree_v2(sum);
    cuMemFree_v2(largest);
    cuMemFree_v2(smallest);
}

void test_deadlocks()
{
    CUdeviceptr out;
    cuMemAlloc_v2(&out, 64 * sizeof(int));
    const auto start = std::chrono::steady_clock::now();
    check_message(launch("st_deadlock_barrier_vs_shuffle", {3}, {64}, 0, out), CUDA_ERROR_LAUNCH_FAILED,
                  {"deadlock", "st_deadlock_barrier_vs_shuffle", "block (0,0,0)", "threadIdx.x 16-63 wait at __syncthreads()",
                   "Warp 0: threadIdx.x 0-15 wait in __shfl_xor_sync(mask 0xffffffff)"},
                  "a barrier against a shuffle");
    check_message(launch("st_deadlock_exited_lane", {1}, {64}, 0, out), CUDA_ERROR_LAUNCH_FAILED,
                  {"deadlock", "st_deadlock_exited_lane", "__shfl_down_sync", "threadIdx.x 16-31 (exited)"},
                  "a shuffle waiting for lanes that returned");
    check_message(launch("st_deadlock_exited_lane", {1}, {20}, 0, out), CUDA_ERROR_LAUNCH_FAILED,
                  {"deadlock", "do not exist", "20 threads"}, "a full-warp shuffle in a 20-thread block");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    check(seconds < 3.0, "deadlocks are reported at once, not by the 10 s watchdog (" + std::to_string(seconds) + " s)");
    cuMemFree_v2(out);
}

void test_watchdog()
{
    dicc_emu_set_option("DICC_EMU_WATCHDOG_MS", "300");
    std::vector<int> zero(1, 0);
    CUdeviceptr flag = upload(zero);
    const auto start = std::chrono::steady_clock::now();
    check_message(launch("st_spin", {2}, {32}, 0, flag), CUDA_ERROR_LAUNCH_TIMEOUT, {"st_spin", "300 ms", "was stopped in thread"},
                  "an endless loop is stopped by the watchdog");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    check(seconds < 5.0, "the 300 ms watchdog fires, and its workers are back, within seconds (" + std::to_string(seconds) + " s)");
    check(!contains(dicc_emu_last_error(), "abandoned"), "the spinning workers were stopped, not abandoned");
    dicc_emu_set_option("DICC_EMU_WATCHDOG_MS", "10000");
    // The workers are back: a normal launch runs.
    std::vector<long long> ones(64, 1);
    CUdeviceptr d = upload(ones), out;
    cuMemAlloc_v2(&out, sizeof(long long));
    check(launch("st_tree_sum", {1}, {64}, 0, d, out, 64) == CUDA_SUCCESS && download<long long>(out, 1)[0] == 64,
          "launches run again after the watchdog");
    cuMemFree_v2(d);
    cuMemFree_v2(out);
    cuMemFree_v2(flag);
}

void test_out_of_bounds()
{
    CUdeviceptr a, page, odd, out;
    cuMemAlloc_v2(&a, 1000 * 4);    // 4000 bytes: a multiple of 16, flush against the guard page after it
    cuMemAlloc_v2(&page, 1024 * 4); // a whole page: flush against both guard pages
    cuMemAlloc_v2(&odd, 1001 * 4);  // 4004 bytes: 12 bytes of gap before the guard page
    cuMemAlloc_v2(&out, 16);
    check_message(launch("st_write_at", {1}, {32}, 0, a, 1000LL, 1.0f), CUDA_ERROR_ILLEGAL_ADDRESS,
                  {"st_write_at", "block (0,0,0)", "thread (0,0,0)", "write of", "just past the end of the 4000-byte allocation"},
                  "a write one element past the end");
    check_message(launch("st_read_at", {1}, {32}, 0, a, 1003LL, out), CUDA_ERROR_ILLEGAL_ADDRESS,
                  {"st_read_at", "read of", "12 bytes past the end of the 4000-byte allocation"}, "a read past the end");
    check_message(launch("st_read_at", {1}, {32}, 0, page, -1LL, out), CUDA_ERROR_ILLEGAL_ADDRESS,
                  {"st_read_at", "4 bytes before the start of the 4096-byte allocation"}, "a read before the start");
    check_message(launch("st_write_at", {1}, {32}, 0, a, -1LL, 2.0f), CUDA_ERROR_ILLEGAL_ADDRESS,
                  {"st_write_at", "4 bytes before the start of the 4000-byte allocation", "found after the launch"},
                  "a write into the gap before an allocation");
    check_message(launch("st_write_at", {1}, {32}, 0, odd, 1001LL, 3.0f), CUDA_ERROR_ILLEGAL_ADDRESS,
                  {"st_write_at", "just past the end of the 4004-byte allocation"}, "a write into the gap after an allocation");
    check(launch("st_write_at", {1}, {32}, 0, odd, 1000LL, 4.0f) == CUDA_SUCCESS, "the last element is writable");
    check_message(launch("st_read_at", {1}, {32}, 0, (CUdeviceptr)0, 3LL, out), CUDA_ERROR_ILLEGAL_ADDRESS, {"null pointer plus 12"},
                  "a null pointer read");
    CUdeviceptr freed;
    cuMemAlloc_v2(&freed, 256);
    cuMemFree_v2(freed);
    check_message(launch("st_read_at", {1}, {32}, 0, freed, 0LL, out), CUDA_ERROR_ILLEGAL_ADDRESS, {"cuMemFree_v2 has freed", "use after free"},
                  "a read of freed memory");
    check_message(launch("st_misaligned_atomic", {1}, {32}, 0, out), CUDA_ERROR_MISALIGNED_ADDRESS, {"st_misaligned_atomic", "misaligned atomic"},
                  "a misaligned atomic");
    std::vector<int> ones(32, 1);
    CUdeviceptr d = upload(ones), q;
    cuMemAlloc_v2(&q, 32 * 4);
    check_message(launch("st_divide", {1}, {32}, 0, d, 0, q), CUDA_ERROR_LAUNCH_FAILED, {"st_divide", "integer division by zero"},
                  "an integer division by zero");
    check_message(launch("st_stack_overflow", {1}, {32}, 0, q, 1000), CUDA_ERROR_HARDWARE_STACK_ERROR, {"st_stack_overflow", "overflowed"},
                  "a stack overflow");
    check(launch("st_write_at", {1}, {32}, 0, a, 999LL, 5.0f) == CUDA_SUCCESS && download<float>(a, 1000)[999] == 5.0f,
          "launches run again after faults");
    for (CUdeviceptr p : {a, page, odd, out, d, q}) cuMemFree_v2(p);

    // CUDA's 256-byte start alignment on request: the gap after the data grows, and is still checked.
    dicc_emu_set_option("DICC_EMU_ALIGN", "256");
    CUdeviceptr aligned;
    cuMemAlloc_v2(&aligned, 1000 * 4);
    cuMemAlloc_v2(&out, 16);
    check(aligned % 256 == 0, "DICC_EMU_ALIGN=256: allocations start 256-byte aligned");
    check_message(launch("st_write_at", {1}, {32}, 0, aligned, 1010LL, 1.0f), CUDA_ERROR_ILLEGAL_ADDRESS,
                  {"40 bytes past the end of the 4000-byte allocation", "found after the launch"}, "a write into the larger gap after the data");
    check_message(launch("st_read_at", {1}, {32}, 0, aligned, 1024LL, out), CUDA_ERROR_ILLEGAL_ADDRESS,
                  {"96 bytes past the end of the 4000-byte allocation"}, "a read beyond the gap hits the guard page");
    cuMemFree_v2(aligned);
    cuMemFree_v2(out);
    dicc_emu_set_option("DICC_EMU_ALIGN", "16");
}

void test_shared_memory()
{
    dicc_emu_set_option("DICC_EMU_WORKERS", "2");
    std::vector<int> zero(1, 0);
    CUdeviceptr flag = upload(zero), seen;
    cuMemAlloc_v2(&seen, 2 * 2 * 64 * sizeof(int));
    check(launch("st_shared_isolation", {2}, {64}, 64 * 4, flag, seen) == CUDA_SUCCESS, "shared isolation runs");
    auto s = download<int>(seen, 256);
    bool ok = true;
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 64; t++) ok &= s[(b * 2) * 64 + t] == b + 1 && s[(b * 2 + 1) * 64 + t] == b + 101;
    check(ok, "static and dynamic shared memory are per block while two blocks run at once");

    CUdeviceptr out;
    cuMemAlloc_v2(&out, 4);
    CUfunction f;
    cuModuleGetFunction(&f, g_module, "st_dynamic_fill");
    const int words = 30000; // 120000 bytes
    check_message(launch("st_dynamic_fill", {1}, {256}, words * 4, out, words), CUDA_ERROR_INVALID_VALUE, {"st_dynamic_fill", "49152"},
                  "more than 48 KiB of dynamic shared memory without the opt-in");
    check(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, words * 4) == CUDA_SUCCESS, "opt-in");
    check(launch("st_dynamic_fill", {1}, {256}, words * 4, out, words) == CUDA_SUCCESS, "120000 bytes of dynamic shared memory");
    long long expected = (long long)words * (words - 1) / 2 % 1000003;
    check(download<int>(out, 1)[0] == (int)expected, "dynamic shared memory holds what was written");
    check_message(launch("st_dynamic_fill", {1}, {256}, 1000 * 4, out, 1001), CUDA_ERROR_ILLEGAL_ADDRESS, {"st_dynamic_fill", "byte 4000"},
                  "a write past the launch's dynamic shared memory");
    cuMemFree_v2(out);
    cuMemFree_v2(seen);
    cuMemFree_v2(flag);
}

void test_launch_shapes()
{
    const Dim grid{3, 2, 2}, block{4, 3, 5};
    const unsigned total = 3 * 2 * 2 * 4 * 3 * 5;
    CUdeviceptr out;
    cuMemAlloc_v2(&out, total * 4);
    check(launch("st_coordinates", grid, block, 0, out) == CUDA_SUCCESS, "3-D grid of 3-D blocks");
    auto got = download<unsigned>(out, total);
    bool ok = true;
    for (unsigned bz = 0; bz < 2; bz++)
        for (unsigned by = 0; by < 2; by++)
            for (unsigned bx = 0; bx < 3; bx++)
                for (unsigned tz = 0; tz < 5; tz++)
                    for (unsigned ty = 0; ty < 3; ty++)
                        for (unsigned tx = 0; tx < 4; tx++)
                        {
                            unsigned i = ((bz * 2 + by) * 3 + bx) * 60 + (tz * 3 + ty) * 4 + tx;
                            ok &= got[i] == ((bz << 24) | (by << 16) | (bx << 12) | (tz << 8) | (ty << 4) | tx);
                        }
    check(ok, "threadIdx, blockIdx, blockDim and gridDim in three dimensions");
    check_message(launch("st_coordinates", {1}, {1025}, 0, out), CUDA_ERROR_INVALID_VALUE, {"1024 threads"}, "a block of 1025 threads");
    check_message(launch("st_coordinates", {0}, {32}, 0, out), CUDA_ERROR_INVALID_VALUE, {"grid (0,1,1)"}, "an empty grid");
    cuMemFree_v2(out);
}
} // namespace

int main()
{
    setenv("DICC_EMU_QUIET", "1", 1); // the failures provoked here are expected: keep stderr for real ones
    test_initialisation_and_modules();
    if (g_failed == 0)
    {
        test_memory_api();
        test_tree_sum();
        test_graphs();
        test_early_return();
        test_warp_ops();
        test_atomics64();
        test_deadlocks();
        test_watchdog();
        test_out_of_bounds();
        test_shared_memory();
        test_launch_shapes();
    }
    std::printf("selftest: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
