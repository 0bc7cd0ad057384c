using System.Globalization;
using Dicc.Engine.Data;
using Dicc.Engine.Data.Synthetic;

namespace Dicc.Cli.Infrastructure;

/// <summary>
/// Loads what <c>--data</c> (and optionally <c>--val</c>, <c>--test</c>) name: an image folder, a FER2013 CSV,
/// a long-tail manifest, a pack, or <c>synthetic[:key=value,...]</c> for the built-in faces
/// (keys: per-class, beta, seed, val, test, size).
/// </summary>
public static class DataArguments
{
    public const string SyntheticPrefix = "synthetic";

    public static DatasetSplits Load(string data, string? validation, string? test, DatasetLoadOptions options, out string name)
    {
        DatasetSplits splits;
        if (IsSynthetic(data))
        {
            splits = SyntheticFaces.Generate(ParseSynthetic(data));
            name = "synthetic";
        }
        else
        {
            splits = DatasetLoader.Load(data, options);
            name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(data)));
        }
        if (validation is null && test is null) return splits;
        var val = validation is null ? splits.Validation
            : DatasetLoader.Load(validation, options with { SingleSplit = Split.Validation }).Validation;
        var tst = test is null ? splits.Test
            : DatasetLoader.Load(test, options with { SingleSplit = Split.Test }).Test;
        if (!val.ClassNames.SequenceEqual(splits.ClassNames) || !tst.ClassNames.SequenceEqual(splits.ClassNames))
            throw new UsageException("--val/--test: their classes differ from --data's.");
        return new DatasetSplits(splits.Train, val, tst, splits.Origin, splits.Source, splits.Skipped, splits.Fingerprint);
    }

    public static bool IsSynthetic(string data) =>
        data.Equals(SyntheticPrefix, StringComparison.OrdinalIgnoreCase) ||
        data.StartsWith(SyntheticPrefix + ":", StringComparison.OrdinalIgnoreCase);

    /// <summary>synthetic[:per-class=600,beta=10,seed=1,val=100,test=100,size=48]; defaults: a long-tailed (beta 10) set.</summary>
    public static SyntheticFaceOptions ParseSynthetic(string text)
    {
        var o = new SyntheticFaceOptions { Beta = 10, Seed = 1 };
        int colon = text.IndexOf(':');
        if (colon < 0) return o;
        foreach (var part in text[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = part.Split('=', 2, StringSplitOptions.TrimEntries);
            if (kv.Length != 2) throw new UsageException($"--data {text}: '{part}' is not key=value.");
            double Num() => double.TryParse(kv[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v >= 0
                ? v : throw new UsageException($"--data {text}: {kv[0]} must be a non-negative number, got '{kv[1]}'.");
            int Int() => int.TryParse(kv[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 0
                ? v : throw new UsageException($"--data {text}: {kv[0]} must be a non-negative integer, got '{kv[1]}'.");
            o = kv[0].ToLowerInvariant() switch
            {
                "per-class" => o with { TrainPerClass = Int() },
                "beta" => o with { Beta = Math.Max(1, Num()) },
                "seed" => o with { Seed = (ulong)Int() },
                "val" => o with { ValidationPerClass = Int() },
                "test" => o with { TestPerClass = Int() },
                "size" => o with { Size = Int() },
                _ => throw new UsageException($"--data {text}: unknown key '{kv[0]}' (per-class, beta, seed, val, test, size)."),
            };
        }
        return o;
    }
}
