using System.Globalization;
using Dicc.Engine.Data;

namespace Dicc.Cli.Infrastructure;

/// <summary>
/// Checks and parses option values the same way in every verb: each failure is a <see cref="UsageException"/>
/// whose one-line message starts with the option it is about.
/// </summary>
internal static class CliValues
{
    public static CultureInfo Invariant => CultureInfo.InvariantCulture;

    /// <summary>The value of a required option, or a usage error naming it.</summary>
    public static string Required(string? value, string option) =>
        string.IsNullOrWhiteSpace(value) ? throw new UsageException($"{option} is required.") : value;

    /// <summary>An existing file or folder.</summary>
    public static string ExistingPath(string? path, string option)
    {
        path = Required(path, option);
        if (!File.Exists(path) && !Directory.Exists(path)) throw new UsageException($"{option}: '{path}' does not exist.");
        return path;
    }

    /// <summary>An existing file (not a folder).</summary>
    public static string ExistingFile(string? path, string option)
    {
        path = Required(path, option);
        if (Directory.Exists(path)) throw new UsageException($"{option}: '{path}' is a folder; a file is expected.");
        if (!File.Exists(path)) throw new UsageException($"{option}: file '{path}' does not exist.");
        return path;
    }

    /// <summary>An existing folder.</summary>
    public static string ExistingDirectory(string? path, string option)
    {
        path = Required(path, option);
        if (File.Exists(path)) throw new UsageException($"{option}: '{path}' is a file; a folder is expected.");
        if (!Directory.Exists(path)) throw new UsageException($"{option}: folder '{path}' does not exist.");
        return path;
    }

    /// <summary>An output file path: not an existing folder, and its folder is created on write.</summary>
    public static string OutputFile(string? path, string option)
    {
        path = Required(path, option);
        if (Directory.Exists(path)) throw new UsageException($"{option}: '{path}' is a folder; give a file name.");
        return path;
    }

    /// <summary>An output folder that is new or empty, so that nothing old is mixed with what is written.</summary>
    public static string NewOrEmptyDirectory(string? path, string option)
    {
        path = Required(path, option);
        if (File.Exists(path)) throw new UsageException($"{option}: '{path}' is a file; a folder is expected.");
        if (Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any())
            throw new UsageException($"{option}: folder '{path}' is not empty; choose a new folder (nothing is overwritten).");
        return path;
    }

    public static int Positive(int value, string option) =>
        value > 0 ? value : throw new UsageException($"{option} must be positive, got {value}.");

    public static int NonNegative(int value, string option) =>
        value >= 0 ? value : throw new UsageException($"{option} must not be negative, got {value}.");

    /// <summary>One of <paramref name="choices"/> (case-insensitive), returned in lower case.</summary>
    public static string Choice(string value, string option, params string[] choices)
    {
        string v = value.Trim().ToLowerInvariant();
        return choices.Contains(v) ? v : throw new UsageException($"{option}: '{value}' is not one of {string.Join(", ", choices)}.");
    }

    /// <summary>A comma-separated list without empty entries; null when <paramref name="text"/> is null.</summary>
    public static string[]? List(string? text, string option)
    {
        if (text is null) return null;
        var items = text.Split(',', StringSplitOptions.TrimEntries);
        if (items.Length == 0 || items.Any(string.IsNullOrEmpty))
            throw new UsageException($"{option}: '{text}' is not a comma-separated list without empty entries.");
        return items;
    }

    /// <summary>
    /// The loader options the data verbs share (--on-bad-image, --classes, --size, --no-cache, --class-map,
    /// --allow-missing-classes), checked here so that a bad value names its flag.
    /// </summary>
    public static DatasetLoadOptions LoadOptions(string onBadImage, string? classes, int size, bool noCache,
        string? classMap = null, bool allowMissingClasses = false)
    {
        var policy = Choice(onBadImage, "--on-bad-image", "fail", "skip") == "skip" ? BadInputPolicy.Skip : BadInputPolicy.Fail;
        if (size is < 8 or > 1024) throw new UsageException($"--size must be in 8..1024, got {size}.");
        var options = new DatasetLoadOptions
        {
            OnBadImage = policy,
            ClassNames = List(classes, "--classes"),
            ClassMap = ClassMap(classMap),
            AllowMissingClasses = allowMissingClasses,
            ImageSize = size,
            Cache = noCache ? PackCacheMode.Off : PackCacheMode.ReadWrite,
        };
        DataWork(() => { options.CheckOptions(); return 0; });
        return options;
    }

    /// <summary>"1=surprise,2=fear" as folder → class pairs; null when <paramref name="text"/> is null.</summary>
    public static Dictionary<string, string>? ClassMap(string? text)
    {
        var pairs = List(text, "--class-map");
        if (pairs is null) return null;
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var pair in pairs)
        {
            var kv = pair.Split('=', 2, StringSplitOptions.TrimEntries);
            if (kv.Length != 2 || kv[0].Length == 0 || kv[1].Length == 0)
                throw new UsageException($"--class-map: '{pair}' is not FOLDER=CLASS (e.g. 1=surprise).");
            if (!map.TryAdd(kv[0], kv[1])) throw new UsageException($"--class-map: folder '{kv[0]}' is mapped twice.");
        }
        return map;
    }

    /// <summary>
    /// Runs data work whose option errors (<see cref="DataArgumentException"/>) name the engine's option ("counts");
    /// they become usage errors that name the flag ("--counts") and point to --help.
    /// </summary>
    public static T DataWork<T>(Func<T> work)
    {
        try
        {
            return work();
        }
        catch (DataArgumentException e) when (ParameterFlags.DataFlags.ContainsKey(e.Option))
        {
            throw new UsageException(ParameterFlags.Translate(e));
        }
    }

    /// <summary>A fraction as a percentage with the given decimals ("72.35").</summary>
    public static string Percent(double fraction, int decimals = 2) =>
        double.IsFinite(fraction) ? (fraction * 100).ToString("F" + decimals, Invariant) : "—";

    public static string Number(double value, string format = "0.####") =>
        double.IsFinite(value) ? value.ToString(format, Invariant) : "—";

    public static string Count(long value) => value.ToString("N0", Invariant);

    /// <summary>A byte count as "12.3 MiB".</summary>
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }
        return u == 0 ? $"{bytes} B" : $"{v.ToString("0.0", Invariant)} {units[u]}";
    }

    /// <summary>Elapsed time as "0.8 s", "12 s" or "3 min 05 s".</summary>
    public static string Duration(TimeSpan t) =>
        t.TotalSeconds < 10 ? $"{t.TotalSeconds.ToString("0.0", Invariant)} s"
        : t.TotalMinutes < 1 ? $"{t.TotalSeconds.ToString("0", Invariant)} s"
        : $"{(int)t.TotalMinutes} min {t.Seconds:00} s";
}
