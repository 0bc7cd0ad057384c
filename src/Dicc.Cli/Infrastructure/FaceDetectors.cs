using System.Runtime.CompilerServices;
using Dicc.Engine.Data;
using Dicc.Engine.Training;

namespace Dicc.Cli.Infrastructure;

/// <summary>
/// The face detector the command uses (OpenCV's Haar cascade, in the Dicc.FaceDetection assembly). Only the
/// methods here touch that assembly, so OpenCV is loaded only when a command is asked to detect faces; when
/// its native library or the cascade file is missing, the error says what to install.
/// </summary>
internal static class FaceDetectors
{
    /// <summary>The detector with the cascade file <paramref name="cascade"/> (null: found in the usual places).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static IFaceDetector Open(string? cascade) => Dicc.FaceDetection.HaarFaceDetector.Open(cascade);

    /// <summary>
    /// The loader's face-crop options for --detect-faces, --face-margin and --face-cascade; null without --detect-faces
    /// (the other two then are a usage error).
    /// </summary>
    public static FaceCropOptions? CropOptions(bool detect, double? margin, string? cascade)
    {
        if (!detect)
        {
            if (margin is not null) throw new UsageException("--face-margin goes with --detect-faces.");
            if (cascade is not null) throw new UsageException("--face-cascade goes with --detect-faces.");
            return null;
        }
        double m = margin ?? FaceCropOptions.DefaultMargin;
        if (!(m >= 0 && m <= 1)) throw new UsageException($"--face-margin must be in [0, 1], got {m.ToString(CliValues.Invariant)}.");
        return new FaceCropOptions(Open(cascade), m);
    }

    /// <summary>The face-crop options a run's data was read with (config.json), with its detector created again.</summary>
    public static FaceCropOptions? FromSettings(FaceCropSettings? settings)
    {
        if (settings is null) return null;
        if (settings.Detector != "haar")
            throw new UsageException($"the run's faces were found by a detector named '{settings.Detector}', which this dicc does not have (it has haar).");
        return new FaceCropOptions(Open(settings.Model), settings.Margin);
    }

    /// <summary>Writes the picture of <paramref name="faces"/> drawn over <paramref name="imagePath"/> (see FaceAnnotation).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Annotate(string imagePath, GrayImage decoded, IReadOnlyList<(FaceBox Box, string Label)> faces, string outPath) =>
        Dicc.FaceDetection.FaceAnnotation.Write(imagePath, decoded, faces.Select(f => new Dicc.FaceDetection.AnnotatedFace(f.Box, f.Label)).ToList(), outPath);
}
