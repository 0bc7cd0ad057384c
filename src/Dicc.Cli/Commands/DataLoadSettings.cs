using System.ComponentModel;
using Dicc.Engine.Data;
using Spectre.Console.Cli;

namespace Dicc.Cli.Commands;

/// <summary>Loader options shared by the verbs that read a dataset.</summary>
public class DataLoadSettings : CommandSettings
{
    [CommandOption("--on-bad-image <fail|skip>")]
    [Description("A corrupt or unreadable image (or CSV row): fail names it and stops; skip leaves it out and counts it. Default fail.")]
    public string OnBadImage { get; init; } = "fail";

    [CommandOption("--classes <a,b,...>")]
    [Description("Class folder names in label order, when they are not the seven FER2013 expressions.")]
    public string? Classes { get; init; }

    [CommandOption("--size <N>")]
    [Description("Side the images are resized to (square). Default 48, as FER2013.")]
    public int Size { get; init; } = ImageDataset.DefaultSize;
}
