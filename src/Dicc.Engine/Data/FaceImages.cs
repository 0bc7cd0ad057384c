namespace Dicc.Engine.Data;

/// <summary>
/// Single face images as the loaders see them: grayscale (PIL's luminance), resized to size x size, one byte
/// per pixel. For programs that classify their own images (and <c>dicc predict</c>).
/// </summary>
public static class FaceImages
{
    /// <summary>The file extensions the loaders read (lower case, with the dot).</summary>
    public static IReadOnlyList<string> Extensions => ImageDecoding.Extensions;

    /// <summary>True for a file name with an image extension that is not hidden or OS litter (.DS_Store, Thumbs.db, ...).</summary>
    public static bool IsImageFile(string path) =>
        ImageDecoding.HasImageExtension(path) && !ImageDecoding.IsIgnoredName(Path.GetFileName(path));

    /// <summary>The image files directly inside <paramref name="folder"/>, in ordinal name order.</summary>
    public static IReadOnlyList<string> ListFolder(string folder) =>
        Directory.EnumerateFiles(folder).Where(IsImageFile).Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// Decodes <paramref name="paths"/> into one array of <c>paths.Count * size * size</c> bytes, image after image.
    /// Throws a <see cref="DataFormatException"/> naming the first file that cannot be decoded.
    /// </summary>
    public static byte[] Decode(IReadOnlyList<string> paths, int size)
    {
        ArgumentNullException.ThrowIfNull(paths);
        if (size is < 8 or > 1024) throw new ArgumentOutOfRangeException(nameof(size), size, "The image size must be in 8..1024.");
        int imageBytes = size * size;
        var pixels = new byte[(long)paths.Count * imageBytes];
        var buffer = Array.Empty<byte>();
        for (int i = 0; i < paths.Count; i++)
            if (ImageDecoding.DecodeFile(paths[i], pixels.AsSpan(i * imageBytes, imageBytes), size, ref buffer) is { } problem)
                throw new DataFormatException(paths[i], problem);
        return pixels;
    }
}
