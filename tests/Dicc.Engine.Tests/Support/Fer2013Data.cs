namespace Dicc.Engine.Tests.Support;

/// <summary>
/// Where the real FER2013 image folders are for tests that need them (they are never copied into the repository):
/// <c>DICC_FER2013</c>, else <c>shared/data/fer2013</c> beside the repository. Tests skip with <see cref="MissingReason"/>
/// where neither exists (CI may not have the data).
/// </summary>
internal static class Fer2013Data
{
    /// <summary>The folder (with train/ and test/), or null.</summary>
    public static string? Folder { get; } = Find();

    /// <summary>Why a test that needs the data was skipped.</summary>
    public static string MissingReason =>
        "FER2013 not found: set DICC_FER2013 to the Kaggle image folders (train/, test/), or put them at ../shared/data/fer2013 beside the repository.";

    private static string? Find()
    {
        if (Environment.GetEnvironmentVariable("DICC_FER2013") is { Length: > 0 } variable)
            return IsFer2013(variable) ? Path.GetFullPath(variable) : null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "Dicc.sln"))) continue;
            string candidate = Path.Combine(dir.FullName, "..", "shared", "data", "fer2013");
            return IsFer2013(candidate) ? Path.GetFullPath(candidate) : null;
        }
        return null;
    }

    private static bool IsFer2013(string folder) =>
        Directory.Exists(Path.Combine(folder, "train")) && Directory.Exists(Path.Combine(folder, "test"));

    /// <summary>
    /// Copies a small slice of FER2013 into <paramref name="target"/> in the same layout: the first
    /// <paramref name="trainPerClass"/> training images of each class (ordinal name order), and the first
    /// <paramref name="validationPerClass"/> PublicTest and <paramref name="testPerClass"/> PrivateTest images of each class.
    /// </summary>
    public static void CopySubset(string target, int trainPerClass, int validationPerClass, int testPerClass)
    {
        string source = Folder ?? throw new InvalidOperationException(MissingReason);
        foreach (string classFolder in Directory.GetDirectories(Path.Combine(source, "train")).Order(StringComparer.Ordinal))
            Copy(classFolder, Path.Combine(target, "train", Path.GetFileName(classFolder)), Directory.GetFiles(classFolder).Order(StringComparer.Ordinal).Take(trainPerClass));
        foreach (string classFolder in Directory.GetDirectories(Path.Combine(source, "test")).Order(StringComparer.Ordinal))
        {
            var files = Directory.GetFiles(classFolder).Order(StringComparer.Ordinal).ToList();
            var chosen = files.Where(f => Path.GetFileName(f).StartsWith("PublicTest", StringComparison.Ordinal)).Take(validationPerClass)
                .Concat(files.Where(f => Path.GetFileName(f).StartsWith("PrivateTest", StringComparison.Ordinal)).Take(testPerClass));
            Copy(classFolder, Path.Combine(target, "test", Path.GetFileName(classFolder)), chosen);
        }
    }

    private static void Copy(string from, string to, IEnumerable<string> files)
    {
        Directory.CreateDirectory(to);
        foreach (string file in files) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }
}
