using Dicc.Engine.Data;
using Dicc.Engine.Tests.Support;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Data;

/// <summary>
/// Subject-independent k-fold on files named as CK+ and JAFFE name theirs (synthetic faces written under such
/// names): no subject in two folds, every image tested exactly once, validation from training subjects only,
/// the same seed the same folds.
/// </summary>
public class SubjectFoldsTests
{
    private TempDirectory _temp = null!;

    [SetUp]
    public void SetUp() => _temp = new TempDirectory();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    private static readonly DatasetLoadOptions Pooled = new() { Cache = PackCacheMode.Off, ValidationFraction = 0 };

    [Test]
    public void CkPlusFolds_NoSubjectCrossesFolds_EveryImageIsTestedOnce_ValidationIsFromTrainingSubjects()
    {
        var subjectOf = DataTestSupport.WriteCkPlusStyle(_temp["ck"], subjects: 23, seed: 5);
        using var data = DatasetLoader.Load(_temp["ck"], Pooled);
        var pool = SubjectFolds.Pool(data);
        var assignment = SubjectFolds.Assign(pool, SubjectFolds.ParseGroupBy("ck+"), folds: 10, seed: 3);

        Assert.That(assignment.Subjects, Has.Count.EqualTo(23));
        Assert.That(assignment.Splits.Select(s => s.Fold), Is.EqualTo(Enumerable.Range(1, 10)));
        var tested = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var split in assignment.Splits)
        {
            using var fold = SubjectFolds.Apply(data, split);
            string Subject(string source) => subjectOf[source];
            var train = fold.Train.Sources!.Select(Subject).ToHashSet();
            var validation = fold.Validation.Sources!.Select(Subject).ToHashSet();
            var test = fold.Test.Sources!.Select(Subject).ToHashSet();
            Assert.Multiple(() =>
            {
                Assert.That(test, Is.EquivalentTo(split.TestSubjects), $"fold {split.Fold}: the test split is its subjects' images");
                Assert.That(validation, Is.EquivalentTo(split.ValidationSubjects), $"fold {split.Fold}");
                Assert.That(test.Overlaps(train) || test.Overlaps(validation), Is.False, $"fold {split.Fold}: a test subject is also trained or validated on");
                Assert.That(validation.Overlaps(train), Is.False, $"fold {split.Fold}: validation is whole training subjects");
                Assert.That(fold.Train.Count + fold.Validation.Count + fold.Test.Count, Is.EqualTo(pool.Count), $"fold {split.Fold}: every image is used");
                Assert.That(fold.Validation.Count, Is.GreaterThan(0), $"fold {split.Fold}: has validation images");
                Assert.That(test.All(s => assignment.Subjects[s] == split.Fold), $"fold {split.Fold}: the map agrees");
            });
            foreach (var source in fold.Test.Sources!) tested[source] = tested.GetValueOrDefault(source) + 1;
        }
        Assert.That(tested.Keys, Is.EquivalentTo(subjectOf.Keys), "every image is tested");
        Assert.That(tested.Values.Distinct(), Is.EqualTo(new[] { 1 }), "exactly once");
    }

    [Test]
    public void Folds_AreBalanced_AsFarAsWholeSubjectsAllow()
    {
        var subjectOf = DataTestSupport.WriteCkPlusStyle(_temp["ck"], subjects: 40, seed: 8);
        using var data = DatasetLoader.Load(_temp["ck"], Pooled);
        var pool = SubjectFolds.Pool(data);
        var assignment = SubjectFolds.Assign(pool, SubjectFolds.ParseGroupBy("ck+"), folds: 5, seed: 1);
        var sizes = new int[5];
        var perClass = new int[5, pool.ClassCount];
        for (int i = 0; i < pool.Count; i++)
        {
            int f = assignment.Subjects[subjectOf[pool.Sources![i]]] - 1;
            sizes[f]++;
            perClass[f, pool.Label(i)]++;
        }
        int largestSubject = subjectOf.Values.GroupBy(s => s).Max(g => g.Count());
        var totals = pool.ClassCounts();
        TestContext.Out.WriteLine($"fold sizes {string.Join(", ", sizes)}; largest subject {largestSubject} images");
        Assert.That(sizes.Max() - sizes.Min(), Is.LessThanOrEqualTo(largestSubject + 2), "fold sizes within about one subject");
        for (int c = 0; c < pool.ClassCount; c++)
            for (int f = 0; f < 5; f++)
                Assert.That(perClass[f, c], Is.GreaterThan(0), $"fold {f + 1} tests class {pool.ClassNames[c]} ({totals[c]} images in all)");
    }

    [Test]
    public void TheSameSeed_GivesTheSameFolds_AnotherSeedOthers()
    {
        DataTestSupport.WriteCkPlusStyle(_temp["ck"], subjects: 23, seed: 5);
        using var data = DatasetLoader.Load(_temp["ck"], Pooled);
        var pool = SubjectFolds.Pool(data);
        var regex = SubjectFolds.ParseGroupBy("ck+");
        var a = SubjectFolds.Assign(pool, regex, 10, seed: 3);
        var b = SubjectFolds.Assign(pool, regex, 10, seed: 3);
        var c = SubjectFolds.Assign(pool, regex, 10, seed: 4);
        Assert.Multiple(() =>
        {
            Assert.That(b.Subjects, Is.EquivalentTo(a.Subjects));
            Assert.That(b.Splits.Select(s => string.Join(',', s.TestSubjects) + "|" + string.Join(',', s.ValidationSubjects)),
                Is.EqualTo(a.Splits.Select(s => string.Join(',', s.TestSubjects) + "|" + string.Join(',', s.ValidationSubjects))));
            Assert.That(c.Subjects, Is.Not.EquivalentTo(a.Subjects), "another seed deals otherwise");
        });
        // The split of a fold is made again from what config.json records, with the same fingerprint.
        using var once = SubjectFolds.Apply(data, a.Splits[2]);
        using var again = SubjectFolds.Apply(data, b.Splits[2] with { TestSubjects = [.. b.Splits[2].TestSubjects] });
        Assert.That(again.Fingerprint, Is.EqualTo(once.Fingerprint).And.Not.EqualTo(data.Fingerprint));
        Assert.That(again.Test.Sources, Is.EqualTo(once.Test.Sources));
    }

    [Test]
    public void JaffeFolds_TestOneSubjectEach()
    {
        var subjectOf = DataTestSupport.WriteJaffeStyle(_temp["jaffe"], perExpression: 2, seed: 2);
        using var data = DatasetLoader.Load(_temp["jaffe"], Pooled);
        var pool = SubjectFolds.Pool(data);
        Assert.That(SubjectFolds.SubjectsOf(pool, SubjectFolds.ParseGroupBy("jaffe")), Is.EqualTo(pool.Sources!.Select(s => subjectOf[s])));
        var assignment = SubjectFolds.Assign(pool, SubjectFolds.ParseGroupBy("jaffe"), folds: 10, seed: 1);
        Assert.That(assignment.Splits.Select(s => s.TestSubjects.Length), Is.All.EqualTo(1), "ten subjects in ten folds");
        Assert.That(assignment.Splits.SelectMany(s => s.TestSubjects), Is.EquivalentTo(subjectOf.Values.Distinct()));
        Assert.That(assignment.Splits.Select(s => s.ValidationSubjects.Length), Is.All.EqualTo(1), "one of the nine training subjects validates");
        using var fold = SubjectFolds.Apply(data, assignment.Splits[0]);
        Assert.That(fold.Test.ClassCounts(), Is.All.EqualTo(2), "a JAFFE subject shows every expression");
    }

    [Test]
    public void BadGroupings_AreOneLineErrorsNamingTheParameterAndTheFile()
    {
        DataTestSupport.WriteCkPlusStyle(_temp["ck"], subjects: 4, seed: 5);
        DataTestSupport.WriteFace(DataTestSupport.Faces(1), 0, _temp["ck/angry"], "subject-unknown.png");
        using var data = DatasetLoader.Load(_temp["ck"], Pooled);
        var pool = SubjectFolds.Pool(data);

        var noGroup = Assert.Throws<InputException>(() => SubjectFolds.ParseGroupBy(@"^S\d+_"))!;
        Assert.That(noGroup.Parameter, Is.EqualTo("groupBy"));
        Assert.That(noGroup.Message, Does.StartWith("groupBy: ").And.Contain("has no group"));
        Assert.That(Assert.Throws<InputException>(() => SubjectFolds.ParseGroupBy("(unclosed"))!.Message, Does.Contain("is not a regular expression"));

        var unmatched = Assert.Throws<InputException>(() => SubjectFolds.Assign(pool, SubjectFolds.ParseGroupBy("ck+"), 2, 0))!;
        Assert.That(unmatched.Message, Does.Contain(Path.Combine(_temp["ck/angry"], "subject-unknown.png")).And.Contain("gives no subject"));

        File.Delete(Path.Combine(_temp["ck/angry"], "subject-unknown.png"));
        using var clean = DatasetLoader.Load(_temp["ck"], Pooled);
        var tooMany = Assert.Throws<InputException>(() => SubjectFolds.Assign(SubjectFolds.Pool(clean), SubjectFolds.ParseGroupBy("ck+"), 5, 0))!;
        Assert.That((tooMany.Parameter, tooMany.Message), Is.EqualTo(("folds", "folds: 5 folds need at least 5 subjects; the data has 4 (S100, S101, S102, S103).")));
    }

    [Test]
    public void AFoldSplit_PoolsEverySplitOfTheSource()
    {
        DataTestSupport.WriteCkPlusStyle(_temp["ck/train"], subjects: 6, seed: 5);
        DataTestSupport.WriteCkPlusStyle(_temp["ck/test"], subjects: 1, seed: 9); // subject S100 again, in test/
        using var data = DatasetLoader.Load(_temp["ck"], Pooled with { AllowMissingClasses = true });
        var pool = SubjectFolds.Pool(data);
        Assert.That(pool.Count, Is.EqualTo(data.Train.Count + data.Test.Count));
        var assignment = SubjectFolds.Assign(pool, SubjectFolds.ParseGroupBy("ck+"), 3, 0);
        var fold = assignment.Splits.Single(s => s.TestSubjects.Contains("S100"));
        using var split = SubjectFolds.Apply(data, fold);
        Assert.That(split.Test.Sources, Has.Some.Contains(Path.Combine("ck", "test")), "S100's test-folder images are in its fold's test split");
        Assert.That(split.Train.Sources!.Concat(split.Validation.Sources!), Has.None.Contains("S100_"));
    }
}
