using System.Runtime.InteropServices;
using System.Text;
using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Compilation;

/// <summary>What a compiled kernel image is.</summary>
internal enum KernelImageKind
{
    /// <summary>PTX text for a virtual architecture (compute_XX), JIT-compiled by the driver at load.</summary>
    Ptx,

    /// <summary>Machine code for one real architecture (sm_XX).</summary>
    Cubin,

    /// <summary>nvcc's bundle of cubins and PTX for several architectures.</summary>
    Fatbin,
}

/// <summary>
/// One NVRTC program (ManagedCuda's name): CUDA C source plus in-memory headers, compiled with options to
/// PTX or a cubin. NVRTC needs no GPU, so kernels can be compiled (and checked) on any machine that has it.
/// </summary>
internal sealed unsafe class CudaRuntimeCompiler : IDisposable
{
    private nint _program;

    /// <param name="source">CUDA C source.</param>
    /// <param name="name">Name used in diagnostics (e.g. "softmax.cu").</param>
    /// <param name="headers">Headers the source includes by name, e.g. ("common.cuh", text).</param>
    public CudaRuntimeCompiler(string source, string name, IEnumerable<KeyValuePair<string, string>>? headers = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrEmpty(name);
        CudaLibraries.Require(CudaLibrary.Nvrtc);
        Name = name;
        var h = headers?.ToArray() ?? [];
        using var strings = new Utf8Strings([source, name, .. h.Select(p => p.Value), .. h.Select(p => p.Key)]);
        byte** contents = strings.Pointers + 2, includeNames = strings.Pointers + 2 + h.Length;
        ThrowIfFailed(Nvrtc.nvrtcCreateProgram(out _program, strings.Pointers[0], strings.Pointers[1], h.Length,
            h.Length == 0 ? null : contents, h.Length == 0 ? null : includeNames));
    }

    public string Name { get; }

    /// <summary>The compiler's log of the last <see cref="Compile"/> (warnings, or errors).</summary>
    public string Log { get; private set; } = "";

    /// <summary>NVRTC's version, e.g. (12, 8).</summary>
    public static (int Major, int Minor) Version
    {
        get
        {
            CudaLibraries.Require(CudaLibrary.Nvrtc);
            ThrowIfFailed(Nvrtc.nvrtcVersion(out int major, out int minor));
            return (major, minor);
        }
    }

    /// <summary>The real architectures NVRTC can generate cubins for, as numbers (e.g. 80, 86, 89, 90), ascending.</summary>
    public static IReadOnlyList<int> SupportedArchitectures
    {
        get
        {
            CudaLibraries.Require(CudaLibrary.Nvrtc);
            ThrowIfFailed(Nvrtc.nvrtcGetNumSupportedArchs(out int n));
            var archs = new int[n];
            fixed (int* p = archs) ThrowIfFailed(Nvrtc.nvrtcGetSupportedArchs(p));
            Array.Sort(archs);
            return archs;
        }
    }

    /// <summary>
    /// Compiles with <paramref name="options"/> (e.g. "--gpu-architecture=sm_90"). Throws
    /// <see cref="CudaCompilationException"/> with the log when the source does not compile.
    /// </summary>
    public void Compile(IReadOnlyList<string> options)
    {
        ObjectDisposedException.ThrowIf(_program == 0, this);
        using var strings = new Utf8Strings(options);
        var status = Nvrtc.nvrtcCompileProgram(_program, options.Count, options.Count == 0 ? null : strings.Pointers);
        Log = ReadLog();
        if (status == NvrtcResult.Compilation) throw new CudaCompilationException(Name, Log, string.Join(' ', options));
        ThrowIfFailed(status);
    }

    /// <summary>The PTX of a successful compilation, NUL-terminated (as cuModuleLoadData wants it).</summary>
    public byte[] GetPtx()
    {
        ObjectDisposedException.ThrowIf(_program == 0, this);
        ThrowIfFailed(Nvrtc.nvrtcGetPTXSize(_program, out nuint size));
        var ptx = new byte[(int)size];
        fixed (byte* p = ptx) ThrowIfFailed(Nvrtc.nvrtcGetPTX(_program, p));
        return ptx;
    }

    /// <summary>The cubin of a compilation for a real architecture (sm_XX); empty for a virtual one.</summary>
    public byte[] GetCubin()
    {
        ObjectDisposedException.ThrowIf(_program == 0, this);
        ThrowIfFailed(Nvrtc.nvrtcGetCUBINSize(_program, out nuint size));
        var cubin = new byte[(int)size];
        if (cubin.Length > 0)
            fixed (byte* p = cubin) ThrowIfFailed(Nvrtc.nvrtcGetCUBIN(_program, p));
        return cubin;
    }

    private string ReadLog()
    {
        if (Nvrtc.nvrtcGetProgramLogSize(_program, out nuint size) != NvrtcResult.Success || size <= 1) return "";
        var log = new byte[(int)size];
        fixed (byte* p = log)
        {
            if (Nvrtc.nvrtcGetProgramLog(_program, p) != NvrtcResult.Success) return "";
            return Marshal.PtrToStringUTF8((nint)p) ?? "";
        }
    }

    public void Dispose()
    {
        if (_program == 0) return;
        Nvrtc.nvrtcDestroyProgram(ref _program);
        _program = 0;
    }

    /// <summary>NUL-terminated UTF-8 copies of strings in native memory, and an array of pointers to them.</summary>
    private sealed class Utf8Strings : IDisposable
    {
        private readonly nint[] _blocks;

        public Utf8Strings(IReadOnlyList<string> strings)
        {
            Pointers = (byte**)NativeMemory.Alloc((nuint)Math.Max(1, strings.Count), (nuint)sizeof(byte*));
            _blocks = new nint[strings.Count];
            for (int i = 0; i < strings.Count; i++)
            {
                byte[] bytes = Encoding.UTF8.GetBytes(strings[i]);
                byte* block = (byte*)NativeMemory.Alloc((nuint)bytes.Length + 1);
                bytes.CopyTo(new Span<byte>(block, bytes.Length));
                block[bytes.Length] = 0;
                _blocks[i] = (nint)block;
                Pointers[i] = block;
            }
        }

        public byte** Pointers { get; }

        public void Dispose()
        {
            foreach (nint b in _blocks) NativeMemory.Free((void*)b);
            NativeMemory.Free(Pointers);
        }
    }
}
