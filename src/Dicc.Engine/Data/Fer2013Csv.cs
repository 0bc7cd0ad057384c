using System.Text;

namespace Dicc.Engine.Data;

/// <summary>
/// The FER2013 CSV format: a header naming the columns <c>emotion,pixels,Usage</c> (or the 2-column
/// <c>emotion,pixels</c> form of a training set alone), then one row per image with the label, the
/// size*size grayscale values separated by spaces, and Training / PublicTest / PrivateTest (train / val /
/// test). Read as a stream, a block of lines at a time, each block parsed on all cores.
/// </summary>
public static class Fer2013Csv
{
    private const int LinesPerBlock = 2048;
    private const int MaxColumns = 16;

    /// <summary>The Usage value written for each split.</summary>
    public static string UsageName(Split split) => split switch
    {
        Split.Train => "Training",
        Split.Validation => "PublicTest",
        Split.Test => "PrivateTest",
        _ => throw new ArgumentOutOfRangeException(nameof(split)),
    };

    /// <summary>True when the file's first line is a FER2013 header (emotion and pixels columns).</summary>
    internal static bool LooksLikeCsv(string path)
    {
        // Only the start of the file: a large binary file must not be read whole looking for a line end.
        var start = new byte[64 << 10];
        int n;
        using (var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read))
            n = RandomAccess.Read(handle, start, 0);
        var text = Encoding.UTF8.GetString(start, 0, n).TrimStart('\uFEFF');
        int end = text.IndexOfAny(['\r', '\n']);
        return TryParseHeader(end < 0 ? text : text[..end], out _, out _, out _);
    }

    private static bool TryParseHeader(string header, out int emotion, out int pixels, out int usage)
    {
        emotion = pixels = usage = -1;
        var names = header.Split(',');
        for (int i = 0; i < names.Length; i++)
        {
            switch (names[i].Trim().Trim('"').ToLowerInvariant())
            {
                case "emotion" or "label": emotion = i; break;
                case "pixels": pixels = i; break;
                case "usage": usage = i; break;
            }
        }
        return emotion >= 0 && pixels >= 0;
    }

    private readonly record struct RowResult(int Label, Split Split, string? Problem);

    internal static (ImageDataset Train, ImageDataset Validation, ImageDataset Test, List<SkippedInput> Skipped) Read(
        string path, DatasetLoadOptions options)
    {
        var classNames = options.EffectiveClassNames;
        int size = options.ImageSize;
        int imageBytes = size * size;
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        string? header = reader.ReadLine();
        if (header is null) throw new DataFormatException(path, "empty file; expected a FER2013 CSV with a header emotion,pixels[,Usage]");
        if (!TryParseHeader(header, out int emotionColumn, out int pixelsColumn, out int usageColumn))
            throw new DataFormatException(path, $"expected a header naming the columns emotion and pixels (and optionally Usage), found '{Truncate(header)}'", 1);
        int fieldsNeeded = Math.Max(emotionColumn, Math.Max(pixelsColumn, usageColumn)) + 1;
        if (fieldsNeeded > MaxColumns)
            throw new DataFormatException(path, $"the emotion, pixels and Usage columns must be among the first {MaxColumns}", 1);

        var outputs = new[] { new PixelBuffer(), new PixelBuffer(), new PixelBuffer() };
        var labels = new List<int>[] { [], [], [] };
        var skipped = new List<SkippedInput>();
        var lines = new string[LinesPerBlock];
        var lineNumbers = new int[LinesPerBlock];
        var results = new RowResult[LinesPerBlock];
        byte[] block = [];
        int lineNumber = 1;
        int threads = options.EffectiveThreads;
        while (true)
        {
            int n = 0;
            string? line;
            while (n < LinesPerBlock && (line = reader.ReadLine()) is not null)
            {
                lineNumber++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                lines[n] = line;
                lineNumbers[n] = lineNumber;
                n++;
            }
            if (n == 0) break;
            if (block.Length < n * imageBytes) block = new byte[n * imageBytes]; // small files get small blocks

            int ranges = Math.Max(1, Math.Min(threads, n / 64));
            Parallel.For(0, ranges, new ParallelOptions { MaxDegreeOfParallelism = threads }, r =>
            {
                int start = n * r / ranges, end = n * (r + 1) / ranges;
                for (int i = start; i < end; i++)
                    results[i] = ParseRow(lines[i], emotionColumn, pixelsColumn, usageColumn, fieldsNeeded, classNames.Count,
                        options.SingleSplit, block.AsSpan(i * imageBytes, imageBytes));
            });

            for (int i = 0; i < n; i++)
            {
                var result = results[i];
                if (result.Problem is { } problem)
                {
                    if (options.OnBadImage == BadInputPolicy.Fail) throw new DataFormatException(path, problem, lineNumbers[i]);
                    skipped.Add(new SkippedInput(path, lineNumbers[i], problem));
                    continue;
                }
                outputs[(int)result.Split].Append(block.AsSpan(i * imageBytes, imageBytes));
                labels[(int)result.Split].Add(result.Label);
            }
            Array.Clear(lines, 0, n);
        }

        var datasets = new ImageDataset[3];
        foreach (var split in SplitNames.All)
            datasets[(int)split] = new ImageDataset(outputs[(int)split].ToMemory(), labels[(int)split].ToArray(), classNames, size, size, split);
        return (datasets[0], datasets[1], datasets[2], skipped);
    }

    private static RowResult ParseRow(string line, int emotionColumn, int pixelsColumn, int usageColumn, int fieldsNeeded,
        int classCount, Split defaultSplit, Span<byte> destination)
    {
        // Cut the row into at most fieldsNeeded fields (pixels never contain commas; quotes are stripped).
        Span<Range> fields = stackalloc Range[MaxColumns];
        ReadOnlySpan<char> row = line;
        int fieldCount = row.Split(fields, ',');
        if (fieldCount < fieldsNeeded)
            return new RowResult(0, default, $"expected at least {fieldsNeeded} comma-separated fields, found {fieldCount}");

        var labelText = Unquote(row[fields[emotionColumn]]);
        if (!int.TryParse(labelText, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int label))
            return new RowResult(0, default, $"emotion '{Truncate(labelText.ToString())}' is not an integer label");
        if ((uint)label >= (uint)classCount)
            return new RowResult(0, default, $"emotion label {label} is out of range 0..{classCount - 1}");

        var split = defaultSplit;
        if (usageColumn >= 0)
        {
            var usage = Unquote(row[fields[usageColumn]]).ToString();
            if (!SplitNames.TryParse(usage, out split))
                return new RowResult(0, default, $"unknown Usage '{Truncate(usage)}'; expected Training, PublicTest or PrivateTest");
        }

        var problem = ParsePixels(Unquote(row[fields[pixelsColumn]]), destination);
        return new RowResult(label, split, problem);
    }

    /// <summary>Space-separated integers 0..255, exactly destination.Length of them.</summary>
    private static string? ParsePixels(ReadOnlySpan<char> text, Span<byte> destination)
    {
        int count = 0, value = 0;
        bool inNumber = false;
        for (int i = 0; i < text.Length; i++)
        {
            char ch = text[i];
            uint digit = (uint)(ch - '0');
            if (digit <= 9)
            {
                value = value * 10 + (int)digit;
                if (value > 255) return $"pixel {count + 1} is {Truncate(NumberAt(text, i).ToString())}; pixel values are 0..255";
                inNumber = true;
            }
            else if (ch is ' ' or '\t')
            {
                if (!inNumber) continue;
                if (count < destination.Length) destination[count] = (byte)value;
                count++;
                value = 0;
                inNumber = false;
            }
            else
            {
                return $"invalid character '{ch}' in pixels (pixel value {count + 1})";
            }
        }
        if (inNumber)
        {
            if (count < destination.Length) destination[count] = (byte)value;
            count++;
        }
        return count == destination.Length ? null : $"expected {destination.Length} pixel values, found {count}";
    }

    /// <summary>The run of digits around position <paramref name="i"/> (the whole number a pixel was written as).</summary>
    private static ReadOnlySpan<char> NumberAt(ReadOnlySpan<char> text, int i)
    {
        int start = i, end = i;
        while (start > 0 && char.IsAsciiDigit(text[start - 1])) start--;
        while (end < text.Length && char.IsAsciiDigit(text[end])) end++;
        return text[start..end];
    }

    private static ReadOnlySpan<char> Unquote(ReadOnlySpan<char> field)
    {
        field = field.Trim();
        if (field.Length >= 2 && field[0] == '"' && field[^1] == '"') field = field[1..^1];
        return field;
    }

    private static string Truncate(string text) => text.Length <= 40 ? text : text[..40] + "...";

    /// <summary>
    /// Writes splits as a FER2013 CSV. With <paramref name="includeUsage"/> the 3-column form (every split,
    /// tagged Training/PublicTest/PrivateTest); without it the 2-column form, which only a single split can use.
    /// </summary>
    public static void Write(string path, IEnumerable<ImageDataset> splits, bool includeUsage = true)
    {
        var list = splits.ToList();
        if (!includeUsage && list.Count(s => s.Count > 0) > 1)
            throw new DataArgumentException("csv", "the 2-column CSV (emotion,pixels) holds one split; write the 3-column form for several");
        var temporary = path + ".tmp";
        using (var writer = new StreamWriter(temporary, append: false, new UTF8Encoding(false), bufferSize: 1 << 20))
        {
            writer.NewLine = "\n";
            writer.WriteLine(includeUsage ? "emotion,pixels,Usage" : "emotion,pixels");
            var row = new StringBuilder(16 * 1024);
            foreach (var dataset in list)
            {
                string usage = UsageName(dataset.Split);
                for (int i = 0; i < dataset.Count; i++)
                {
                    row.Clear();
                    row.Append(dataset.Label(i)).Append(',');
                    var pixels = dataset.Image(i);
                    for (int p = 0; p < pixels.Length; p++)
                    {
                        if (p > 0) row.Append(' ');
                        row.Append(pixels[p]);
                    }
                    if (includeUsage) row.Append(',').Append(usage);
                    writer.WriteLine(row);
                }
            }
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>An append-only byte buffer that doubles; trimmed once at the end.</summary>
    private sealed class PixelBuffer
    {
        private byte[] _data = [];
        private int _length;

        public void Append(ReadOnlySpan<byte> bytes)
        {
            if (_length + bytes.Length > _data.Length)
                Array.Resize(ref _data, Math.Max(_length + bytes.Length, Math.Max(1 << 16, _data.Length * 2)));
            bytes.CopyTo(_data.AsSpan(_length));
            _length += bytes.Length;
        }

        public ReadOnlyMemory<byte> ToMemory()
        {
            if (_data.Length != _length) Array.Resize(ref _data, _length);
            return _data;
        }
    }
}
