using Microsoft.Win32.SafeHandles;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Advanced;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace Dicc.Engine.Data;

/// <summary>One image file to decode: where it is, its label and split, or why it is not usable at all.</summary>
internal readonly record struct ImageFileEntry(string Path, int Label, Split Split, string? Problem = null);

/// <summary>
/// Decodes image files into 8-bit grayscale squares with ImageSharp, on all cores. Colour becomes luminance
/// with PIL's ITU-R 601-2 weights (what torchvision pipelines see), other sizes are resized (bicubic, aspect ratio not
/// kept: the datasets we read are face crops), and only the first frame of an animated GIF or multi-page
/// TIFF is read. Any failure of one file is that file's fault and becomes a one-line reason.
/// </summary>
internal static class ImageDecoding
{
    public static readonly string[] Extensions = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"];

    // Files that operating systems and archivers leave in folders; never data.
    private static readonly HashSet<string> IgnoredNames = new(StringComparer.OrdinalIgnoreCase) { "Thumbs.db", "desktop.ini", "__MACOSX" };

    /// <summary>A face crop is kilobytes; this bounds what one corrupt or hostile file can cost.</summary>
    private const long MaxFileBytes = 64L << 20;

    private static readonly Configuration Decoders = CreateConfiguration();

    private static Configuration CreateConfiguration()
    {
        var configuration = Configuration.Default.Clone();
        // We parallelise over files; one thread per decode avoids oversubscription.
        configuration.MaxDegreeOfParallelism = 1;
        configuration.PreferContiguousImageBuffers = true;
        // A corrupt header can claim gigapixels; refuse such allocations instead of trying them.
        configuration.MemoryAllocator = MemoryAllocator.Create(new MemoryAllocatorOptions { AllocationLimitMegabytes = 256 });
        configuration.ImageFormatsManager.SetDecoder(GifFormat.Instance, new GifDecoder { DecodingMode = FrameDecodingMode.First, IgnoreMetadata = true });
        configuration.ImageFormatsManager.SetDecoder(TiffFormat.Instance, new TiffDecoder { DecodingMode = FrameDecodingMode.First, IgnoreMetadata = true });
        configuration.ImageFormatsManager.SetDecoder(JpegFormat.Instance, new JpegDecoder { IgnoreMetadata = true });
        configuration.ImageFormatsManager.SetDecoder(PngFormat.Instance, new PngDecoder { IgnoreMetadata = true });
        return configuration;
    }

    public static bool HasImageExtension(string path)
    {
        var ext = System.IO.Path.GetExtension(path);
        foreach (var e in Extensions)
            if (ext.Equals(e, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    /// <summary>Hidden files and OS litter, which never count as data or as bad data.</summary>
    public static bool IsIgnoredName(string name) => name.StartsWith('.') || IgnoredNames.Contains(name);

    public static string NotAnImageProblem(string path) =>
        $"not an image file (extension '{System.IO.Path.GetExtension(path)}'); images must be {string.Join(", ", Extensions.Select(e => e[1..]))}";

    /// <summary>
    /// Decodes one file into <paramref name="destination"/> (size x size bytes); returns null or the reason it failed.
    /// With <paramref name="faces"/>, the largest face found in the whole image is cropped instead (no face: a reason).
    /// </summary>
    public static string? DecodeFile(string path, Span<byte> destination, int size, ref byte[] buffer, FaceCropOptions? faces = null)
    {
        if (ReadFile(path, ref buffer, out int length) is { } readProblem) return readProblem;
        if (faces is null) return DecodeBytes(buffer.AsSpan(0, length), destination, size);
        var whole = DecodeWhole(buffer.AsSpan(0, length), out var problem);
        if (whole is null) return problem;
        return FaceCrops.CropLargestInto(whole, faces, size, destination) ? null : faces.NoFaceProblem;
    }

    /// <summary>Decodes one file whole (grayscale, its own size); null and the reason when it cannot be.</summary>
    public static GrayImage? DecodeWholeFile(string path, ref byte[] buffer, out string? problem)
    {
        problem = ReadFile(path, ref buffer, out int length);
        return problem is null ? DecodeWhole(buffer.AsSpan(0, length), out problem) : null;
    }

    /// <summary>Reads a whole file into <paramref name="buffer"/> (grown as needed); returns null or the reason it failed.</summary>
    private static string? ReadFile(string path, ref byte[] buffer, out int length)
    {
        length = 0;
        try
        {
            using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            long fileLength = RandomAccess.GetLength(handle);
            if (fileLength == 0) return "empty file";
            if (fileLength > MaxFileBytes) return $"file of {fileLength} bytes is too large for a face image";
            if (buffer.Length < fileLength) buffer = new byte[Math.Max(fileLength, buffer.Length * 2L)];
            while (length < fileLength)
            {
                int n = RandomAccess.Read(handle, buffer.AsSpan(length, (int)fileLength - length), length);
                if (n == 0) break;
                length += n;
            }
            return null;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return "file does not exist";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot read: {e.Message}";
        }
    }

    /// <summary>Decodes encoded image bytes into <paramref name="destination"/>; returns null or the reason it failed.</summary>
    public static string? DecodeBytes(ReadOnlySpan<byte> encoded, Span<byte> destination, int size)
    {
        string? problem = null;
        using var gray = DecodeGray(encoded, ref problem);
        if (gray is null) return problem;
        try
        {
            if (gray.Width != size || gray.Height != size)
                gray.Mutate(x => x.Resize(size, size));
            gray.CopyPixelDataTo(destination[..(size * size)]);
            return null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return $"corrupt or unsupported image ({e.GetType().Name}: {e.Message})";
        }
    }

    /// <summary>Decodes encoded image bytes whole (grayscale, its own size); null and the reason when it cannot be.</summary>
    public static GrayImage? DecodeWhole(ReadOnlySpan<byte> encoded, out string? problem)
    {
        problem = null;
        using var gray = DecodeGray(encoded, ref problem);
        if (gray is null) return null;
        var pixels = new byte[(long)gray.Width * gray.Height];
        gray.CopyPixelDataTo(pixels);
        return new GrayImage(gray.Width, gray.Height, pixels);
    }

    /// <summary>The image as 8-bit gray at its own size, or null with the reason (the caller disposes it).</summary>
    private static Image<L8>? DecodeGray(ReadOnlySpan<byte> encoded, ref string? problem)
    {
        if (ImageIntegrity.Problem(encoded) is { } integrity)
        {
            problem = integrity;
            return null;
        }
        try
        {
            // Decode in the file's own pixel format: grayscale files (all of FER2013) stay 8-bit gray without a
            // colour round trip; colour files are converted with PIL's weights, as PyTorch pipelines do.
            // ImageSharp's untyped load always gives RGB for JPEG, so grayscale JPEGs are asked for as L8.
            var decoded = ImageIntegrity.IsGrayscaleJpeg(encoded) ? Image.Load<L8>(Decoders, encoded) : Image.Load(Decoders, encoded);
            if (decoded is Image<L8> gray) return gray;
            using (decoded) return ToGray(decoded);
        }
        catch (UnknownImageFormatException)
        {
            problem = "not a readable image (unknown format)";
            return null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The decoder is a black box: whatever it throws on these bytes, the bytes are at fault.
            problem = $"corrupt or unsupported image ({e.GetType().Name}: {e.Message})";
            return null;
        }
    }

    /// <summary>
    /// Luminance as PIL's <c>convert("L")</c> computes it (ITU-R 601-2: L = (19595 R + 38470 G + 7471 B + 2^15) >> 16,
    /// i.e. 0.299 R + 0.587 G + 0.114 B rounded), so colour datasets match torchvision pipelines. Alpha is ignored.
    /// </summary>
    private static Image<L8> ToGray(Image image)
    {
        using var rgb = image.CloneAs<Rgb24>();
        var gray = new Image<L8>(Decoders, rgb.Width, rgb.Height);
        for (int y = 0; y < rgb.Height; y++)
        {
            var source = rgb.DangerousGetPixelRowMemory(y).Span;
            var target = gray.DangerousGetPixelRowMemory(y).Span;
            for (int x = 0; x < source.Length; x++)
            {
                var p = source[x];
                target[x] = new L8((byte)((19595 * p.R + 38470 * p.G + 7471 * p.B + 32768) >> 16));
            }
        }
        return gray;
    }

    /// <summary>
    /// Decodes <paramref name="entries"/> into one block [entries.Count, size, size]. Work is split into
    /// fixed contiguous ranges; under <see cref="BadInputPolicy.Fail"/> the first bad entry in list order
    /// is reported whatever the thread timing (ranges stop only past the lowest failure seen so far).
    /// Returns the pixels and, per entry, null or the reason it failed.
    /// </summary>
    public static (byte[] Pixels, string?[] Problems) DecodeAll(IReadOnlyList<ImageFileEntry> entries, int size, BadInputPolicy policy, int threads,
        FaceCropOptions? faces = null)
    {
        int count = entries.Count;
        int imageBytes = size * size;
        var pixels = GC.AllocateUninitializedArray<byte>(checked(count * imageBytes));
        var problems = new string?[count];
        int firstFailure = int.MaxValue;
        int ranges = Math.Max(1, Math.Min(threads, count / 64 + 1));
        Parallel.For(0, ranges, new ParallelOptions { MaxDegreeOfParallelism = threads }, r =>
        {
            int start = (int)((long)count * r / ranges), end = (int)((long)count * (r + 1) / ranges);
            byte[] buffer = new byte[64 << 10];
            for (int i = start; i < end; i++)
            {
                if (policy == BadInputPolicy.Fail && i > Volatile.Read(ref firstFailure)) return;
                var entry = entries[i];
                var target = pixels.AsSpan(i * imageBytes, imageBytes);
                string? problem = entry.Problem ?? DecodeFile(entry.Path, target, size, ref buffer, faces);
                if (problem is null) continue;
                problems[i] = problem;
                target.Clear();
                if (policy == BadInputPolicy.Fail)
                {
                    int seen;
                    while (i < (seen = Volatile.Read(ref firstFailure)) && Interlocked.CompareExchange(ref firstFailure, i, seen) != seen) { }
                }
            }
        });
        if (policy == BadInputPolicy.Fail && firstFailure != int.MaxValue)
            throw new DataFormatException(entries[firstFailure].Path, problems[firstFailure]!);
        return (pixels, problems);
    }
}
