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

    /// <summary>
    /// The help of every verb renders (a '[' in an option's text once crashed it: Spectre reads help as markup)
    /// and shows every option's text as written.
    /// </summary>
    [Test]
    public void Help_OfEveryVerb_Renders_AndShowsEveryOptionsTextAsWritten()
    {
        Assert.That(DiccApp.Verbs.Select(v => v.Verb), Is.EquivalentTo(Run("--help").Lines
            .SkipWhile(l => !l.StartsWith("COMMANDS:", StringComparison.Ordinal)).Skip(1)
            .Select(l => l.Trim().Split(' ')[0]).Where(v => v.Length > 0)), "every verb is listed and has this test");
        foreach (var (verb, command) in DiccApp.Verbs)
        {
            var run = Run(verb, "--help");
            Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success), $"{verb}: {run}");
            Assert.That(run.Output, Does.Contain("USAGE:").And.Contain("EXAMPLES:"), verb);
            string flat = Flatten(run.Output);
            var settings = command.BaseType!.GetGenericArguments()[0];
            foreach (var property in settings.GetProperties())
            {
                if (property.GetCustomAttributes(typeof(System.ComponentModel.DescriptionAttribute), true).FirstOrDefault()
                    is not System.ComponentModel.DescriptionAttribute description) continue;
                Assert.That(description, Is.TypeOf<OptionHelpAttribute>(), $"{verb} {property.Name}: help texts use [OptionHelp], which escapes markup");
                string text = Flatten(((OptionHelpAttribute)description).Text).TrimEnd('.');
                Assert.That(flat, Does.Contain(text), $"{verb} --help shows the text of {property.Name} as written");
            }
        }
    }

    /// <summary>Help wraps long texts in a column: compare with line breaks and runs of spaces made single spaces.</summary>
    private static string Flatten(string text) => System.Text.RegularExpressions.Regex.Replace(text, "\\s+", " ");

    [TestCase("--lr", "abc", "--lr: 'abc' is not a number")]
    [TestCase("--epochs", "abc", "--epochs: 'abc' is not a whole number")]
    [TestCase("--batch", "1.5", "--batch: '1.5' is not a whole number")]
    [TestCase("--seed", "x", "--seed: 'x' is not a whole number")]
    [TestCase("--width", "abc", "--width: 'abc' is not a number")]
    [TestCase("--test-fraction", "half", "--test-fraction: 'half' is not a number")]
    public void MalformedValue_IsBadUsageNamingTheOption(string option, string value, string expected) =>
        AssertBadUsage(Run("train", "--data", "synthetic", option, value), expected);

    [Test]
    public void ValueOfTheWrongType_NamesTheOption()
    {
        AssertBadUsage(Run("compare", "runs", "--decimals", "two"), "--decimals: 'two' is not a whole number");
        AssertBadUsage(Run("cluster", "--features", "f.npy", "--labels", "l.npy", "--subclasses", "auto", "--out", "p.npy", "--ema-decay=fast"),
            "--ema-decay: 'fast' is not a number");
    }
}
