using Dicc.Engine.Backends.Cuda.Interop;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>Loaded device code (from PTX, a cubin or a fatbin) and the kernels looked up in it.</summary>
internal sealed unsafe class CudaModule : CudaResource
{
    private readonly Dictionary<string, CudaKernel> _kernels = new(StringComparer.Ordinal);
    private nint _handle;

    internal CudaModule(CudaContext context, ReadOnlySpan<byte> image, string name) : base(context)
    {
        if (image.IsEmpty) throw new ArgumentException($"The image of module {name} is empty.", nameof(image));
        Name = name;
        // PTX must be NUL-terminated; cubins and fatbins carry their size, so a trailing zero does no harm.
        byte[]? copy = null;
        if (image[^1] != 0)
        {
            copy = new byte[image.Length + 1];
            image.CopyTo(copy);
        }
        context.Bind();
        try
        {
            fixed (byte* p = copy ?? image) ThrowIfFailed(CudaDriver.cuModuleLoadData(out _handle, p));
        }
        catch
        {
            Context.Unregister(this);
            throw;
        }
    }

    public string Name { get; }

    /// <summary>Where the image came from (a prebuilt fatbin, the kernel cache, NVRTC), for logs.</summary>
    public string Origin { get; internal set; } = "";

    /// <summary>The kernel named <paramref name="name"/> (an extern "C" __global__ function); looked up once.</summary>
    public CudaKernel GetKernel(string name)
    {
        ThrowIfDisposed();
        lock (_kernels)
        {
            if (_kernels.TryGetValue(name, out var k)) return k;
            Context.Bind();
            var status = CudaDriver.cuModuleGetFunction(out nint function, _handle, name);
            if (status == CuResult.NotFound)
                throw new ArgumentException($"Module {Name} has no kernel named '{name}'.", nameof(name));
            ThrowIfFailed(status);
            k = new CudaKernel(Context, this, function, name);
            _kernels[name] = k;
            return k;
        }
    }

    internal override int DisposalRank => 3;

    private protected override void Release()
    {
        if (_handle == 0) return;
        CudaDriver.cuModuleUnload(_handle);
        _handle = 0;
    }
}
