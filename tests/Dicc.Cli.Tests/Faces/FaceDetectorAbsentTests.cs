using System.Diagnostics;
using System.Runtime.InteropServices;
using Dicc.Engine.Tests.Support;
using NUnit.Framework;

namespace Dicc.Cli.Tests.Faces;

/// <summary>
/// The detector is optional: a copy of the dicc command without OpenCV's native library reads, packs and
/// predicts as before, and --detect-faces exits 2 with one line saying what is missing and where it belongs.
/// </summary>
public class FaceDetectorAbsentTests
{
    [Test]
    public void WithoutOpenCvsNativeLibrary_DetectFacesSaysWhatIsMissing_AndEverythingElseWorks()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the native library checked here is Linux's");
        using var temp = new TempDirectory();
        // The command as built beside the tests, less the native library (and other platforms' native files).
        string from = TestContext.CurrentContext.TestDirectory, app = temp["app"];
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(from, file);
            if (Path.GetFileName(file) == "libOpenCvSharpExtern.so" ||
                (relative.StartsWith("runtimes" + Path.DirectorySeparatorChar, StringComparison.Ordinal) && !relative.Contains("linux-x64")))
                continue;
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(app, relative))!);
            File.Copy(file, Path.Combine(app, relative));
        }
        var faces = DataTestSupport.Faces(2);
        for (int i = 0; i < faces.Count; i++) DataTestSupport.WriteFace(faces, i, temp[$"data/{Engine.Data.EmotionClasses.Canonical[faces.Label(i)]}"]);

        var plain = RunCopy(app, "pack", "--data", temp["data"], "--out", temp["plain.diccpack"]);
        Assert.That(plain.Code, Is.EqualTo(0), plain.ToString());
        var detect = RunCopy(app, "pack", "--data", temp["data"], "--out", temp["faces.diccpack"], "--detect-faces");
        Assert.Multiple(() =>
        {
            Assert.That(detect.Code, Is.EqualTo(2), detect.ToString());
            Assert.That(detect.Error.Trim(), Is.EqualTo("error: --detect-faces: face detection needs OpenCV's native library (libOpenCvSharpExtern.so, " +
                "OpenCvSharp4.official.runtime.linux-x64), which did not load: the library is not there: it belongs in " +
                $"{Path.Combine(app, "runtimes", "linux-x64", "native")}, where building or installing dicc puts it from the " +
                "OpenCvSharp4.official.runtime.linux-x64 package."));
            Assert.That(File.Exists(temp["faces.diccpack"]), Is.False);
        });
    }

    private sealed record Result(int Code, string Output, string Error)
    {
        public override string ToString() => $"exit {Code}\n{Output}\n{Error}";
    }

    private static Result RunCopy(string app, params string[] args)
    {
        var start = new ProcessStartInfo(Path.Combine(app, "dicc")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["DOTNET_ROOT"] = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        start.Environment["COLUMNS"] = "1000";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(120_000)) process.Kill(entireProcessTree: true);
        process.WaitForExit();
        return new Result(process.ExitCode, output.Result, error.Result);
    }
}
