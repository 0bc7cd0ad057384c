using System.Text;
using Dicc.Engine.IO;
using NUnit.Framework;

namespace Dicc.Engine.Tests.IO;

public class AtomicFileTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder()
    {
        _folder = Path.Combine(Path.GetTempPath(), "dicc-atomic-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    private string[] FolderEntries() => Directory.GetFileSystemEntries(_folder).Select(Path.GetFileName).ToArray()!;

    [Test]
    public void Write_CreatesTheFileWhenNoneExists()
    {
        string path = Path.Combine(_folder, "report.json");
        AtomicFile.WriteAllText(path, "{\"a\":1}");
        Assert.That(File.ReadAllText(path), Is.EqualTo("{\"a\":1}"));
        Assert.That(FolderEntries(), Is.EqualTo(new[] { "report.json" }), "no temporary file is left behind");
    }

    [Test]
    public void WriteAllText_WritesUtf8WithoutByteOrderMark()
    {
        string path = Path.Combine(_folder, "text.txt");
        AtomicFile.WriteAllText(path, "é");
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(new byte[] { 0xC3, 0xA9 }));
    }

    [Test]
    public void Write_ReplacesTheWholePreviousContent()
    {
        string path = Path.Combine(_folder, "model.safetensors");
        File.WriteAllText(path, "an old and much longer content than the new one");
        AtomicFile.WriteAllBytes(path, Encoding.ASCII.GetBytes("new"));
        Assert.That(File.ReadAllText(path), Is.EqualTo("new"));
        Assert.That(FolderEntries(), Is.EqualTo(new[] { "model.safetensors" }));
    }

    [Test]
    public void Write_FailingMidway_LeavesThePreviousFileIntactAndNoTemporaryFile()
    {
        string path = Path.Combine(_folder, "checkpoint.bin");
        byte[] old = Enumerable.Range(0, 1000).Select(i => (byte)i).ToArray();
        File.WriteAllBytes(path, old);

        var failure = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[70_000]); // more than the stream's buffer: bytes really reach the temporary file
            throw new InvalidOperationException("device lost during the copy");
        }));

        Assert.That(failure!.Message, Is.EqualTo("device lost during the copy"), "the writer's own exception comes through");
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(old));
        Assert.That(FolderEntries(), Is.EqualTo(new[] { "checkpoint.bin" }));
    }

    [Test]
    public void Write_FailingWithoutPreviousFile_LeavesNothing()
    {
        string path = Path.Combine(_folder, "new.bin");
        Assert.Throws<IOException>(() => AtomicFile.Write(path, stream =>
        {
            stream.WriteByte(1);
            throw new IOException("disk full");
        }));
        Assert.That(FolderEntries(), Is.Empty);
    }

    [Test]
    public void Write_IntoMissingFolder_NamesTheFolder()
    {
        string missing = Path.Combine(_folder, "no-such-folder");
        var e = Assert.Throws<DirectoryNotFoundException>(() =>
            AtomicFile.WriteAllText(Path.Combine(missing, "x.json"), "{}"));
        Assert.That(e!.Message, Does.Contain(missing));
    }

    [Test]
    public void Write_OverAFolder_IsRefused()
    {
        string sub = Path.Combine(_folder, "sub");
        Directory.CreateDirectory(sub);
        var e = Assert.Throws<IOException>(() => AtomicFile.WriteAllText(sub, "{}"));
        Assert.That(e!.Message, Does.Contain("is a folder"));
        Assert.That(Directory.Exists(sub));
    }

    [Test]
    public void FolderFlush_ReachesTheOperatingSystemOnLinux()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("The folder fsync is checked on Linux only.");
        Assert.That(AtomicFile.FlushFolder(_folder), Is.True, "open + fsync of the folder through libc succeeded");
        Assert.That(AtomicFile.FlushFolder(Path.Combine(_folder, "missing")), Is.False);
    }

    [Test]
    public void TemporaryPath_IsAHiddenSiblingInTheSameFolder()
    {
        string target = Path.Combine(_folder, "a.json");
        string first = AtomicFile.TemporaryPathFor(target), second = AtomicFile.TemporaryPathFor(target);
        Assert.That(Path.GetDirectoryName(first), Is.EqualTo(_folder));
        Assert.That(Path.GetFileName(first), Does.StartWith(".a.json."));
        Assert.That(first, Is.Not.EqualTo(second));
    }
}
