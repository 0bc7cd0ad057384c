using Dicc.Engine.Data;
using Dicc.Engine.Data.Synthetic;
using Dicc.Engine.Randomness;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace Dicc.Cli.Tests.Faces;

/// <summary>
/// Pictures with faces at known places: 48x48 faces of the synthetic renderer, scaled up (bicubic) and pasted
/// into a larger picture of noise or a plain grey. Real images for a real detector: OpenCV's Haar cascade
/// finds most of these faces (the measured rate is in the tests).
/// </summary>
internal static class FacePictures
{
    /// <summary>Synthetic 48x48 faces, <paramref name="perClass"/> of each class, class after class.</summary>
    public static ImageDataset Faces(int perClass, ulong seed) =>
        SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = perClass, ValidationPerClass = 0, TestPerClass = 0, Seed = seed }).Train;

    /// <summary>A width x height grey picture: uniform noise in [60, 200) (seeded) or, with <paramref name="plain"/>, one grey.</summary>
    public static byte[] Background(int width, int height, ulong seed, bool plain = false, byte grey = 128)
    {
        var pixels = new byte[width * height];
        if (plain) Array.Fill(pixels, grey);
        else
        {
            var random = new RandomStream(seed, 0xBAC6);
            for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(60 + random.NextUInt() % 140);
        }
        return pixels;
    }

    /// <summary>Pastes face <paramref name="index"/> of <paramref name="faces"/>, scaled to side x side, at (x, y); returns its box.</summary>
    public static FaceBox Paste(byte[] picture, int width, ImageDataset faces, int index, int x, int y, int side)
    {
        using var face = Image.LoadPixelData<L8>(faces.Image(index), faces.Width, faces.Height);
        face.Mutate(c => c.Resize(side, side, KnownResamplers.Bicubic));
        var scaled = new byte[side * side];
        face.CopyPixelDataTo(scaled);
        for (int r = 0; r < side; r++) scaled.AsSpan(r * side, side).CopyTo(picture.AsSpan((y + r) * width + x, side));
        return new FaceBox(x, y, side, side);
    }

    /// <summary>Writes a grayscale picture as PNG (or as RGB, for a colour file).</summary>
    public static void Save(string path, byte[] pixels, int width, int height, bool colour = false)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var gray = Image.LoadPixelData<L8>(pixels, width, height);
        if (colour)
        {
            using var rgb = gray.CloneAs<Rgb24>();
            rgb.SaveAsPng(path);
        }
        else gray.SaveAsPng(path);
    }

    /// <summary>Intersection over union of two boxes.</summary>
    public static double IoU(FaceBox a, FaceBox b)
    {
        int x0 = Math.Max(a.X, b.X), y0 = Math.Max(a.Y, b.Y);
        int x1 = Math.Min(a.X + a.Width, b.X + b.Width), y1 = Math.Min(a.Y + a.Height, b.Y + b.Height);
        double inter = Math.Max(0, x1 - x0) * (double)Math.Max(0, y1 - y0);
        return inter / (a.Area + b.Area - inter);
    }
}
