using System.Globalization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace Dicc.Engine.Data;

/// <summary>A face found in an image: its box in pixels, (<see cref="X"/>, <see cref="Y"/>) the top-left corner.</summary>
public readonly record struct FaceBox(int X, int Y, int Width, int Height)
{
    /// <summary>The box's area in pixels.</summary>
    public long Area => (long)Width * Height;

    /// <summary><c>WxH at (X, Y)</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Width}x{Height} at ({X}, {Y})");
}

/// <summary>An 8-bit grayscale image at its own size, row-major (what a face detector looks at).</summary>
public sealed class GrayImage
{
    /// <summary>An image of <paramref name="width"/> x <paramref name="height"/> pixels, row-major (not copied).</summary>
    public GrayImage(int width, int height, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"Image size {width}x{height} must be positive.");
        if (pixels.Length != (long)width * height)
            throw new ArgumentException($"A {width}x{height} image needs {(long)width * height} bytes; got {pixels.Length}.", nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }
    /// <summary>Height in pixels.</summary>
    public int Height { get; }
    /// <summary>The pixels, row-major, one byte each.</summary>
    public byte[] Pixels { get; }
}

/// <summary>
/// Finds faces in whole images (photos, whole-head lab images). The engine itself has no detector: the one the
/// <c>dicc</c> command uses (OpenCV's Haar cascade) lives in its own assembly, Dicc.FaceDetection, so that
/// programs that never detect faces never load OpenCV (docs/data-formats.md, "Faces in whole images").
/// </summary>
public interface IFaceDetector
{
    /// <summary>The kind of detector, one word ("haar"): how a front end knows which detector to create again.</summary>
    string Name { get; }

    /// <summary>The file the detector reads its model from (a cascade file, network weights), or null.</summary>
    string? ModelPath { get; }

    /// <summary>What finds the faces and with which settings, in words; part of a dataset's fingerprint.</summary>
    string Description { get; }

    /// <summary>Every face found, largest first. Called from several decoding threads at once: it must be thread-safe.</summary>
    IReadOnlyList<FaceBox> Detect(GrayImage image);
}

/// <summary>
/// Cropping faces out of whole images as the loaders do (<see cref="DatasetLoadOptions.FaceCrop"/>): the largest
/// face found, grown by <see cref="Margin"/> of its side on every side, made square, then resized.
/// </summary>
/// <param name="Detector">The detector.</param>
/// <param name="Margin">Part of the face box's side added on each side (0.1: a 100-pixel box becomes a 120-pixel crop).</param>
public sealed record FaceCropOptions(IFaceDetector Detector, double Margin = FaceCropOptions.DefaultMargin)
{
    /// <summary>The default margin: a tenth of the face box's side on each side.</summary>
    public const double DefaultMargin = 0.1;

    internal void Validate()
    {
        if (Detector is null) throw new DataArgumentException("face detector", "no detector given.");
        if (!(Margin >= 0 && Margin <= 1))
            throw new DataArgumentException("face margin", $"{Margin.ToString(CultureInfo.InvariantCulture)} is outside [0, 1].");
    }

    /// <summary>The problem of an image in which no face is found (the bad-image policy applies to it).</summary>
    internal string NoFaceProblem => $"no face found ({Detector.Description})";
}

/// <summary>Whole images decoded for face detection, and faces cropped out of them.</summary>
public static class FaceCrops
{
    /// <summary>
    /// The square region cropped for <paramref name="face"/>: its box grown by <paramref name="margin"/> of its
    /// longer side on each side, centred on the box, moved inside the image where it sticks out, and shrunk to
    /// the image's shorter side when it is larger.
    /// </summary>
    public static FaceBox Region(FaceBox face, double margin, int imageWidth, int imageHeight)
    {
        if (face.Width <= 0 || face.Height <= 0) throw new ArgumentOutOfRangeException(nameof(face), $"Face box {face} is empty.");
        double side = Math.Max(face.Width, face.Height) * (1 + 2 * margin);
        int s = (int)Math.Round(Math.Min(side, Math.Min(imageWidth, imageHeight)), MidpointRounding.AwayFromZero);
        s = Math.Max(1, s);
        double cx = face.X + face.Width / 2.0, cy = face.Y + face.Height / 2.0;
        int x = Math.Clamp((int)Math.Round(cx - s / 2.0, MidpointRounding.AwayFromZero), 0, imageWidth - s);
        int y = Math.Clamp((int)Math.Round(cy - s / 2.0, MidpointRounding.AwayFromZero), 0, imageHeight - s);
        return new FaceBox(x, y, s, s);
    }

    /// <summary>The pixels of <paramref name="region"/> (inside the image) resized to size x size with the loaders' bicubic resampler.</summary>
    public static byte[] Crop(GrayImage image, FaceBox region, int size)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (size is < 8 or > 1024) throw new ArgumentOutOfRangeException(nameof(size), size, "The image size must be in 8..1024.");
        var result = new byte[size * size];
        CropInto(image, region, size, result);
        return result;
    }

    internal static void CropInto(GrayImage image, FaceBox region, int size, Span<byte> destination)
    {
        if (region.X < 0 || region.Y < 0 || region.Width <= 0 || region.Height <= 0 ||
            region.X + region.Width > image.Width || region.Y + region.Height > image.Height)
            throw new ArgumentOutOfRangeException(nameof(region), $"Region {region} is not inside the {image.Width}x{image.Height} image.");
        using var whole = SixLabors.ImageSharp.Image.LoadPixelData<L8>(image.Pixels, image.Width, image.Height);
        whole.Mutate(x => x.Crop(new Rectangle(region.X, region.Y, region.Width, region.Height)).Resize(size, size));
        whole.CopyPixelDataTo(destination[..(size * size)]);
    }

    /// <summary>
    /// Decodes an image file whole, as 8-bit grayscale (PIL's luminance, as the loaders), without resizing: what
    /// a face detector needs. Throws a <see cref="DataFormatException"/> naming the file when it cannot be decoded.
    /// </summary>
    public static GrayImage Decode(string path)
    {
        var buffer = Array.Empty<byte>();
        return ImageDecoding.DecodeWholeFile(path, ref buffer, out var problem) ?? throw new DataFormatException(path, problem!);
    }

    /// <summary>
    /// Detects the faces of <paramref name="image"/> and crops the largest, as the loaders do under
    /// <see cref="DatasetLoadOptions.FaceCrop"/>; null when no face is found.
    /// </summary>
    public static byte[]? CropLargestFace(GrayImage image, FaceCropOptions faces, int size)
    {
        ArgumentNullException.ThrowIfNull(faces);
        var destination = new byte[size * size];
        return CropLargestInto(image, faces, size, destination) ? destination : null;
    }

    internal static bool CropLargestInto(GrayImage image, FaceCropOptions faces, int size, Span<byte> destination)
    {
        var found = faces.Detector.Detect(image);
        if (found.Count == 0) return false;
        var largest = found[0];
        foreach (var f in found)
            if (f.Area > largest.Area) largest = f;
        CropInto(image, Region(largest, faces.Margin, image.Width, image.Height), size, destination);
        return true;
    }
}
