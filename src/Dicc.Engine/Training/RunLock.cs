using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Dicc.Engine.Training;

/// <summary>A run directory that another training process holds (its lock file names the owner).</summary>
public sealed class RunDirectoryInUseException(string message, string lockFile, int ownerProcessId) : InputException(message)
{
    /// <summary>The lock file, <c>run.lock</c> in the run directory.</summary>
    public string LockFile { get; } = lockFile;

    /// <summary>The process that holds it.</summary>
    public int OwnerProcessId { get; } = ownerProcessId;
}

/// <summary>
/// The exclusive right to write a run directory (docs/evaluation.md, "Run directories"): a file <c>run.lock</c>
/// created with create-new semantics (so of two processes that start at the same moment exactly one succeeds),
/// holding the owner's process id, host, process start time and a random token. Disposing deletes it. A lock
/// whose owner is no longer running on this host (its process id is gone, or now belongs to a process that
/// started at another time) is stale and is taken over; a lock held by a running process, or by a process on
/// another host (which cannot be checked), refuses the directory with <see cref="RunDirectoryInUseException"/>.
/// </summary>
public sealed class RunLock : IDisposable
{
    /// <summary>The lock file's name in a run directory.</summary>
    public const string FileName = "run.lock";

    private readonly string _token;
    private bool _released;

    private RunLock(string path, string token, string? staleNote)
    {
        Path = path;
        _token = token;
        StaleNote = staleNote;
    }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>When a stale lock was taken over: whose it was; else null.</summary>
    public string? StaleNote { get; }

    /// <summary>Creates <paramref name="runDirectory"/> if needed and takes its lock.</summary>
    /// <exception cref="RunDirectoryInUseException">Another running process holds it.</exception>
    /// <exception cref="InputException">The path is a file.</exception>
    public static RunLock Acquire(string runDirectory)
    {
        string directory = System.IO.Path.GetFullPath(runDirectory);
        if (File.Exists(directory)) throw new InputException($"run {directory} is a file; a run directory is expected.") { Parameter = "run" };
        Directory.CreateDirectory(directory);
        string path = System.IO.Path.Combine(directory, FileName);
        string token = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
        string? staleNote = null;
        for (int attempt = 0; ; attempt++)
        {
            if (TryCreate(path, token)) return new RunLock(path, token, staleNote);
            var owner = ReadOwner(path);
            if (owner is null) continue; // released between our attempt and the read: try again
            if (IsAlive(owner, out string state))
                throw new RunDirectoryInUseException(
                    $"{directory}: in use by another training run (process {owner.ProcessId} on {owner.Host}, since " +
                    $"{owner.Acquired.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC); wait for it to finish, " +
                    $"or delete {path} if that process is gone.", path, owner.ProcessId);
            if (attempt >= 5)
                throw new IOException($"{path}: could not take over the stale lock of process {owner.ProcessId} (another process keeps replacing it).");
            if (TakeOver(path, owner)) staleNote = $"took over the stale lock of process {owner.ProcessId} ({state})";
        }
    }

    /// <summary>The process id of a running process that holds the directory's lock, or null when none does.</summary>
    public static int? ActiveOwner(string runDirectory)
    {
        var owner = ReadOwner(System.IO.Path.Combine(System.IO.Path.GetFullPath(runDirectory), FileName));
        return owner is not null && IsAlive(owner, out _) ? owner.ProcessId : null;
    }

    /// <summary>Called once when the lock is released (the run directory forgets it).</summary>
    internal Action? OnRelease { get; set; }

    /// <summary>Deletes the lock file if it is still this lock's.</summary>
    public void Dispose()
    {
        if (_released) return;
        _released = true;
        OnRelease?.Invoke();
        try
        {
            if (ReadOwner(Path)?.Token == _token) File.Delete(Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The directory went away or became unwritable: the lock is stale and the next owner takes it over.
        }
    }

    internal sealed record Owner(int ProcessId, string Host, long? ProcessStart, DateTime Acquired, string Token, string Text);

    /// <summary>
    /// When a process started, as every process reads it alike: on Linux the start time in clock ticks since boot
    /// from /proc/PID/stat (Process.StartTime converts that with a boot time that each process computes for itself
    /// from the wall clock, so two processes can disagree by as much as the clock was adjusted); elsewhere
    /// Process.StartTime in UTC ticks. Null when the process is not there.
    /// </summary>
    internal static long? StartStamp(int pid)
    {
        if (OperatingSystem.IsLinux())
        {
            try
            {
                string stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
                // Fields after the command name (which may hold spaces and parentheses): state is field 3, starttime 22.
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (fields[0] is "Z" or "X") return null; // exited (a zombie not yet reaped, or dead)
                return fields.Length > 19 && long.TryParse(fields[19], NumberStyles.Integer, CultureInfo.InvariantCulture, out long ticks) ? ticks : null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }
        try
        {
            using var process = Process.GetProcessById(pid);
            return process.HasExited ? null : process.StartTime.ToUniversalTime().Ticks;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return null;
        }
    }

    private static bool TryCreate(string path, string token)
    {
        var text = new StringBuilder()
            .Append("pid=").Append(Environment.ProcessId.ToString(CultureInfo.InvariantCulture)).Append('\n')
            .Append("host=").Append(Environment.MachineName).Append('\n')
            .Append("process_start=").Append((StartStamp(Environment.ProcessId) ?? 0).ToString(CultureInfo.InvariantCulture)).Append('\n')
            .Append("acquired=").Append(DateTime.UtcNow.Ticks.ToString(CultureInfo.InvariantCulture)).Append('\n')
            .Append("token=").Append(token).Append('\n')
            .ToString();
        try
        {
            // CreateNew is O_CREAT | O_EXCL: of two processes exactly one creates the file.
            using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
            stream.Write(Encoding.UTF8.GetBytes(text));
            stream.Flush(flushToDisk: true);
            return true;
        }
        catch (IOException) when (File.Exists(path))
        {
            return false;
        }
    }

    /// <summary>
    /// The lock's owner, or null when there is no lock file. A file still being written (created, not yet
    /// filled) is read again for up to three seconds; one that stays unreadable belongs to a writer that died
    /// between creating and filling it, and is reported as a dead owner.
    /// </summary>
    internal static Owner? ReadOwner(string path)
    {
        for (int attempt = 0; ; attempt++)
        {
            string text;
            try
            {
                text = File.ReadAllText(path);
            }
            catch (FileNotFoundException)
            {
                return null;
            }
            if (Parse(text) is { } owner) return owner;
            if (attempt >= 60) return new Owner(0, Environment.MachineName, null, File.GetLastWriteTimeUtc(path), "", text);
            Thread.Sleep(50);
        }
    }

    private static Owner? Parse(string text)
    {
        var fields = text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0].Trim(), kv => kv[1].Trim());
        if (!fields.TryGetValue("token", out var token) || token.Length == 0) return null; // written last: the file is complete
        if (!fields.TryGetValue("pid", out var pid) || !int.TryParse(pid, NumberStyles.Integer, CultureInfo.InvariantCulture, out int id)) return null;
        DateTime? Ticks(string key) => fields.TryGetValue(key, out var v) && long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out long t)
            && t >= DateTime.MinValue.Ticks && t <= DateTime.MaxValue.Ticks ? new DateTime(t, DateTimeKind.Utc) : null;
        long? start = fields.TryGetValue("process_start", out var p) && long.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : null;
        return new Owner(id, fields.GetValueOrDefault("host") ?? "", start, Ticks("acquired") ?? DateTime.MinValue, token, text);
    }

    /// <summary>Whether the owner may still be running; <paramref name="state"/> says why not.</summary>
    private static bool IsAlive(Owner owner, out string state)
    {
        if (owner.ProcessId <= 0)
        {
            state = "an unfinished lock file";
            return false;
        }
        if (!string.Equals(owner.Host, Environment.MachineName, StringComparison.OrdinalIgnoreCase))
        {
            state = "on another host";
            return true; // cannot be checked from here
        }
        if (StartStamp(owner.ProcessId) is not long stamp)
        {
            state = "it is no longer running";
            return false;
        }
        // Linux stamps are exact; Process.StartTime elsewhere may differ by rounding.
        long tolerance = OperatingSystem.IsLinux() ? 0 : TimeSpan.TicksPerSecond;
        if (owner.ProcessStart is long recorded && recorded != 0 && Math.Abs(stamp - recorded) > tolerance)
        {
            state = "its process id now belongs to another process";
            return false;
        }
        state = "running";
        return true;
    }

    /// <summary>
    /// Removes a stale lock so that the next <see cref="TryCreate"/> can take the directory. The file is first
    /// renamed to a name of our own (atomic) and then checked to be the stale lock that was read: if another
    /// process took the lock over in between, what was renamed is its fresh lock, which is put back.
    /// </summary>
    private static bool TakeOver(string path, Owner stale)
    {
        string aside = $"{path}.stale-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            File.Move(path, aside);
        }
        catch (FileNotFoundException)
        {
            return false; // someone else removed it first
        }
        var moved = ReadOwner(aside);
        if (moved is not null && moved.Token != stale.Token)
        {
            // Not the stale lock: another process's fresh one. Put it back unless a third created a new lock meanwhile.
            try { File.Move(aside, path); }
            catch (IOException) { File.Delete(aside); }
            return false;
        }
        File.Delete(aside);
        return true;
    }
}
