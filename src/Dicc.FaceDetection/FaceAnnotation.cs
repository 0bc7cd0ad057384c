using Dicc.Engine.Data;
using Dicc.Engine.IO;
using OpenCvSharp;

namespace Dicc.FaceDetection;

/// <summary>A face to draw: its box and the text written above it ("happy 87%").</summary>
public sealed record AnnotatedFace(FaceBox Box, string Label);

/// <summary>Pictures of the faces found in an image: each face's box and label drawn over the image, written as PNG.</summary>
public static class FaceAnnotation
{
    /// <summary>
    /// Draws <paramref name="faces"/> over the image at <paramref name="imagePath"/> (in colour when OpenCV reads the
    /// file at the size it was detected in, else over <paramref name="decoded"/>, the grayscale image the faces were
    /// found in) and writes a PNG to <paramref name="outPath"/> (atomically).
    /// </summary>
    public static void Write(string imagePath, GrayImage decoded, IReadOnlyList<AnnotatedFace> faces, string outPath)
    {
        ArgumentNullException.ThrowIfNull(decoded);
        ArgumentNullException.ThrowIfNull(faces);
        HaarFaceDetector.CheckNativeLibrary();
        // EXIF orientation is ignored, as the loaders ignore it: the boxes are in the file's own pixel grid.
        using var picture = ReadColour(imagePath, decoded);
        double scale = Math.Max(picture.Width, picture.Height) / 640.0;
        int thickness = Math.Max(2, (int)Math.Round(2 * scale));
        double fontScale = Math.Max(0.5, 0.6 * scale);
        var colour = new Scalar(0, 200, 255); // amber in BGR: visible on skin, hair and most backgrounds
        foreach (var face in faces)
        {
            var box = new Rect(face.Box.X, face.Box.Y, face.Box.Width, face.Box.Height);
            Cv2.Rectangle(picture, box, colour, thickness);
            var size = Cv2.GetTextSize(face.Label, HersheyFonts.HersheySimplex, fontScale, thickness, out int baseline);
            int top = box.Y - size.Height - baseline - 2 * thickness;
            if (top < 0) top = Math.Min(picture.Height - size.Height - baseline - 2 * thickness, box.Y + box.Height);
            var background = new Rect(box.X, Math.Max(0, top), size.Width + 2 * thickness, size.Height + baseline + 2 * thickness);
            Cv2.Rectangle(picture, background, colour, -1);
            Cv2.PutText(picture, face.Label, new Point(background.X + thickness, background.Y + thickness + size.Height),
                HersheyFonts.HersheySimplex, fontScale, Scalar.Black, Math.Max(1, thickness / 2), LineTypes.AntiAlias);
        }
        if (!Cv2.ImEncode(".png", picture, out byte[] png))
            throw new IOException($"Cannot encode the annotated picture of {imagePath} as PNG.");
        AtomicFile.Write(outPath, stream => stream.Write(png));
    }

    private static Mat ReadColour(string imagePath, GrayImage decoded)
    {
        var colour = Cv2.ImRead(imagePath, ImreadModes.Color | ImreadModes.IgnoreOrientation);
        if (!colour.Empty() && colour.Width == decoded.Width && colour.Height == decoded.Height) return colour;
        colour.Dispose();
        using var gray = Mat.FromPixelData(decoded.Height, decoded.Width, MatType.CV_8UC1, decoded.Pixels);
        var bgr = new Mat();
        Cv2.CvtColor(gray, bgr, ColorConversionCodes.GRAY2BGR);
        return bgr;
    }
}
