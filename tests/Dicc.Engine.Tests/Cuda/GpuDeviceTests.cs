using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda;
using Dicc.Engine.Backends.Cuda.Runtime;
using NUnit.Framework;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Cuda;

[Category("Gpu")]
public class GpuDeviceTests : GpuFixture
{
    [Test]
    public void Device_ReportsNameCapabilityAndMemory()
    {
        var d = Context.Device;
        TestContext.Out.WriteLine(d);
        Assert.That(d.Name, Is.Not.Empty);
        Assert.That(d.ComputeCapability, Is.GreaterThanOrEqualTo(50));
        Assert.That(d.TotalMemoryBytes, Is.GreaterThan(1L << 30));
        Assert.That(d.MultiprocessorCount, Is.GreaterThan(0));
        Assert.That(d.WarpSize, Is.EqualTo(32));
        Assert.That(CudaDevices.Count, Is.GreaterThanOrEqualTo(1));
        Assert.That(CudaDevices.DriverVersion, Is.GreaterThanOrEqualTo(11020));
    }

    [Test]
    public void MemoryInfo_FreeIsPositiveAndAtMostTotal()
    {
        var (free, total) = Context.MemoryInfo();
        Assert.That(free, Is.GreaterThan(0).And.LessThanOrEqualTo(total));
        Assert.That(total, Is.EqualTo(Context.Device.TotalMemoryBytes));
    }

    [Test]
    public void Probe_ReportsTheDeviceAndEveryLibrary()
    {
        var report = CudaInfo.Probe();
        TestContext.Out.WriteLine(report.Format());
        Assert.That(report.Devices, Is.Not.Empty);
        var missing = report.Libraries.Where(l => !l.IsLoaded);
        if (TestSupport.EmulatedDevice) // the driver and NVRTC must be there; cuBLAS and cuDNN are GPU-only
            missing = missing.Where(l => l.Library is CudaLibrary.Driver or CudaLibrary.Nvrtc);
        Assert.That(missing.Select(l => $"{l.Name}: {l.Error}"), Is.Empty);
        if (!TestSupport.EmulatedDevice) Assert.That(report.IsUsable, Is.True);
    }

    [Test]
    public void DisposingTheContext_FreesEverythingItOwnsAndLaterUseIsRefused()
    {
        var context = CudaContext.Create();
        var buffer = context.Allocate<float>(1000);
        var stream = context.CreateStream();
        var evt = context.CreateEvent();
        var pinned = context.AllocatePinned<float>(10);
        Assert.That(context.ResourceCount, Is.EqualTo(4));
        stream.Dispose();
        Assert.That(context.ResourceCount, Is.EqualTo(3), "a resource disposed by hand leaves the context's list");

        context.Dispose();
        Assert.That(buffer.IsDisposed && evt.IsDisposed && pinned.IsDisposed, Is.True);
        Assert.That(context.ResourceCount, Is.Zero);
        Assert.Throws<ObjectDisposedException>(() => buffer.CopyToHost(new float[1000]));
        Assert.Throws<ObjectDisposedException>(() => context.Allocate<float>(1));

        // The shared primary context is still usable from the fixture's own context.
        using var again = Context.Allocate<float>(4);
        again.CopyToDevice([1, 2, 3, 4]);
        Assert.That(again.ToArray(), Is.EqualTo(new float[] { 1, 2, 3, 4 }));
    }
}

[Category("Gpu")]
public class GpuMemoryTests : GpuFixture
{
    [Test]
    public void SynchronousCopies_RoundTripExactly()
    {
        var data = TestSupport.RandomFloats(100_003, 1);
        using var d = Upload(data);
        Assert.That(d.SizeInBytes, Is.EqualTo(100_003L * 4));
        Assert.That(d.ToArray(), Is.EqualTo(data));

        using var copy = Context.Allocate<float>(data.Length);
        copy.CopyToDevice(d);
        Assert.That(copy.ToArray(), Is.EqualTo(data));
    }

    [Test]
    public void AsyncCopiesThroughPinnedMemory_ArriveAfterTheStreamSynchronises()
    {
        const int n = 1 << 20;
        var stream = Context.CreateStream();
        using var pinnedIn = Context.AllocatePinned<int>(n);
        using var pinnedOut = Context.AllocatePinned<int>(n);
        for (int i = 0; i < n; i++) pinnedIn.Span[i] = i * 3 - 7;
        using var d = Context.Allocate<int>(n);
        d.CopyToDeviceAsync(pinnedIn, stream);
        d.CopyToHostAsync(pinnedOut, stream);
        stream.Synchronize();
        Assert.That(stream.IsIdle, Is.True);
        Assert.That(pinnedOut.Span.ToArray(), Is.EqualTo(pinnedIn.Span.ToArray()));
        stream.Dispose();
    }

    [Test]
    public void Memset_AndSlices_TouchExactlyTheirBytes()
    {
        using var d = Upload(Enumerable.Range(0, 64).Select(i => (float)i).ToArray());
        var middle = d.Slice(16, 32);
        middle.MemsetAsync(BitConverter.SingleToUInt32Bits(-1.5f), Context.Stream);
        Context.Stream.Synchronize();
        var all = d.ToArray();
        for (int i = 0; i < 64; i++) Assert.That(all[i], Is.EqualTo(i is >= 16 and < 48 ? -1.5f : i), $"element {i}");
        d.Memset(0);
        Assert.That(d.ToArray(), Is.All.EqualTo(0f));
    }
}

[Category("Gpu")]
public class GpuStreamTests : GpuFixture
{
    [Test]
    public void Events_TimeWorkOnAStream()
    {
        const int n = 1 << 24;
        using var d = Context.Allocate<float>(n);
        using var start = Context.CreateEvent();
        using var end = Context.CreateEvent();
        var stream = Context.Stream;
        start.Record(stream);
        for (int i = 0; i < 10; i++) d.MemsetAsync(BitConverter.SingleToUInt32Bits(i), stream);
        end.Record(stream);
        end.Synchronize();
        Assert.That(end.IsComplete, Is.True);
        float ms = end.ElapsedMillisecondsSince(start);
        // 10 fills of 64 MiB: at least ~0.1 ms at any plausible bandwidth, far under a second on a GPU (the emulated
        // device fills host memory, on a machine that may be busy: there only the order of the events is checked).
        TestContext.Out.WriteLine($"10 x 64 MiB fills: {ms:F3} ms ({10.0 * n * 4 / (ms * 1e-3) / 1e9:F0} GB/s)");
        Assert.That(ms, Is.GreaterThan(0.05f).And.LessThan(TestSupport.EmulatedDevice ? 600_000f : 1000f));
    }

    [Test]
    public void StreamWaitingOnAnEvent_SeesTheOtherStreamsWork()
    {
        const int n = 1 << 22;
        var producer = Context.CreateStream();
        var consumer = Context.CreateStream();
        using var done = Context.CreateEvent(timing: false);
        using var x = Context.Allocate<float>(n);
        using var y = Context.Allocate<float>(n);
        for (int round = 1; round <= 3; round++)
        {
            x.MemsetAsync(BitConverter.SingleToUInt32Bits(round), producer);
            done.Record(producer);
            consumer.Wait(done);
            y.CopyToDeviceAsync(x, consumer);
            consumer.Synchronize();
            var host = new float[n];
            y.CopyToHostAsync(host, consumer);
            Assert.That(host, Is.All.EqualTo((float)round), $"round {round}");
        }
        producer.Dispose();
        consumer.Dispose();
    }
}
