namespace Dicc.Engine.Data;

/// <summary>
/// The seven basic expressions in FER2013's label order (labels 0..6), and the folder names other datasets
/// use for them (RAF-DB, AffectNet, MMAFEDB, CK+ spell them differently).
/// </summary>
public static class EmotionClasses
{
    /// <summary>angry, disgust, fear, happy, sad, surprise, neutral: the FER2013 ids 0..6.</summary>
    public static IReadOnlyList<string> Canonical { get; } = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

    /// <summary>The number of FER2013 emotion classes.</summary>
    public const int Count = 7;

    private static readonly Dictionary<string, int> Aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["angry"] = 0, ["anger"] = 0,
        ["disgust"] = 1, ["disgusted"] = 1,
        ["fear"] = 2, ["fearful"] = 2, ["afraid"] = 2, ["scared"] = 2,
        ["happy"] = 3, ["happiness"] = 3, ["joy"] = 3,
        ["sad"] = 4, ["sadness"] = 4,
        ["surprise"] = 5, ["surprised"] = 5,
        ["neutral"] = 6,
    };

    /// <summary>The canonical label of a class name or alias (case-insensitive), or false.</summary>
    public static bool TryResolve(string name, out int label) => Aliases.TryGetValue(name.Trim(), out label);

    /// <summary>
    /// Resolves a class name against an explicit class list (exact, case-insensitive) when one is given,
    /// otherwise against the canonical names and aliases.
    /// </summary>
    public static bool TryResolve(string name, IReadOnlyList<string>? classList, out int label)
    {
        if (classList is null) return TryResolve(name, out label);
        for (int i = 0; i < classList.Count; i++)
        {
            if (string.Equals(classList[i], name.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                label = i;
                return true;
            }
        }
        label = -1;
        return false;
    }

    /// <summary>A human-readable list of accepted names, for error messages.</summary>
    internal static string Expected(IReadOnlyList<string>? classList) =>
        classList is null
            ? $"expected one of {string.Join(", ", Canonical)} (or an alias such as anger, sadness, surprised, happiness), or give a class list"
            : $"expected one of the given classes {string.Join(", ", classList)}";
}
