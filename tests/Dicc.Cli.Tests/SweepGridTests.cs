using Dicc.Cli.Infrastructure;
using Dicc.Cli.Sweep;
using NUnit.Framework;

namespace Dicc.Cli.Tests;

/// <summary>A sweep's grid file: its keys are dicc train's options, lists are axes, entries may carry their own settings.</summary>
public class SweepGridTests
{
    private const string Base = "/grids";

    private static List<SweepCell> Expand(string json) => SweepGrid.Expand(json, "g.json", Base);

    private static string Error(string json)
    {
        var e = Assert.Throws<UsageException>(() => Expand(json))!;
        Assert.That(e.Message, Does.Not.Contain("\n"), "one line");
        return e.Message;
    }

    private static string Args(SweepCell c) => string.Join(' ', c.Arguments);

    [Test]
    public void TheTable1Grid_IsEveryDatasetMethodAndRule_ForEachSeed_SeedsOutermost()
    {
        var cells = Expand("""
            {
              "datasets": [{"data": "fer-b10.manifest", "name": "FER2013", "subclasses": "fer2013-b10"},
                           {"data": "fer-b100.manifest", "name": "FER2013", "subclasses": "fer2013-b100"}],
              "methods": ["baseline", "dicc"],
              "rules": ["none", "resample", "reweight"],
              "seeds": 2,
              "epochs": 200
            }
            """);
        Assert.That(cells, Has.Count.EqualTo(2 * 2 * 3 * 2));
        Assert.That(cells.Select(c => c.Index), Is.EqualTo(Enumerable.Range(0, 24)));
        Assert.That(cells.Take(12).Select(c => c.Label("seed")), Is.All.EqualTo("1"), "every configuration's first seed comes first");
        // Both datasets are named FER2013: their folders take the data files' names.
        Assert.That(cells[0].Directory, Is.EqualTo("fer-b10/baseline-none/seed-1"));
        Assert.That(cells[1].Directory, Is.EqualTo("fer-b10/baseline-resample/seed-1"));
        Assert.That(cells[11].Directory, Is.EqualTo("fer-b100/dicc-reweight/seed-1"));
        Assert.That(cells[12].Directory, Is.EqualTo("fer-b10/baseline-none/seed-2"));
        Assert.That(Args(cells[11]), Is.EqualTo("--data /grids/fer-b100.manifest --method dicc --rule reweight --epochs 200 --dataset-name FER2013 " +
                                                "--subclasses fer2013-b100 --seed 1"), "relative data paths are read from the grid's folder");
        Assert.That(cells.Select(c => c.Directory).Distinct().Count(), Is.EqualTo(24));
    }

    [Test]
    public void AnEntrysOwnList_IsAnAxisOfItsCellsOnly_AndNamesTheirFolders()
    {
        var cells = Expand("""
            {
              "data": "synthetic",
              "methods": ["baseline", {"method": "dicc", "subclasses": ["sqrt", "8,1,20,100,40,4,80"], "partition": "rank"}],
              "ema-decay": 0.9
            }
            """);
        Assert.That(cells.Select(c => c.Directory), Is.EqualTo(new[]
        {
            "synthetic/baseline-none/seed-1", "synthetic/dicc-none,subclasses=sqrt/seed-1", "synthetic/dicc-none,subclasses=8_1_20_100_40_4_80/seed-1",
        }));
        Assert.That(Args(cells[0]), Is.EqualTo("--data synthetic --method baseline --ema-decay 0.9 --seed 1"));
        Assert.That(Args(cells[2]), Is.EqualTo("--data synthetic --method dicc --ema-decay 0.9 --subclasses 8,1,20,100,40,4,80 --partition rank --seed 1"));
    }

    [Test]
    public void AnEntrysSetting_OverridesTheGridsValueOrAxis_ForItsCells()
    {
        var cells = Expand("""
            {
              "datasets": ["a", {"data": "b", "lr": 0.5}],
              "lr": [0.1, 0.01],
              "seeds": [7]
            }
            """);
        Assert.That(cells.Select(Args), Is.EqualTo(new[]
        {
            "--data /grids/a --lr 0.1 --seed 7", "--data /grids/a --lr 0.01 --seed 7", "--data /grids/b --lr 0.5 --seed 7",
        }));
        Assert.That(cells.Select(c => c.Directory), Is.EqualTo(new[] { "a/baseline-none,lr=0.1/seed-7", "a/baseline-none,lr=0.01/seed-7", "b/baseline-none/seed-7" }));
    }

    [Test]
    public void Switches_AreTrueOrFalse_NullLeavesASettingUnset_AndSeedsCountFromSeed()
    {
        var cells = Expand("""{"data": "synthetic", "ten-crop": true, "allow-missing-classes": false, "wd": null, "seed": 5, "seeds": 2}""");
        Assert.That(cells.Select(Args), Is.EqualTo(new[] { "--data synthetic --ten-crop --seed 5", "--data synthetic --ten-crop --seed 6" }));
    }

    [TestCase("""{"datasets": ["a"], "lr": "fast"}""", "g.json, cell a/baseline-none/seed-1: --lr: 'fast' is not a number")]
    [TestCase("""{"datasets": ["a"], "methods": ["baseline", "svm"]}""", "cell a/svm-none/seed-1: --method: 'svm' is not one of baseline, dicc")]
    [TestCase("""{"datasets": ["a"], "learning-rate": 0.1}""", "g.json: \"learning-rate\": 'learning-rate' is not a dicc train option")]
    [TestCase("""{"datasets": ["a"], "out": "x"}""", "g.json: \"out\": a grid cannot set out: the sweep gives every cell its own run directory")]
    [TestCase("""{"datasets": ["a"], "device": "cuda"}""", "a grid cannot set device: the executor chooses each cell's device")]
    [TestCase("""{"datasets": ["a"], "rules": []}""", "g.json: \"rules\" is an empty list")]
    [TestCase("""{"datasets": ["a"], "ten-crop": "yes"}""", "\"ten-crop\": ten-crop is a switch: give true or false")]
    [TestCase("""{"datasets": ["a"], "epochs": true}""", "\"epochs\": epochs takes a value, not true")]
    [TestCase("""{"methods": ["dicc"]}""", "g.json: no data")]
    [TestCase("""{"datasets": ["a"], "seeds": 0}""", "\"seeds\": 0 is not a count >= 1")]
    [TestCase("""{"datasets": ["a"], "seeds": [1, 1]}""", "\"seeds\": 1 is listed twice")]
    [TestCase("""{"datasets": [{"data": "a", "subclasses": "sqrt"}], "methods": [{"method": "dicc", "subclasses": "auto"}]}""",
        "g.json: \"methods\"[0] sets subclasses, which \"datasets\"[0] already sets for these cells; set it in one place.")]
    [TestCase("""{"datasets": [{"name": "x"}]}""", "\"datasets\"[0]: an entry of \"datasets\" is a value or an object with \"data\" in it")]
    [TestCase("""{"datasets": ["a", "a"]}""", "cells 0 and 1 are both a/baseline-none/seed-1: the same settings twice")]
    [TestCase("[1, 2]", "g.json: a grid is a JSON object of dicc train settings")]
    public void ABadGrid_IsOneLineNamingTheFileAndTheKeyOrCell(string json, string expected) =>
        Assert.That(Error(json), Does.Contain(expected));

    [Test]
    public void MalformedJson_NamesTheLine()
    {
        Assert.That(Error("{\n  \"datasets\": [\"a\"],\n  \"lr\": 0.1 0.2\n}"), Does.StartWith("g.json:3: not valid JSON ("));
    }

    [Test]
    public void CommentsAndTrailingCommas_AreAllowed() =>
        Assert.That(Expand("{\n // the data\n \"data\": \"synthetic\", // one dataset\n \"seeds\": 1,\n}"), Has.Count.EqualTo(1));

    [Test]
    public void EveryDiccTrainOption_IsAGridKey_ButThoseTheSweepSets()
    {
        // What dicc train has, the grid takes: read from TrainSettings, so options added to dicc train later need nothing here.
        var flags = typeof(Training.TrainSettings).GetProperties()
            .Select(p => p.GetCustomAttributes(typeof(Spectre.Console.Cli.CommandOptionAttribute), true).Cast<Spectre.Console.Cli.CommandOptionAttribute>().SingleOrDefault())
            .Where(a => a is not null).Select(a => a!.LongNames[0]).ToList();
        Assert.That(flags, Has.Count.GreaterThan(30));
        Assert.That(TrainArguments.Options.Keys, Is.EquivalentTo(flags));
        Assert.That(TrainArguments.Reserved.Keys, Is.SubsetOf(flags));
        Assert.That(Expand("""{"data": "synthetic", "mapping-lr-scale": 2, "on-bad-image": "skip", "log-every": 5}""").Single().Arguments,
            Is.EqualTo(new[] { "--data", "synthetic", "--mapping-lr-scale", "2", "--on-bad-image", "skip", "--log-every", "5", "--seed", "1" }));
    }
}
