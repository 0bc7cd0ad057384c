using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Dicc.Engine.Backends.Cuda;

/// <summary>Connects <c>--device cuda|cuda:N|auto</c> (<see cref="BackendFactory"/>) to the CUDA backend when the engine loads.</summary>
internal static class CudaBackendRegistration
{
    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255", Justification = "BackendFactory lives beside the CPU backend and must not depend on CUDA; this only sets two delegates.")]
    internal static void Register()
    {
        BackendFactory.CudaFactory = ordinal => CudaBackend.Create(ordinal);
        BackendFactory.CudaAvailable = CudaBackend.IsAvailable;
    }
}
