using Dicc.Cli.Infrastructure;
using Dicc.Engine.Data;
using Spectre.Console.Cli;

namespace Dicc.Cli.Commands;

/// <summary>
/// The face-crop options shared by every verb that reads whole-head images or photos (train, pack, longtail,
/// predict). Each verb declares its own <c>--detect-faces</c>, because what it does with the faces differs.
/// </summary>
public abstract class FaceCropSettings : CommandSettings
{
    [CommandOption("--face-margin <M>")]
    [OptionHelp("With --detect-faces: part of the face box's side added on each side of the crop. Default 0.1.")]
    public double? FaceMargin { get; init; }

    [CommandOption("--face-cascade <FILE>")]
    [OptionHelp("With --detect-faces: the Haar cascade file. Default haarcascade_frontalface_default.xml from Debian's opencv-data.")]
    public string? FaceCascade { get; init; }

    /// <summary>The crop the loaders apply with <c>--detect-faces</c>, or null without it.</summary>
    internal FaceCropOptions? FaceCrop(bool detectFaces) => FaceDetectors.CropOptions(detectFaces, FaceMargin, FaceCascade);
}
