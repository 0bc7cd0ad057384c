using Dicc.Engine.Backends.Cuda.Interop;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>Grid or block dimensions (CUDA's dim3).</summary>
internal readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    public static implicit operator Dim3(uint x) => new(x);
    public ulong Volume => (ulong)X * Y * Z;
    public override string ToString() => $"({X}, {Y}, {Z})";
}

/// <summary>How a kernel is launched: grid and block dimensions and dynamic shared memory per block.</summary>
internal readonly record struct LaunchConfig(Dim3 Grid, Dim3 Block, uint SharedMemoryBytes = 0);

/// <summary>
/// Where a packed launch goes: the driver, or a recorder in tests. The sizes and kinds describe each argument
/// (bytes; <see cref="KernelArgument.Kind"/>); both are null for a launch without arguments.
/// </summary>
internal unsafe interface IKernelLauncher
{
    void Launch(nint function, in LaunchConfig config, nint stream, void** arguments, int* sizes, byte* kinds, int count);
}

/// <summary>
/// A kernel of a loaded module. Launches are typed and allocation-free: <c>Launch(config, stream, a1, a2, ...)</c>
/// takes the arguments as <see cref="KernelArgument"/>s on the stack, packs pointers to them into a stack array and
/// calls cuLaunchKernel.
/// Nothing is boxed and nothing synchronises: the launch is queued on the stream and the call returns.
/// Arguments must have exactly the size of the kernel's parameters: <see cref="DevicePointer"/> for pointers,
/// <c>long</c> for <c>long long</c>, <c>int</c>, <c>float</c>, <c>ulong</c> for <c>unsigned long long</c>.
/// A null stream means the context's stream.
/// </summary>
internal sealed unsafe class CudaKernel
{
    private readonly CudaContext? _context;
    private readonly IKernelLauncher _launcher;
    private readonly nint _function;

    internal CudaKernel(CudaContext context, CudaModule module, nint function, string name)
        : this(context, module, function, name, DriverLauncher.Instance) { }

    internal CudaKernel(CudaContext? context, CudaModule? module, nint function, string name, IKernelLauncher launcher)
    {
        _context = context;
        Module = module;
        _function = function;
        Name = name;
        _launcher = launcher;
    }

    public string Name { get; }
    public CudaModule? Module { get; }

    /// <summary>The CUfunction handle.</summary>
    public nint Handle => _function;

    /// <summary>The most threads per block this kernel can be launched with (its register use limits it).</summary>
    public int MaxThreadsPerBlock => Attribute(CuFunctionAttribute.MaxThreadsPerBlock);

    public int RegistersPerThread => Attribute(CuFunctionAttribute.NumRegisters);

    /// <summary>Allows launches with more than 48 KiB of dynamic shared memory (up to the device's opt-in limit).</summary>
    public void SetMaxDynamicSharedMemory(int bytes)
    {
        _context?.Bind();
        ThrowIfFailed(CudaDriver.cuFuncSetAttribute(_function, CuFunctionAttribute.MaxDynamicSharedSizeBytes, bytes));
    }

    /// <summary>
    /// A one-dimensional launch for a grid-stride kernel over <paramref name="elements"/> items: enough blocks
    /// to cover them, at most <paramref name="blocksPerMultiprocessor"/> per SM (more only adds scheduling).
    /// </summary>
    public static LaunchConfig ForElements(long elements, int multiprocessors, uint threadsPerBlock = 256, int blocksPerMultiprocessor = 32)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(elements);
        long blocks = (elements + threadsPerBlock - 1) / threadsPerBlock;
        blocks = Math.Clamp(blocks, 1, Math.Max(1, (long)multiprocessors * blocksPerMultiprocessor));
        return new LaunchConfig(new Dim3((uint)blocks), new Dim3(threadsPerBlock));
    }

    private int Attribute(CuFunctionAttribute attribute)
    {
        _context?.Bind();
        ThrowIfFailed(CudaDriver.cuFuncGetAttribute(out int v, attribute, _function));
        return v;
    }

    /// <summary>
    /// Queues the kernel on <paramref name="stream"/> (null: the context's stream) with these arguments, in the
    /// order of the kernel's parameters. Each argument must have exactly its parameter's size: <see cref="DevicePointer"/>
    /// for pointers, <c>long</c> for <c>long long</c>, <c>ulong</c> for <c>unsigned long long</c>, <c>int</c>, <c>float</c>,
    /// and <see cref="KernelArgument.Struct{T}"/> for struct parameters (KernelAbiTests checks every launch against the PTX).
    /// </summary>
    public void Launch(in LaunchConfig config, CudaStream? stream, params ReadOnlySpan<KernelArgument> arguments)
    {
        int count = arguments.Length;
        void** pointers = stackalloc void*[Math.Max(1, count)];
        int* sizes = stackalloc int[Math.Max(1, count)];
        byte* kinds = stackalloc byte[Math.Max(1, count)];
        fixed (KernelArgument* a = arguments)
        {
            KernelArgument.Pack(a, count, pointers, sizes, kinds);
            nint s = stream is not null ? stream.Handle : _context?.Stream.Handle ?? 0;
            _context?.Bind();
            if (count == 0) _launcher.Launch(_function, config, s, null, null, null, 0);
            else _launcher.Launch(_function, config, s, pointers, sizes, kinds, count);
        }
    }

    private sealed class DriverLauncher : IKernelLauncher
    {
        public static readonly DriverLauncher Instance = new();

        public void Launch(nint function, in LaunchConfig config, nint stream, void** arguments, int* sizes, byte* kinds, int count) =>
            ThrowIfFailed(CudaDriver.cuLaunchKernel(function,
                config.Grid.X, config.Grid.Y, config.Grid.Z,
                config.Block.X, config.Block.Y, config.Block.Z,
                config.SharedMemoryBytes, stream, arguments, null));
    }
}
