using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Dicc.Benchmarks;

/// <summary>
/// PyTorch's CPU training step as a peer process (benchmarks/pytorch/cpu_step.py in server mode): started once per
/// configuration, then asked for a few steps at a time, so that its rounds can alternate with ours.
/// </summary>
internal sealed class PyTorchPeer : IDisposable
{
    private readonly Process _process;

    private PyTorchPeer(Process process, JsonElement info)
    {
        _process = process;
        Info = info;
    }

    /// <summary>The script's ready line: versions, threads, memory format, oneDNN convolution implementations.</summary>
    public JsonElement Info { get; }

    public string MemoryFormat => Info.GetProperty("memory_format").GetString() ?? "?";

    /// <summary>glibc malloc settings that keep freed memory in the process (no mmap per large block, no trimming).</summary>
    public const string KeepFreedMemory = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184";

    /// <summary>The allocator settings the peer ran with.</summary>
    public static string AllocatorSettings => Environment.GetEnvironmentVariable("GLIBC_TUNABLES") ?? KeepFreedMemory;

    /// <summary>"PyTorch 1.13.0a0, oneDNN 2.6.3 (jit:avx512_core, brgconv:avx512_core convolutions), ATen AVX2, channels_last".</summary>
    public string Describe()
    {
        var convs = string.Join(", ", Info.GetProperty("convolution_implementations").EnumerateArray().Select(e => e.GetString()));
        return $"PyTorch {Info.GetProperty("torch").GetString()}, oneDNN {Str("onednn")} ({convs} convolutions), " +
               $"ATen {Str("aten_cpu_capability")}, {MemoryFormat}, {Info.GetProperty("threads").GetInt32()} threads, GLIBC_TUNABLES={AllocatorSettings}";
    }

    private string Str(string name) => Info.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "?";

    /// <summary>The script, found next to the benchmark sources (run from the repository root or any folder below it).</summary>
    public static string? FindScript()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "benchmarks", "pytorch", "cpu_step.py");
            if (File.Exists(candidate)) return candidate;
        }
        string fromBinary = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../pytorch/cpu_step.py"));
        return File.Exists(fromBinary) ? fromBinary : null;
    }

    /// <summary>Starts the peer and waits until it has built, warmed up and chosen its memory format.</summary>
    public static PyTorchPeer Start(string python, string script, int batch, int threads, int depth, double width, string memoryFormat)
    {
        var start = new ProcessStartInfo(python)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = false,
            UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     script, "--batch", batch.ToString(CultureInfo.InvariantCulture), "--threads", threads.ToString(CultureInfo.InvariantCulture),
                     "--depth", depth.ToString(CultureInfo.InvariantCulture), "--width", width.ToString(CultureInfo.InvariantCulture),
                     "--memory-format", memoryFormat,
                 })
            start.ArgumentList.Add(a);
        // The peer's OpenMP threads: exactly the count asked for (it also calls torch.set_num_threads).
        start.Environment["OMP_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
        // The peer at its best: PyTorch's CPU allocator frees every activation after each step, and glibc returns the
        // large blocks to the kernel (munmap), so each step page-faults its activations in again. Measured on the
        // development machine (2026-11-29, batch 32): 0.92-1.02 s per step with glibc's defaults, 0.50-0.58 s with
        // freed memory kept (what jemalloc or tcmalloc, as PyTorch's tuning guide recommends, also achieve). A caller's
        // own GLIBC_TUNABLES wins.
        if (Environment.GetEnvironmentVariable("GLIBC_TUNABLES") is null) start.Environment["GLIBC_TUNABLES"] = KeepFreedMemory;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {python}.");
        var line = process.StandardOutput.ReadLine();
        if (line is null)
        {
            process.WaitForExit();
            throw new InvalidOperationException($"{python} {script} exited with code {process.ExitCode} before it was ready.");
        }
        return new PyTorchPeer(process, JsonDocument.Parse(line).RootElement.Clone());
    }

    /// <summary>Runs <paramref name="steps"/> steps; returns each step's wall and process-CPU seconds.</summary>
    public (double[] Wall, double[] Cpu) Run(int steps)
    {
        _process.StandardInput.WriteLine($"run {steps}");
        _process.StandardInput.Flush();
        var line = _process.StandardOutput.ReadLine() ?? throw new InvalidOperationException("The PyTorch peer stopped answering.");
        var json = JsonDocument.Parse(line).RootElement;
        return ([.. json.GetProperty("wall_s").EnumerateArray().Select(e => e.GetDouble())],
                [.. json.GetProperty("cpu_s").EnumerateArray().Select(e => e.GetDouble())]);
    }

    /// <summary>Asks the peer to stop; returns its peak resident memory in MiB.</summary>
    public double Quit()
    {
        _process.StandardInput.WriteLine("quit");
        _process.StandardInput.Flush();
        var line = _process.StandardOutput.ReadLine();
        _process.WaitForExit();
        return line is null ? double.NaN : JsonDocument.Parse(line).RootElement.GetProperty("peak_rss_mib").GetDouble();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            try { _process.StandardInput.Close(); } catch (IOException) { }
            if (!_process.WaitForExit(5000)) _process.Kill();
        }
        _process.Dispose();
    }
}
