using Dicc.Engine.Tests.Support;
using NUnit.Framework;

// No namespace: NUnit runs this before and after every test of the assembly.

/// <summary>
/// Points the engine's CUDA driver at the emulated device built beside the tests (the MSBuild target of this
/// project), before anything loads a driver. Without it every test is skipped with the build's reason, or fails
/// when CI is set (CI installs g++ through scripts/install-prerequisites.sh, so a missing device is a defect there).
/// </summary>
[SetUpFixture]
public sealed class EmulatedDeviceSetup
{
    public const string LibraryName = "libdicc-emulated-cuda.so";

    /// <summary>The emulated device's library, once set up.</summary>
    public static string? Library { get; private set; }

    [OneTimeSetUp]
    public void UseTheEmulatedDevice()
    {
        string dir = Path.Combine(TestContext.CurrentContext.TestDirectory, "emulator");
        string library = Path.Combine(dir, LibraryName);
        if (!File.Exists(library))
        {
            string log = Path.Combine(dir, "build.log");
            string reason = File.Exists(log) ? string.Join(" ", File.ReadLines(log).TakeLast(3)) : "the build target did not run (not Linux?)";
            string message = $"The emulated CUDA device is not built ({library} missing): {reason}";
            if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"))) Assert.Fail(message);
            Assert.Ignore(message);
        }
        // The engine reads DICC_CUDA_PATH when it first loads the driver, which nothing has done yet in this process.
        Environment.SetEnvironmentVariable("DICC_CUDA_PATH", library);
        Library = library;
        TestSupport.EmulatedDevice = true;
        TestContext.Progress.WriteLine($"CUDA tests on the emulated device: {library}");
    }
}
