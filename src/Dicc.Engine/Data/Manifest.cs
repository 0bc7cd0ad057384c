using System.Text;

namespace Dicc.Engine.Data;

/// <summary>
/// A dataset described by a list of image files instead of copies of them (what <c>dicc longtail</c> writes
/// for image folders). Text, one image per line:
/// <code>
/// #dicc-manifest 1
/// #root ../fer2013
/// #classes angry,disgust,fear,happy,sad,surprise,neutral
/// split,label,path
/// train,3,train/happy/Training_10118481.jpg
/// </code>
/// The root is relative to the manifest's folder (or absolute), paths are relative to the root (or
/// absolute), labels index the class list, splits are train, val or test.
/// </summary>
public static class Manifest
{
    /// <summary>The first line of every manifest.</summary>
    public const string Signature = "#dicc-manifest";
    /// <summary>The file extension of manifests.</summary>
    public const string Extension = ".manifest";
    private const string ColumnHeader = "split,label,path";

    /// <summary>One listed image.</summary>
    public readonly record struct Entry(Split Split, int Label, string Path);

    /// <summary>A parsed manifest: the root folder, the classes and the entries with absolute-or-root-joined paths.</summary>
    public sealed record Contents(string Root, IReadOnlyList<string> ClassNames, IReadOnlyList<Entry> Entries);

    internal static bool HasSignature(ReadOnlySpan<byte> start) => start.StartsWith("#dicc-manifest"u8);

    /// <summary>Reads a manifest; entry paths come back joined with the root (as the manifest's path was given).</summary>
    public static Contents Read(string path)
    {
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        string? line = reader.ReadLine();
        int lineNumber = 1;
        if (line is null || !line.StartsWith(Signature, StringComparison.Ordinal))
            throw new DataFormatException(path, $"not a manifest: the first line must be '{Signature} 1'", 1);
        var version = line[Signature.Length..].Trim();
        if (version != "1") throw new DataFormatException(path, $"manifest version '{version}' is not supported (expected 1)", 1);

        string root = System.IO.Path.GetDirectoryName(path) is { Length: > 0 } dir ? dir : ".";
        IReadOnlyList<string> classNames = EmotionClasses.Canonical;
        bool headerSeen = false;
        var entries = new List<Entry>();
        while ((line = reader.ReadLine()) is not null)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            if (line.StartsWith('#'))
            {
                if (headerSeen) continue;
                if (line.StartsWith("#root ", StringComparison.Ordinal))
                {
                    var rootText = line[6..].Trim();
                    root = System.IO.Path.IsPathRooted(rootText) ? rootText : System.IO.Path.Join(System.IO.Path.GetDirectoryName(path), rootText);
                }
                else if (line.StartsWith("#classes ", StringComparison.Ordinal))
                {
                    var names = line[9..].Split(',', StringSplitOptions.TrimEntries);
                    if (names.Length == 0 || names.Any(string.IsNullOrEmpty) || names.Distinct(StringComparer.OrdinalIgnoreCase).Count() != names.Length)
                        throw new DataFormatException(path, "the class list must name distinct, non-empty classes", lineNumber);
                    classNames = names;
                }
                continue;
            }
            if (!headerSeen)
            {
                if (!line.Trim().Equals(ColumnHeader, StringComparison.OrdinalIgnoreCase))
                    throw new DataFormatException(path, $"expected the column header '{ColumnHeader}'", lineNumber);
                headerSeen = true;
                continue;
            }
            int first = line.IndexOf(','), second = first < 0 ? -1 : line.IndexOf(',', first + 1);
            if (second < 0) throw new DataFormatException(path, "expected split,label,path", lineNumber);
            var splitText = line[..first].Trim();
            if (!SplitNames.TryParse(splitText, out var split))
                throw new DataFormatException(path, $"unknown split '{splitText}'; expected train, val or test", lineNumber);
            if (!int.TryParse(line.AsSpan(first + 1, second - first - 1).Trim(), out int label) || (uint)label >= (uint)classNames.Count)
                throw new DataFormatException(path, $"label '{line[(first + 1)..second].Trim()}' is not in 0..{classNames.Count - 1}", lineNumber);
            var file = line[(second + 1)..].Trim();
            if (file.Length == 0) throw new DataFormatException(path, "empty file path", lineNumber);
            entries.Add(new Entry(split, label, System.IO.Path.IsPathRooted(file) ? file : System.IO.Path.Join(root, file)));
        }
        if (!headerSeen) throw new DataFormatException(path, $"no column header '{ColumnHeader}' and no entries");
        return new Contents(root, classNames, entries);
    }

    /// <summary>
    /// Writes a manifest. Entry paths are written relative to <paramref name="root"/>; the root is written
    /// relative to the manifest's folder when that is short (at most one "..") and absolute otherwise.
    /// </summary>
    public static void Write(string path, string root, IReadOnlyList<string> classNames, IEnumerable<Entry> entries, string? comment = null)
    {
        var manifestDir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        var rootFull = System.IO.Path.GetFullPath(root);
        var relativeRoot = System.IO.Path.GetRelativePath(manifestDir, rootFull);
        bool shortRelative = !System.IO.Path.IsPathRooted(relativeRoot) && CountParents(relativeRoot) <= 1;
        var temporary = path + ".tmp";
        using (var writer = new StreamWriter(temporary, append: false, new UTF8Encoding(false)))
        {
            writer.NewLine = "\n";
            writer.WriteLine($"{Signature} 1");
            if (comment is not null)
                foreach (var l in comment.Split('\n')) writer.WriteLine("# " + l.TrimEnd('\r'));
            writer.WriteLine($"#root {(shortRelative ? relativeRoot.Replace('\\', '/') : rootFull)}");
            writer.WriteLine($"#classes {string.Join(',', classNames)}");
            writer.WriteLine(ColumnHeader);
            foreach (var e in entries)
            {
                var relative = System.IO.Path.GetRelativePath(rootFull, System.IO.Path.GetFullPath(e.Path)).Replace('\\', '/');
                writer.WriteLine($"{e.Split.Name()},{e.Label},{relative}");
            }
        }
        File.Move(temporary, path, overwrite: true);
    }

    private static int CountParents(string relative) =>
        relative.Split(System.IO.Path.DirectorySeparatorChar, System.IO.Path.AltDirectorySeparatorChar).Count(p => p == "..");
}
