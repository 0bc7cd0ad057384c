namespace Dicc.Engine.Backends.Cuda.Compilation;

/// <summary>What NVRTC is asked to produce for a device: a cubin for its own architecture when NVRTC knows it,
/// otherwise PTX for the newest architecture NVRTC knows that the device can run (the driver JIT-compiles it).</summary>
internal readonly record struct KernelTarget(int Architecture, KernelImageKind Kind)
{
    /// <summary>The NVRTC option, e.g. "--gpu-architecture=sm_90" or "--gpu-architecture=compute_90".</summary>
    public string ArchitectureOption => $"--gpu-architecture={(Kind == KernelImageKind.Cubin ? "sm" : "compute")}_{Architecture}";

    /// <summary>The options every Dicc kernel is compiled with for this target (no fast math: results match the CPU backend).</summary>
    public IReadOnlyList<string> Options => [ArchitectureOption];

    /// <param name="computeCapability">The device's, as a number (90 for 9.0).</param>
    /// <param name="supported">NVRTC's supported real architectures (nvrtcGetSupportedArchs).</param>
    public static KernelTarget For(int computeCapability, IReadOnlyList<int> supported)
    {
        if (supported.Contains(computeCapability)) return new KernelTarget(computeCapability, KernelImageKind.Cubin);
        // PTX for compute_XX runs on every device of compute capability XX or newer.
        int best = supported.Where(a => a <= computeCapability).DefaultIfEmpty(-1).Max();
        if (best < 0)
            throw new NotSupportedException(
                $"NVRTC supports architectures {string.Join(", ", supported)}, none of which runs on a compute capability {computeCapability / 10}.{computeCapability % 10} device.");
        return new KernelTarget(best, KernelImageKind.Ptx);
    }

    public override string ToString() => $"{(Kind == KernelImageKind.Cubin ? "sm" : "compute")}_{Architecture} {Kind}";
}
