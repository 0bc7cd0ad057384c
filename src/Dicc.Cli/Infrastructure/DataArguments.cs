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
            var faces = ParseSynthetic(data);
            var generated = SyntheticFaces.Generate(faces);
            // Synthetic data is defined by its options: they are its fingerprint (resume compares it).
            splits = new DatasetSplits(generated.Train, generated.Validation, generated.Test, generated.Origin, generated.Source,
                generated.Skipped, Hash(SyntheticKey(faces)));
            name = NameOf(data);
        }
        else
        {
            splits = DatasetLoader.Load(data, options);
            name = NameOf(data);
        }
        if (validation is null && test is null) return splits;
        DatasetSplits? valData = null, testData = null;
        try
        {
            valData = validation is null ? null : DatasetLoader.Load(validation, options with { SingleSplit = Split.Validation });
            testData = test is null ? null : DatasetLoader.Load(test, options with { SingleSplit = Split.Test });
        }
        catch
        {
            splits.Dispose();
            valData?.Dispose();
            throw;
        }
        var val = valData?.Validation ?? splits.Validation;
        var tst = testData?.Test ?? splits.Test;
        if (!val.ClassNames.SequenceEqual(splits.ClassNames) || !tst.ClassNames.SequenceEqual(splits.ClassNames))
            throw new UsageException("--val/--test: their classes differ from --data's.");
        // One fingerprint for the three sources, so that a change to any of them is seen.
        string? fingerprint = splits.Fingerprint is null ? null
            : Hash($"{splits.Fingerprint}\n{valData?.Fingerprint ?? "-"}\n{testData?.Fingerprint ?? "-"}");
        return new DatasetSplits(splits.Train, val, tst, splits.Origin, splits.Source, splits.Skipped, fingerprint)
        {
            ValidationHeldOut = validation is null && splits.ValidationHeldOut,
            TestHeldOut = test is null && splits.TestHeldOut,
        };
    }

    /// <summary>The name a dataset gets in tables when none is given: "synthetic", or the data's file or folder name.</summary>
    public static string NameOf(string data) =>
        IsSynthetic(data) ? "synthetic" : Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(data)));

    private static string Hash(string text) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)));

    private static string SyntheticKey(SyntheticFaceOptions o) => string.Create(CultureInfo.InvariantCulture,
        $"synthetic 1;per-class={o.TrainPerClass};beta={o.Beta:R};profile={o.Profile};seed={o.Seed};val={o.ValidationPerClass};test={o.TestPerClass};size={o.Size}");

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
