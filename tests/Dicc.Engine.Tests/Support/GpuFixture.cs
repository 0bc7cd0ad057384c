using Dicc.Engine.Backends.Cuda.Runtime;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Support;

/// <summary>A fixture with a context on device 0; skipped, with the reason, where there is none.</summary>
public abstract class GpuFixture
{
    private protected CudaContext Context { get; private set; } = null!;

    [OneTimeSetUp]
    public void OpenDevice() => Context = TestSupport.CreateContextOrIgnore();

    [OneTimeTearDown]
    public void CloseDevice() => Context?.Dispose();

    private protected CudaDeviceVariable<float> Upload(float[] data)
    {
        var v = Context.Allocate<float>(data.Length);
        v.CopyToDevice(data);
        return v;
    }

    private protected CudaDeviceVariable<int> Upload(int[] data)
    {
        var v = Context.Allocate<int>(data.Length);
        v.CopyToDevice(data);
        return v;
    }
}
