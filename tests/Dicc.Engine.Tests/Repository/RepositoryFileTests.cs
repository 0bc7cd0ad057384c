using Dicc.Engine.Tests.Support;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Repository;

/// <summary>Files of the repository that are not code but must keep promises of the docs.</summary>
public class RepositoryFileTests
{
    [Test]
    public void PrerequisitesScript_EnablesNonFreeInTheMachinesOwnSourceEntry_AndNamesNoPackageHost()
    {
        string root = TestSupport.RepositoryRoot() ?? throw new IgnoreException("the repository is not above the test binaries");
        string script = File.ReadAllText(Path.Combine(root, "scripts", "install-prerequisites.sh"));
        var commands = script.Split('\n').Where(l => !l.TrimStart().StartsWith('#'));
        Assert.That(commands.Where(l => l.Contains("://", StringComparison.Ordinal)), Is.Empty, "no package host is written by the project");
        Assert.That(script, Does.Not.Contain("debian-nonfree.sources"));
        Assert.That(script, Does.Contain("/etc/apt/sources.list.d/debian.sources").And.Contain("sed"));
    }

    [Test]
    public void GitIgnore_LeavesOutToolPackages()
    {
        string root = TestSupport.RepositoryRoot() ?? throw new IgnoreException("the repository is not above the test binaries");
        Assert.That(File.ReadAllLines(Path.Combine(root, ".gitignore")), Does.Contain("nupkg/"));
    }
}

/// <summary>The test run's output: a skipped GPU test's long reason is given once, then pointed to.</summary>
public class SkipReasonTests
{
    [Test]
    public void TheFullReason_IsGivenOncePerRun()
    {
        string what = "No widget here " + Guid.NewGuid().ToString("N");
        string detail = new('x', 600);
        Assert.That(TestSupport.SkipReason(what, detail), Is.EqualTo($"{what}: {detail}"));
        string again = TestSupport.SkipReason(what, detail);
        Assert.That(again, Does.StartWith(what).And.Not.Contain(detail));
        Assert.That(again.Length, Is.LessThan(150));
    }
}
