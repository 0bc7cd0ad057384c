namespace Dicc.Engine.Data;

/// <summary>The three parts of a dataset. Model selection uses <see cref="Validation"/>; <see cref="Test"/> is never used to pick anything.</summary>
public enum Split
{
    /// <summary>The training split.</summary>
    Train = 0,
    /// <summary>The validation split: model selection only.</summary>
    Validation = 1,
    /// <summary>The test split: reported, never used to select anything.</summary>
    Test = 2,
}

/// <summary>Names of the splits as files and the CLI write them.</summary>
public static class SplitNames
{
    /// <summary>The three splits in order.</summary>
    public static readonly Split[] All = [Split.Train, Split.Validation, Split.Test];

    /// <summary>Folder and manifest name of a split: train, val, test.</summary>
    public static string Name(this Split split) => split switch
    {
        Split.Train => "train",
        Split.Validation => "val",
        Split.Test => "test",
        _ => throw new ArgumentOutOfRangeException(nameof(split)),
    };

    /// <summary>
    /// Maps a folder name, manifest entry or FER2013 Usage value to a split, case-insensitively:
    /// train/training, val/valid/validation/dev/PublicTest, test/testing/PrivateTest.
    /// </summary>
    public static bool TryParse(string? name, out Split split)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "train" or "training":
                split = Split.Train;
                return true;
            case "val" or "valid" or "validation" or "dev" or "publictest":
                split = Split.Validation;
                return true;
            case "test" or "testing" or "privatetest":
                split = Split.Test;
                return true;
            default:
                split = default;
                return false;
        }
    }
}
