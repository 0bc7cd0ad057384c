using System.Runtime.InteropServices;
using Dicc.Engine.Backends.Cuda.Compilation;
using NUnit.Framework;

// "Emulator" sorts after "Backends" and "Cuda": NUnit runs namespaces in name order, so this runs after the
// tests that launch the kernels. Run alone (or first) it fails, loudly, rather than passing by mistake.
namespace Dicc.Engine.Tests.Emulator;

/// <summary>
/// Every kernel of kernels/ ran on the emulated device in this run, so no kernel escapes the CPU oracle: a new
/// kernel needs a parity test that runs here.
/// </summary>
public class KernelCoverageTests
{
    [Test]
    public unsafe void EveryKernelOfOurs_RanOnTheEmulatedDevice()
    {
        string library = EmulatedDeviceSetup.Library ?? throw new InvalidOperationException("The emulated device was not set up.");
        var launches = (delegate* unmanaged<byte*, long>)NativeLibrary.GetExport(NativeLibrary.Load(library), "dicc_emu_launches");
        var never = new List<string>();
        int kernels = 0;
        foreach (string module in KernelSources.Modules)
            foreach (string kernel in KernelSources.KernelNames(module))
            {
                long count;
                fixed (byte* name = System.Text.Encoding.ASCII.GetBytes(kernel + "\0")) count = launches(name);
                TestContext.Out.WriteLine($"{module,-18} {kernel,-40} {count,8} launches");
                kernels++;
                if (count <= 0) never.Add($"{module}: {kernel}");
            }
        Assert.That(kernels, Is.GreaterThanOrEqualTo(33), "kernels found in the embedded sources");
        Assert.That(never, Is.Empty, "kernels that no test ran on the emulated device");
    }
}
