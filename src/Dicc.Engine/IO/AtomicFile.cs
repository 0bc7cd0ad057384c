using System.Runtime.InteropServices;
using System.Text;

namespace Dicc.Engine.IO;

/// <summary>
/// Writes a file so that readers (and a crash) see either the complete old content or the complete new
/// content, never a mix: the bytes go to a temporary file in the same folder, which is flushed to disk and
/// then renamed over the target. A rename within one folder is atomic on POSIX file systems and NTFS.
/// If writing fails, the temporary file is deleted and the previous file is left untouched.
/// </summary>
/// <remarks>
/// The replaced file's permissions and owner are not carried over; the new file gets the defaults of a
/// newly created file. On Linux and macOS the folder is flushed after the rename as well, so that the
/// rename itself survives a power loss.
/// </remarks>
public static partial class AtomicFile
{
    private static long _counter;

    /// <summary>
    /// Test seam: when set (for the current asynchronous flow only), called with the full path of every write;
    /// an exception it returns is thrown as if writing the temporary file had failed (a full disk, say), so that
    /// tests can fail each write point of a run in turn.
    /// </summary>
    internal static readonly AsyncLocal<Func<string, Exception?>?> FaultInjection = new();

    /// <summary>Writes <paramref name="path"/> from what <paramref name="write"/> puts into the stream.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        string fullPath = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(fullPath)
            ?? throw new ArgumentException($"'{path}' names a root folder, not a file.", nameof(path));
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Cannot write '{fullPath}': the folder '{folder}' does not exist.");
        if (Directory.Exists(fullPath))
            throw new IOException($"Cannot write '{fullPath}': it is a folder.");

        string temporary = TemporaryPathFor(fullPath);
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None,
                       bufferSize: 1 << 16))
            {
                if (FaultInjection.Value?.Invoke(fullPath) is { } fault) throw fault;
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, fullPath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temporary);
            // Name the file the caller asked for (the system's message names the temporary one, or nothing).
            if (e.Message.Contains(fullPath, StringComparison.Ordinal)) throw;
            string message = $"Cannot write '{fullPath}': {e.Message}";
            throw e is UnauthorizedAccessException ? new UnauthorizedAccessException(message, e) : new IOException(message, e);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
        FlushFolder(folder);
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically.</summary>
    public static void WriteAllBytes(string path, ReadOnlyMemory<byte> bytes) =>
        Write(path, stream => stream.Write(bytes.Span));

    /// <summary>Writes <paramref name="text"/> as UTF-8 without a byte-order mark, atomically.</summary>
    public static void WriteAllText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        WriteAllBytes(path, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text));
    }

    /// <summary>
    /// A hidden sibling of the target that no other writer picks: process id plus a per-process counter.
    /// It is in the same folder so that the final rename never crosses file systems.
    /// </summary>
    internal static string TemporaryPathFor(string fullPath)
    {
        long n = Interlocked.Increment(ref _counter);
        string name = $".{Path.GetFileName(fullPath)}.{Environment.ProcessId}.{n}.tmp";
        return Path.Combine(Path.GetDirectoryName(fullPath)!, name);
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>
    /// fsync on the folder makes the rename durable; best effort, where the platform allows it.
    /// Returns whether the folder was flushed.
    /// </summary>
    internal static bool FlushFolder(string folder)
    {
        if (!(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())) return false;
        try
        {
            int fd = NativeMethods.Open(folder, ReadOnly);
            if (fd < 0) return false;
            bool flushed = NativeMethods.Fsync(fd) == 0;
            NativeMethods.Close(fd);
            return flushed;
        }
        catch (DllNotFoundException) { return false; }
        catch (EntryPointNotFoundException) { return false; }
    }

    // O_RDONLY: a folder opened read-only can be fsync'ed on Linux and macOS.
    private const int ReadOnly = 0;

    private static partial class NativeMethods
    {
        [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Open(string path, int flags);

        [LibraryImport("libc", EntryPoint = "fsync")]
        internal static partial int Fsync(int fd);

        [LibraryImport("libc", EntryPoint = "close")]
        internal static partial int Close(int fd);
    }
}
