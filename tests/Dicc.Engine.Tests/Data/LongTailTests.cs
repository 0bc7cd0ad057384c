using Dicc.Engine.Data;
using NUnit.Framework;
using static Dicc.Engine.Tests.Support.DataTestSupport;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Data;

public class LongTailTests
{
    // FER2013's train split per class (label order), from shared/data/README.md.
    private static readonly int[] Fer2013Train = [3995, 436, 4097, 7215, 4830, 3171, 4965];

    [Test]
    public void ExponentialProfile_MatchesTheCommunityCifar10LtCounts()
    {
        // CIFAR-10-LT at beta 100 (Cao et al. 2019, Cui et al. 2019): int(5000 * 0.01^(r / 9)).
        Assert.That(LongTail.ProfileCounts(10, 5000, 100, LongTailProfile.Exponential),
            Is.EqualTo(new[] { 5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50 }));
    }

    [Test]
    public void StepProfile_HeadKeepsNMax_TailGetsNMaxOverBeta()
    {
        Assert.That(LongTail.ProfileCounts(7, 1000, 10, LongTailProfile.Step), Is.EqualTo(new[] { 1000, 1000, 1000, 1000, 100, 100, 100 }));
        Assert.That(LongTail.ProfileCounts(7, 1000, 10, LongTailProfile.Step, stepHeadClasses: 2), Is.EqualTo(new[] { 1000, 1000, 100, 100, 100, 100, 100 }));
    }

    [Test]
    public void PaperFer2013Counts_OnlyTheirEndsFollowFromTheExponentialProfile()
    {
        var paper = LongTail.PaperFer2013Beta10.ToArray();
        // What follows from the profile: beta = n_max / n_min = 4300 / 430 exactly, n_max on the most
        // frequent class (happy) and n_min on the rarest (disgust), and the classes ranked as FER2013 ranks them.
        Assert.That(LongTail.ImbalanceFactor(paper), Is.EqualTo(10));
        Assert.That(LongTail.RankByFrequency(paper), Is.EqualTo(LongTail.RankByFrequency(Fer2013Train)));
        var exponential = LongTail.TargetCounts(Fer2013Train, new LongTailOptions { Beta = 10, MaxCount = 4300 });
        Assert.That(exponential[3], Is.EqualTo(paper[3]), "happy");
        Assert.That(exponential[1], Is.EqualTo(paper[1]), "disgust");
        // What does not: the middle counts were picked by hand (the profile gives 926, 1359, 1995, 631, 2929).
        Assert.That(exponential, Is.EqualTo(new[] { 926, 430, 1359, 4300, 1995, 631, 2929 }));
        // The step profile cannot give them either: its middle counts are n_max or n_max / beta.
        var step = LongTail.TargetCounts(Fer2013Train, new LongTailOptions { Beta = 10, Profile = LongTailProfile.Step });
        Assert.That(step.Distinct().Count(), Is.EqualTo(2));
        // The explicit counts are accepted as they are.
        Assert.That(LongTail.TargetCounts(Fer2013Train, new LongTailOptions { Counts = paper }), Is.EqualTo(paper));
    }

    [Test]
    public void DefaultNMax_IsTheLargestEveryClassCanSupply()
    {
        // Disgust has 436 images and is last of 7 ranks, so n_max = 436 * beta at most.
        Assert.That(LongTail.TargetCounts(Fer2013Train, new LongTailOptions { Beta = 10 }), Is.EqualTo(new[] { 939, 436, 1378, 4360, 2023, 639, 2970 }));
        Assert.That(LongTail.TargetCounts(Fer2013Train, new LongTailOptions { Beta = 100 }), Is.EqualTo(new[] { 334, 72, 721, 7215, 1554, 155, 3348 }));
        Assert.That(LongTail.TargetCounts(Fer2013Train, new LongTailOptions { Beta = 1 }), Is.EqualTo(Enumerable.Repeat(436, 7)));
    }

    [Test]
    public void ImpossibleRequests_NameTheOptionAndClass()
    {
        string[] names = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
        var tooMany = Assert.Throws<DataArgumentException>(() =>
            LongTail.TargetCounts(Fer2013Train, new LongTailOptions { Counts = [1, 500, 1, 1, 1, 1, 1] }, names))!;
        Assert.That(tooMany.Message, Is.EqualTo("counts: disgust asks for 500 images; only 436 available"));
        var wrongLength = Assert.Throws<DataArgumentException>(() => LongTail.TargetCounts(Fer2013Train, new LongTailOptions { Counts = [1, 2] }))!;
        Assert.That(wrongLength.Option, Is.EqualTo("counts"));
        var bigMax = Assert.Throws<DataArgumentException>(() => LongTail.TargetCounts(Fer2013Train, new LongTailOptions { Beta = 10, MaxCount = 5000 }, names))!;
        Assert.That(bigMax.Message, Does.StartWith("max count:").And.Contain("disgust"));
        Assert.That(Assert.Throws<DataArgumentException>(() => LongTail.TargetCounts(Fer2013Train, new LongTailOptions { Beta = 0.5 }))!.Option, Is.EqualTo("beta"));
        Assert.That(Assert.Throws<DataArgumentException>(() => LongTail.ProfileCounts(7, 50, 100, LongTailProfile.Exponential))!.Message,
            Does.Contain("leaves the tail class no image"));
        // A class without images is named (it once said only "some class has no images").
        int[] noDisgust = [3995, 0, 4097, 7215, 4830, 3171, 4965];
        Assert.That(Assert.Throws<DataArgumentException>(() => LongTail.TargetCounts(noDisgust, new LongTailOptions { Beta = 10 }, names))!.Message,
            Does.StartWith("beta: disgust has no training images to draw from"));
    }

    [Test]
    public void Select_IsExactSeededAndNested()
    {
        var labels = Enumerable.Range(0, 7).SelectMany(c => Enumerable.Repeat(c, Fer2013Train[c])).ToArray();
        new Dicc.Engine.Randomness.RandomStream(9).Shuffle(labels.AsSpan());
        var targets = LongTail.TargetCounts(Fer2013Train, new LongTailOptions { Beta = 10 });

        var a = LongTail.Select(labels, targets, seed: 3);
        var b = LongTail.Select(labels, targets, seed: 3);
        var c = LongTail.Select(labels, targets, seed: 4);

        Assert.That(a, Is.EqualTo(b), "same seed, same subset");
        Assert.That(a, Is.Not.EqualTo(c), "another seed, another subset");
        Assert.That(a, Is.Ordered.Ascending);
        Assert.That(a.Distinct().Count(), Is.EqualTo(a.Length));
        var counts = new int[7];
        foreach (int i in a) counts[labels[i]]++;
        Assert.That(counts, Is.EqualTo(targets));
        // Under one seed a more imbalanced subset is inside the less imbalanced one (per-class prefixes).
        var steeper = LongTail.Select(labels, LongTail.TargetCounts(Fer2013Train, new LongTailOptions { Beta = 100, MaxCount = 4360 }), seed: 3);
        Assert.That(steeper.Except(a), Is.Empty);
    }

    [Test]
    public void Apply_OnlyTouchesTrain()
    {
        var faces = Faces(20);
        var data = new DatasetSplits(faces, faces.AsSplit(Split.Validation), faces.AsSplit(Split.Test), DatasetOrigin.Synthetic, "faces");
        var tail = LongTail.Apply(data, new LongTailOptions { Beta = 10, Seed = 1 });
        // Equal frequencies rank by label: floor(20 * 10^(-r/6)) for r = 0..6.
        Assert.That(tail.Train.ClassCounts(), Is.EqualTo(new[] { 20, 13, 9, 6, 4, 2, 2 }));
        Assert.That(LongTail.ImbalanceFactor(tail.Train.ClassCounts()), Is.EqualTo(10));
        Assert.That(tail.Validation, Is.SameAs(data.Validation));
        Assert.That(tail.Test, Is.SameAs(data.Test));
    }

    [Test]
    public void Write_FromImageFolder_ListsFilesInAManifestThatLoadsBack()
    {
        using var dir = new TempDirectory();
        var faces = Faces(12);
        WriteSplitFolder(dir["data"], faces, perClassTrain: 10, perClassTest: 2);
        var load = Plain with { ValidationFraction = 0.2 };

        var report = LongTail.Write(dir["data"], dir["lt.manifest"], new LongTailOptions { Beta = 4, Seed = 7 }, load);

        Assert.That(report.Format, Is.EqualTo("manifest"));
        Assert.That(report.Before, Is.EqualTo(Enumerable.Repeat(8, 7)), "10 per class minus the 2 held out");
        Assert.That(report.ImbalanceFactor, Is.EqualTo(4), "n_max 8, n_min 2");
        Assert.That(File.ReadLines(dir["lt.manifest"]).First(), Is.EqualTo("#dicc-manifest 1"));
        Assert.That(Directory.GetFiles(dir.Path, "*.png", SearchOption.TopDirectoryOnly), Is.Empty, "no image copies");

        using var source = DatasetLoader.Load(dir["data"], load);
        using var subset = DatasetLoader.Load(dir["lt.manifest"], Plain);
        Assert.That(subset.Origin, Is.EqualTo(DatasetOrigin.Manifest));
        Assert.That(subset.Train.ClassCounts(), Is.EqualTo(report.After));
        Assert.That(subset.Validation.Sources, Is.EqualTo(source.Validation.Sources), "the held-out validation files are listed as they were");
        Assert.That(subset.Test.Pixels.ToArray(), Is.EqualTo(source.Test.Pixels.ToArray()));
        Assert.That(subset.Train.Sources!.Except(source.Train.Sources!), Is.Empty);
    }

    [Test]
    public void Write_FromCsv_WritesCsvRows_AndRefusesAManifest()
    {
        using var dir = new TempDirectory();
        var faces = Faces(10);
        Fer2013Csv.Write(dir["fer.csv"], [faces, Faces(2, seed: 2).AsSplit(Split.Validation), Faces(3, seed: 3).AsSplit(Split.Test)]);

        var report = LongTail.Write(dir["fer.csv"], dir["lt.csv"], new LongTailOptions { Counts = [10, 1, 5, 10, 7, 2, 9], Seed = 1 }, Plain);

        using var subset = DatasetLoader.Load(dir["lt.csv"], Plain);
        Assert.That(subset.Train.ClassCounts(), Is.EqualTo(new[] { 10, 1, 5, 10, 7, 2, 9 }));
        Assert.That((subset.Validation.Count, subset.Test.Count), Is.EqualTo((14, 21)));
        Assert.That(report.After, Is.EqualTo(new[] { 10, 1, 5, 10, 7, 2, 9 }));

        var e = Assert.Throws<DataArgumentException>(() => LongTail.Write(dir["fer.csv"], dir["lt.manifest"], new LongTailOptions(), Plain))!;
        Assert.That(e.Message, Does.StartWith("out: ").And.Contain("write the subset as a .csv"));
    }

    [Test]
    public void Manifest_BadLines_AreNamed()
    {
        using var dir = new TempDirectory();
        var path = dir["m.manifest"];
        File.WriteAllLines(path, ["#dicc-manifest 1", "split,label,path", "train,3,a.png", "holdout,3,b.png"]);
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(path, Plain))!;
        Assert.That(e.Message, Is.EqualTo($"{path}, line 4: unknown split 'holdout'; expected train, val or test"));

        File.WriteAllLines(path, ["#dicc-manifest 1", "split,label,path", "train,9,a.png"]);
        Assert.That(Assert.Throws<DataFormatException>(() => DatasetLoader.Load(path, Plain))!.Message, Does.Contain("line 3: label '9' is not in 0..6"));

        File.WriteAllLines(path, ["#dicc-manifest 1", "split,label,path", "train,3,missing.png"]);
        var missing = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(path, Plain))!;
        Assert.That(missing.Message, Is.EqualTo($"{Path.Combine(dir.Path, "missing.png")}: file does not exist"));
    }

    [Test]
    public void CommandLineParsers_AcceptProfilesCountsAndPresets_AndNameBadValues()
    {
        Assert.That(LongTail.ParseProfile("exp"), Is.EqualTo(LongTailProfile.Exponential));
        Assert.That(LongTail.ParseProfile("Step"), Is.EqualTo(LongTailProfile.Step));
        Assert.That(Assert.Throws<DataArgumentException>(() => LongTail.ParseProfile("linear"))!.Message, Is.EqualTo("profile: 'linear' is not a profile; expected exp or step"));
        Assert.That(LongTail.ParseCounts("8, 1,20"), Is.EqualTo(new[] { 8, 1, 20 }));
        Assert.That(LongTail.ParseCounts("fer2013-beta10"), Is.EqualTo(LongTail.PaperFer2013Beta10));
        Assert.That(LongTail.ParseCounts("FER2013-beta100"), Is.EqualTo(new[] { 387, 43, 1077, 4300, 1796, 139, 2997 }));
        Assert.That(LongTail.ImbalanceFactor(LongTail.PaperFer2013Beta100.ToArray()), Is.EqualTo(100));
        Assert.That(Assert.Throws<DataArgumentException>(() => LongTail.ParseCounts("8,-1"))!.Option, Is.EqualTo("counts"));
    }

    [Test]
    public void UnwritableOutput_IsAnOutArgumentError()
    {
        using var dir = new TempDirectory();
        var faces = Faces(2);
        Fer2013Csv.Write(dir["fer.csv"], [faces]);
        File.WriteAllText(dir["file"], "a file, not a folder");
        var target = Path.Combine(dir["file"], "lt.csv");
        var e = Assert.Throws<DataArgumentException>(() => LongTail.Write(dir["fer.csv"], target, new LongTailOptions { Beta = 2 }, Plain))!;
        Assert.That(e.Message, Does.StartWith($"out: cannot write {target}: "));
        var pack = Assert.Throws<DataArgumentException>(() => DatasetPack.Create(dir["fer.csv"], Path.Combine(dir["file"], "x.diccpack"), Plain))!;
        Assert.That(pack.Option, Is.EqualTo("out"));
    }
}
