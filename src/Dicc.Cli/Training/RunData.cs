using Dicc.Cli.Infrastructure;
using Dicc.Engine.Data;
using Dicc.Engine.Training;

namespace Dicc.Cli.Training;

/// <summary>
/// The data of an existing run, read as the run read it: every loader setting from config.json (class list and
/// map, bad-image policy, hold-outs, image size), the sources at their absolute paths (or as typed, relative to
/// the current folder, when the absolute ones are gone), unless the caller names other data.
/// </summary>
internal static class RunData
{
    /// <summary>The loader options the run used (older config.json files: the class list only).</summary>
    public static DatasetLoadOptions LoadOptions(DatasetDescription d)
    {
        var baseOptions = new DatasetLoadOptions();
        if (d.Settings is { } settings)
            return settings.ApplyTo(baseOptions) with { FaceCrop = FaceDetectors.FromSettings(settings.FaceCrop) };
        bool canonical = d.ClassNames.SequenceEqual(EmotionClasses.Canonical, StringComparer.OrdinalIgnoreCase);
        return baseOptions with { ClassNames = canonical ? null : d.ClassNames, ImageSize = d.ImageSize };
    }

    /// <summary>
    /// The run's data read from <paramref name="source"/> (and the separate validation and test sources) with
    /// <paramref name="options"/>; for one fold of a k-fold run, that fold's split of all of it.
    /// </summary>
    public static DatasetSplits Load(DatasetDescription d, string source, string? validation, string? test, DatasetLoadOptions options)
    {
        if (d.Fold is not { } fold) return DataArguments.Load(source, validation, test, options, out _);
        using var pool = DataArguments.Load(source, null, null, options, out _);
        return SubjectFolds.Apply(pool, fold);
    }

    /// <summary>Where the run's training source is now (see <see cref="DatasetDescription.Locate"/>).</summary>
    public static string Source(DatasetDescription d) => DatasetDescription.Locate(d.Source, d.SourcePath)!;

    public static string? ValidationSource(DatasetDescription d) => DatasetDescription.Locate(d.ValidationSource, d.ValidationSourcePath);

    public static string? TestSource(DatasetDescription d) => DatasetDescription.Locate(d.TestSource, d.TestSourcePath);

    /// <summary>The description of a new run: the sources as typed and as absolute paths, and the loader settings.</summary>
    public static DatasetDescription Describe(DatasetSplits data, string name, string source, string? validation, string? test,
        DatasetLoadOptions options) =>
        Trainer.Describe(data, name) with
        {
            Source = source,
            SourcePath = DataArguments.IsSynthetic(source) ? null : Path.GetFullPath(source),
            ValidationSource = validation,
            ValidationSourcePath = validation is null ? null : Path.GetFullPath(validation),
            TestSource = test,
            TestSourcePath = test is null ? null : Path.GetFullPath(test),
            Settings = DataSettings.From(options),
        };

    /// <summary>A fingerprint shortened for messages.</summary>
    public static string Short(string? fingerprint) => fingerprint is null ? "none" : fingerprint[..Math.Min(16, fingerprint.Length)];
}
