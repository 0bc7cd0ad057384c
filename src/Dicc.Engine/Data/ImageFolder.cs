using System.IO.Enumeration;

namespace Dicc.Engine.Data;

/// <summary>A file seen while scanning a source: its path relative to the root, size and modification time (for fingerprints).</summary>
internal readonly record struct SourceFile(string RelativePath, long Size, long ModifiedTicks);

/// <summary>
/// Reads the image-folder layouts: <c>root/&lt;split&gt;/&lt;class&gt;/*</c> (split folders train, val/valid/validation,
/// test, PublicTest, PrivateTest) or <c>root/&lt;class&gt;/*</c> (one split). Class folders map to labels through
/// the canonical names and aliases, or through an explicit class list; files below a class folder are read
/// recursively. Scanning only lists files; <see cref="ImageDecoding"/> decodes them.
/// </summary>
internal static class ImageFolder
{
    public sealed record ScanResult(List<ImageFileEntry> Entries, List<SourceFile> Files, bool HasSplitFolders);

    public static ScanResult Scan(string root, DatasetLoadOptions options)
    {
        var subfolders = VisibleSubfolders(root);
        if (subfolders.Count == 0)
        {
            bool hasImages = Directory.EnumerateFiles(root).Any(ImageDecoding.HasImageExtension);
            throw new DataFormatException(root, hasImages
                ? "holds images but no class folders; expected root/<class>/ or root/<split>/<class>/"
                : "has no class or split folders; expected root/<class>/ or root/<split>/<class>/");
        }

        var splitFolders = new Dictionary<Split, string>();
        foreach (var folder in subfolders)
        {
            var name = Path.GetFileName(folder);
            if (!SplitNames.TryParse(name, out var split)) continue;
            if (splitFolders.TryGetValue(split, out var other))
                throw new DataFormatException(folder, $"both '{Path.GetFileName(other)}' and '{name}' name the {split.Name()} split");
            splitFolders[split] = folder;
        }

        var entries = new List<ImageFileEntry>();
        var files = new List<SourceFile>();
        if (splitFolders.Count == 0)
        {
            ScanSplit(root, root, options.SingleSplit, options, splitTest: false, entries, files);
        }
        else
        {
            foreach (var folder in subfolders)
                if (!SplitNames.TryParse(Path.GetFileName(folder), out _))
                    throw new DataFormatException(folder, $"unknown folder '{Path.GetFileName(folder)}' beside the split folders; expected train, val or test");
            bool splitTest = options.SplitKaggleTest && !splitFolders.ContainsKey(Split.Validation);
            foreach (var split in SplitNames.All)
                if (splitFolders.TryGetValue(split, out var folder))
                    ScanSplit(root, folder, split, options, splitTest && split == Split.Test, entries, files);
        }
        // Split, then label, then path: a stable order that does not depend on the file system.
        entries.Sort((a, b) =>
            a.Split != b.Split ? a.Split.CompareTo(b.Split) :
            a.Label != b.Label ? a.Label.CompareTo(b.Label) :
            string.CompareOrdinal(a.Path, b.Path));
        files.Sort((a, b) => string.CompareOrdinal(a.RelativePath, b.RelativePath));
        return new ScanResult(entries, files, splitFolders.Count > 0);
    }

    private static void ScanSplit(string root, string splitFolder, Split split, DatasetLoadOptions options, bool splitTest,
        List<ImageFileEntry> entries, List<SourceFile> files)
    {
        var classNames = options.ClassNames;
        var classFolders = VisibleSubfolders(splitFolder);
        if (classFolders.Count == 0)
            throw new DataFormatException(splitFolder, "has no class folders");
        var seen = new Dictionary<int, string>();
        foreach (var folder in classFolders)
        {
            var name = Path.GetFileName(folder);
            if (!options.TryResolveFolder(name, out int label))
                throw new DataFormatException(folder, $"unknown class folder '{name}': {EmotionClasses.Expected(classNames)}" +
                                                      (options.ClassMap is null ? "" : ", or a folder of the class map"));
            if (seen.TryGetValue(label, out var other))
                throw new DataFormatException(folder, $"both '{other}' and '{name}' map to class {options.EffectiveClassNames[label]}");
            seen[label] = name;
        }

        // Files lying directly in a split folder belong to no class: bad inputs.
        foreach (var (path, size, ticks) in ListFiles(splitFolder, recursive: false))
        {
            files.Add(new SourceFile(Path.GetRelativePath(root, path), size, ticks));
            entries.Add(new ImageFileEntry(path, 0, split, "file is not inside a class folder"));
        }

        foreach (var folder in classFolders)
        {
            options.TryResolveFolder(Path.GetFileName(folder), out int label);
            int before = entries.Count;
            foreach (var (path, size, ticks) in ListFiles(folder, recursive: true))
            {
                files.Add(new SourceFile(Path.GetRelativePath(root, path), size, ticks));
                var fileSplit = split;
                if (splitTest && Path.GetFileName(path).StartsWith("PublicTest_", StringComparison.OrdinalIgnoreCase))
                    fileSplit = Split.Validation;
                entries.Add(new ImageFileEntry(path, label, fileSplit,
                    ImageDecoding.HasImageExtension(path) ? null : ImageDecoding.NotAnImageProblem(path)));
            }
            if (entries.Count == before && !options.AllowMissingClasses)
                throw new DataFormatException(folder, "class folder is empty");
        }

        // Every class needs training images: a model cannot learn a class it never sees (docs/data-formats.md).
        if (split == Split.Train && !options.AllowMissingClasses)
            for (int c = 0; c < options.EffectiveClassNames.Count; c++)
                if (!seen.ContainsKey(c))
                    throw new DataFormatException(splitFolder, $"no folder for class '{options.EffectiveClassNames[c]}': every class needs training " +
                                                               "images; list only the classes to train on, or allow missing classes");
    }

    /// <summary>Subfolders that are data (not hidden, not OS litter), in ordinal order.</summary>
    internal static List<string> VisibleSubfolders(string folder)
    {
        var list = Directory.EnumerateDirectories(folder)
            .Where(d => !ImageDecoding.IsIgnoredName(Path.GetFileName(d)))
            .ToList();
        list.Sort(StringComparer.Ordinal);
        return list;
    }

    /// <summary>Visible files with size and modification time, read from the directory entries (one stat each, no opening).</summary>
    private static List<(string Path, long Size, long Ticks)> ListFiles(string folder, bool recursive)
    {
        var enumerable = new FileSystemEnumerable<(string, long, long)>(folder,
            (ref FileSystemEntry e) => (e.ToSpecifiedFullPath(), e.Length, e.LastWriteTimeUtc.UtcTicks),
            new EnumerationOptions { RecurseSubdirectories = recursive, AttributesToSkip = 0, IgnoreInaccessible = false })
        {
            ShouldIncludePredicate = (ref FileSystemEntry e) => !e.IsDirectory && !ImageDecoding.IsIgnoredName(e.FileName.ToString()),
            ShouldRecursePredicate = (ref FileSystemEntry e) => !ImageDecoding.IsIgnoredName(e.FileName.ToString()),
        };
        var list = enumerable.ToList();
        list.Sort((a, b) => string.CompareOrdinal(a.Item1, b.Item1));
        return list;
    }
}
