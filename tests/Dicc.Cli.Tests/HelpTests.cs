using Dicc.Cli.Infrastructure;
using NUnit.Framework;
using static Dicc.Cli.Tests.CliTestSupport;

namespace Dicc.Cli.Tests;

/// <summary>Every verb documents itself with examples, and the parser's own errors are one line with exit 2.</summary>
public class HelpTests
{
    [TestCase("synth")]
    [TestCase("longtail")]
    [TestCase("pack")]
    [TestCase("cluster")]
    [TestCase("compare")]
    [TestCase("predict")]
    [TestCase("export")]
    public void Help_ShowsOptionsAndExamples(string verb)
    {
        var run = Run(verb, "--help");
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success), run.ToString());
        Assert.That(run.Output, Does.Contain("EXAMPLES:"));
        Assert.That(run.Lines.Count(l => l.TrimStart().StartsWith($"dicc {verb} ", StringComparison.Ordinal)), Is.GreaterThanOrEqualTo(2), run.Output);
        Assert.That(run.Output, Does.Contain("--json"));
    }

    [TestCase("synth")]
    [TestCase("longtail")]
    [TestCase("pack")]
    [TestCase("cluster")]
    [TestCase("compare")]
    [TestCase("predict")]
    [TestCase("export")]
    public void UnknownOption_IsBadUsage(string verb) =>
        AssertBadUsage(Run(verb, "--no-such-flag", "x"), "Unknown option 'no-such-flag'");

    [Test]
    public void TopLevelHelp_ListsTheVerbs()
    {
        var run = Run("--help");
        Assert.That(run.ExitCode, Is.EqualTo(0));
        foreach (var verb in new[] { "synth", "longtail", "pack", "cluster", "compare", "predict", "export" })
            Assert.That(run.Lines.Any(l => l.TrimStart().StartsWith(verb + " ", StringComparison.Ordinal)), verb);
    }

    [Test]
    public void ValueOfTheWrongType_NamesTheOption()
    {
        AssertBadUsage(Run("compare", "runs", "--decimals", "two"), "--decimals: 'two' is not a whole number");
        AssertBadUsage(Run("cluster", "--features", "f.npy", "--labels", "l.npy", "--subclasses", "auto", "--out", "p.npy", "--ema-decay=fast"),
            "--ema-decay: 'fast' is not a number");
    }
}
