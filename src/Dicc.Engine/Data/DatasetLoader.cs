using System.Security.Cryptography;
using System.Text;

namespace Dicc.Engine.Data;

/// <summary>
/// The one entry point for reading a dataset from disk. <see cref="Load"/> takes an image folder, a FER2013
/// CSV, a manifest or a pack, and uses a fresh packed cache instead of decoding when there is one (a pack
/// beside the data, <c>&lt;data&gt;.diccpack</c>, or one in the cache folder); after decoding it writes one
/// to the cache folder. Bad input raises <see cref="DataFormatException"/> (one line naming the file and
/// line) unless <see cref="DatasetLoadOptions.OnBadImage"/> says skip.
/// </summary>
public static class DatasetLoader
{
    /// <summary>What a path holds.</summary>
    public enum SourceKind
    {
        /// <summary>A folder of class folders (train/ and test/ or a single split).</summary>
        ImageFolder,
        /// <summary>A FER2013 CSV (emotion, pixels, Usage).</summary>
        Fer2013Csv,
        /// <summary>A manifest of files per split.</summary>
        Manifest,
        /// <summary>A .diccpack file.</summary>
        Pack,
    }

    /// <summary>Decides what <paramref name="path"/> is, from its contents (not its name).</summary>
    public static SourceKind Detect(string path)
    {
        if (Directory.Exists(path)) return SourceKind.ImageFolder;
        if (!File.Exists(path)) throw new DataFormatException(path, "no such file or folder");
        Span<byte> start = stackalloc byte[16];
        int n;
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            n = RandomAccess.Read(handle, start, 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(path, $"cannot read: {e.Message}");
        }
        start = start[..n];
        if (start.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) start = start[3..];
        if (DatasetPack.HasMagic(start)) return SourceKind.Pack;
        if (Manifest.HasSignature(start)) return SourceKind.Manifest;
        if (Fer2013Csv.LooksLikeCsv(path)) return SourceKind.Fer2013Csv;
        throw new DataFormatException(path,
            "not a dataset: expected an image folder, a FER2013 CSV (header emotion,pixels[,Usage]), a dicc manifest or a .diccpack file");
    }

    /// <summary>Loads a dataset (see the class summary). Dispose the result when it came from a pack (<see cref="DatasetSplits.PackPath"/>).</summary>
    public static DatasetSplits Load(string path, DatasetLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            return LoadCore(path, options);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Unreadable folders and files met while listing or streaming the source (single images report their own).
            throw new DataFormatException(path, $"cannot read: {e.Message}", inner: e);
        }
    }

    private static DatasetSplits LoadCore(string path, DatasetLoadOptions? options)
    {
        options ??= DatasetLoadOptions.Default;
        options.Validate();
        var kind = Detect(path);
        if (options.FaceCrop is not null && kind == SourceKind.Fer2013Csv)
            throw new DataArgumentException("face detector", $"{path} is a FER2013 CSV, whose rows are face crops already; faces are found in image files");
        if (kind == SourceKind.Pack)
        {
            var pack = DatasetPack.Open(path);
            try
            {
                DatasetAssembly.CheckClasses(pack.Train, path, options);
            }
            catch
            {
                pack.Dispose();
                throw;
            }
            return pack;
        }

        // A cheap look at the source (file names, sizes, times) decides whether a cache is fresh.
        ImageFolder.ScanResult? scan = null;
        Manifest.Contents? manifest = null;
        string fingerprint;
        switch (kind)
        {
            case SourceKind.ImageFolder:
                scan = ImageFolder.Scan(path, options);
                fingerprint = Fingerprint(kind, options, scan.Files);
                break;
            case SourceKind.Manifest:
                manifest = Manifest.Read(path);
                fingerprint = Fingerprint(kind, options, [Stat(path, Path.GetFileName(path)), .. manifest.Entries.Select(e => Stat(e.Path, e.Path))]);
                break;
            default:
                fingerprint = Fingerprint(kind, options, [Stat(path, Path.GetFileName(path))]);
                break;
        }

        var origin = kind switch
        {
            SourceKind.ImageFolder => DatasetOrigin.ImageFolder,
            SourceKind.Manifest => DatasetOrigin.Manifest,
            _ => DatasetOrigin.Fer2013Csv,
        };
        var sourceRoot = SourceRootOf(path, origin, manifest);
        if (options.Cache != PackCacheMode.Off)
        {
            foreach (var candidate in CacheCandidates(path, options))
            {
                if (DatasetPack.ReadFingerprint(candidate) != fingerprint) continue;
                DatasetSplits cached;
                try
                {
                    cached = DatasetPack.Open(candidate, sourceRoot);
                }
                catch (Exception e) when (e is DataFormatException or IOException or UnauthorizedAccessException)
                {
                    // A damaged or unreadable cache is only a cache: fall through to decoding (and rewrite it).
                    continue;
                }
                try
                {
                    // A cache written under AllowMissingClasses may be read without it.
                    DatasetAssembly.CheckClasses(cached.Train, path, options);
                }
                catch
                {
                    cached.Dispose();
                    throw;
                }
                return cached;
            }
        }

        DatasetSplits data = kind switch
        {
            SourceKind.ImageFolder => LoadFiles(scan!.Entries, options.EffectiveClassNames, path, origin, fingerprint, options),
            SourceKind.Manifest => LoadFiles(ManifestEntries(manifest!), manifest!.ClassNames, path, origin, fingerprint, options),
            _ => LoadCsv(path, fingerprint, options),
        };

        string? cacheNote = null;
        if (options.Cache == PackCacheMode.ReadWrite)
        {
            var target = CachePath(path, options);
            try
            {
                DatasetPack.Write(data, target, sourceRoot);
                cacheNote = $"cache written to {target}";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                cacheNote = $"cache not written to {target}: {e.Message}";
            }
        }
        return new DatasetSplits(data.Train, data.Validation, data.Test, data.Origin, data.Source, data.Skipped, data.Fingerprint)
        {
            ValidationHeldOut = data.ValidationHeldOut,
            TestHeldOut = data.TestHeldOut,
            SourceRoot = sourceRoot,
            CacheNote = cacheNote,
        };
    }

    private static DatasetSplits LoadFiles(IReadOnlyList<ImageFileEntry> entries, IReadOnlyList<string> classNames, string source,
        DatasetOrigin origin, string fingerprint, DatasetLoadOptions options)
    {
        if (entries.Count == 0) throw new DataFormatException(source, "holds no images");
        var (pixels, problems) = ImageDecoding.DecodeAll(entries, options.ImageSize, options.OnBadImage, options.EffectiveThreads, options.FaceCrop);
        var (train, validation, test, skipped) = DatasetAssembly.FromEntries(entries, pixels, problems, classNames, options.ImageSize);
        if (train.Count + validation.Count + test.Count == 0)
            throw new DataFormatException(source, $"no readable images: all {entries.Count} were skipped (first: {skipped[0]})");
        return DatasetAssembly.Finish(train, validation, test, origin, source, skipped, fingerprint, options);
    }

    private static DatasetSplits LoadCsv(string path, string fingerprint, DatasetLoadOptions options)
    {
        var (train, validation, test, skipped) = Fer2013Csv.Read(path, options);
        if (train.Count + validation.Count + test.Count == 0)
            throw new DataFormatException(path, skipped.Count > 0 ? $"no readable rows: all {skipped.Count} were skipped (first: {skipped[0]})" : "holds no rows");
        return DatasetAssembly.Finish(train, validation, test, DatasetOrigin.Fer2013Csv, path, skipped, fingerprint, options);
    }

    private static List<ImageFileEntry> ManifestEntries(Manifest.Contents manifest)
    {
        var entries = manifest.Entries
            .Select(e => new ImageFileEntry(e.Path, e.Label, e.Split, ImageDecoding.HasImageExtension(e.Path) ? null : ImageDecoding.NotAnImageProblem(e.Path)))
            .ToList();
        // Stable by split: the manifest's order within a split is kept.
        return entries.Select((e, i) => (e, i)).OrderBy(x => x.e.Split).ThenBy(x => x.i).Select(x => x.e).ToList();
    }

    /// <summary>The folder that image sources are stored relative to in a pack.</summary>
    internal static string? SourceRootOf(string path, DatasetOrigin origin, Manifest.Contents? manifest = null) => origin switch
    {
        DatasetOrigin.ImageFolder => path,
        DatasetOrigin.Manifest => manifest?.Root ?? Manifest.Read(path).Root,
        _ => null,
    };

    private static SourceFile Stat(string path, string name)
    {
        var info = new FileInfo(path);
        return info.Exists ? new SourceFile(name, info.Length, info.LastWriteTimeUtc.Ticks) : new SourceFile(name, -1, 0);
    }

    /// <summary>Hex SHA-256 over the kind, the options that change the content, and each file's relative path, size and time.</summary>
    internal static string Fingerprint(SourceKind kind, DatasetLoadOptions options, IEnumerable<SourceFile> files)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes($"dicc-fingerprint 1\n{kind}\n{options.ContentKey}\n"));
        var line = new StringBuilder();
        foreach (var f in files)
        {
            line.Clear().Append(f.RelativePath).Append('\t').Append(f.Size).Append('\t').Append(f.ModifiedTicks).Append('\n');
            hash.AppendData(Encoding.UTF8.GetBytes(line.ToString()));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>Where caches go by default: $DICC_CACHE_DIR, else $XDG_CACHE_HOME/dicc, else ~/.cache/dicc.</summary>
    public static string DefaultCacheDirectory()
    {
        if (Environment.GetEnvironmentVariable("DICC_CACHE_DIR") is { Length: > 0 } explicitDir) return explicitDir;
        if (Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg) return Path.Combine(xdg, "dicc");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return home.Length > 0 ? Path.Combine(home, ".cache", "dicc") : Path.Combine(Path.GetTempPath(), "dicc-cache");
    }

    /// <summary>The cache file of a source in the cache folder: its name plus a hash of its full path.</summary>
    public static string CachePath(string sourcePath, DatasetLoadOptions? options = null)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(sourcePath));
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(full)))[..16];
        var name = Path.GetFileName(full);
        if (name.Length == 0) name = "root";
        return Path.Combine(options?.CacheDirectory ?? DefaultCacheDirectory(), $"{name}-{key}{DatasetPack.Extension}");
    }

    /// <summary>Packs looked for, in order: beside the data (data.diccpack, and data.csv's data.diccpack), then the cache folder.</summary>
    private static IEnumerable<string> CacheCandidates(string path, DatasetLoadOptions options)
    {
        var trimmed = Path.TrimEndingDirectorySeparator(path);
        yield return trimmed + DatasetPack.Extension;
        if (File.Exists(path) && Path.HasExtension(trimmed)) yield return Path.ChangeExtension(trimmed, DatasetPack.Extension);
        yield return CachePath(path, options);
    }
}
