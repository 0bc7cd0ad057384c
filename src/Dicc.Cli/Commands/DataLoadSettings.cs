using Dicc.Cli.Infrastructure;
using Dicc.Engine.Data;
using Spectre.Console.Cli;

namespace Dicc.Cli.Commands;

/// <summary>Loader options shared by the verbs that read a dataset.</summary>
public class DataLoadSettings : FaceCropSettings
{
    [CommandOption("--on-bad-image <fail|skip>")]
    [OptionHelp("A corrupt or unreadable image (or CSV row): fail names it and stops; skip leaves it out and counts it. Default fail.")]
    public string OnBadImage { get; init; } = "fail";

    [CommandOption("--classes <a,b,...>")]
    [OptionHelp("Class folder names in label order, when they are not the seven FER2013 expressions.")]
    public string? Classes { get; init; }

    [CommandOption("--class-map <FOLDER=CLASS,...>")]
    [OptionHelp("Class folders named otherwise, as FOLDER=CLASS pairs: 1=surprise,2=fear,... for datasets with numbered class folders.")]
    public string? ClassMap { get; init; }

    [CommandOption("--allow-missing-classes")]
    [OptionHelp("Accept a class without training images (a missing or empty class folder); by default that is an error naming the class.")]
    public bool AllowMissingClasses { get; init; }

    [CommandOption("--detect-faces")]
    [OptionHelp("Whole-head images or photos: crop the largest face found in each image (OpenCV's Haar cascade); an image without a face is a bad image (--on-bad-image).")]
    public bool DetectFaces { get; init; }

    [CommandOption("--size <N>")]
    [OptionHelp("Side the images are resized to (square). Default 48, as FER2013.")]
    public int Size { get; init; } = ImageDataset.DefaultSize;
}
