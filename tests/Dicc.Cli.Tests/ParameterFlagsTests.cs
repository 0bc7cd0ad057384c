using Dicc.Cli.Infrastructure;
using Dicc.Engine;
using NUnit.Framework;
using Spectre.Console.Cli;
using static Dicc.Cli.Tests.CliTestSupport;

namespace Dicc.Cli.Tests;

/// <summary>The engine names its parameters; the command shows its users the flags they typed instead.</summary>
public class ParameterFlagsTests
{
    [Test]
    public void EveryTranslatedParameter_IsAFlagOfSomeVerb()
    {
        var flags = typeof(DiccApp).Assembly.GetTypes()
            .SelectMany(t => t.GetProperties())
            .SelectMany(p => p.GetCustomAttributes(typeof(CommandOptionAttribute), false).Cast<CommandOptionAttribute>())
            .SelectMany(a => a.LongNames.Select(n => "--" + n))
            .ToHashSet();
        foreach (var (parameter, flag) in ParameterFlags.Flags)
            Assert.That(flags, Does.Contain(flag), $"{parameter} is translated to {flag}, which no verb has");
    }

    [Test]
    public void LeadingParameterName_BecomesTheFlag_AndNothingElseChanges()
    {
        var e = new InputException("emaDecay must be in [0, 1], got 1.5.") { Parameter = "emaDecay" };
        Assert.That(ParameterFlags.Translate(e), Is.EqualTo("--ema-decay must be in [0, 1], got 1.5."));
        var untranslated = new InputException("images are 36x36, smaller than the 44x44 crop.") { Parameter = "crop" };
        Assert.That(ParameterFlags.Translate(untranslated), Is.EqualTo(untranslated.Message), "only a leading name is replaced");
        Assert.That(ParameterFlags.Translate(new InputException("plain")), Is.EqualTo("plain"));
    }

    [Test]
    public void EngineValidation_ReachesTheUserWithTheFlag()
    {
        AssertBadUsage(Run("train", "--data", "synthetic:per-class=20,size=48,val=4,test=4,seed=1", "--method", "dicc", "--ema-decay", "1.5"),
            "--ema-decay must be in [0, 1], got 1.5.");
        AssertBadUsage(Run("train", "--data", "synthetic:per-class=20,size=48,val=4,test=4,seed=1", "--lr", "-1"),
            "--lr must be positive, got -1.");
    }
}
