using Dicc.Engine.Clustering;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Clustering;

public class SubclassPlanTests
{
    [Test]
    public void ExplicitList_GivesCountsExclusiveOffsetsAndTotal()
    {
        var plan = SubclassPlan.Parse(" 8, 1 ,20,100,40,4,80 ", 7);
        Assert.That(plan.Counts.ToArray(), Is.EqualTo(new[] { 8, 1, 20, 100, 40, 4, 80 }));
        Assert.That(plan.Offsets.ToArray(), Is.EqualTo(new[] { 0, 8, 9, 29, 129, 169, 173 }));
        Assert.That(plan.TotalSubclasses, Is.EqualTo(253));
        Assert.That(plan.ToString(), Is.EqualTo("8,1,20,100,40,4,80"));
        Assert.That(SubclassPlan.Parse(plan.ToString(), 7), Is.EqualTo(plan));
    }

    [Test]
    public void ClassOf_MapsEachPseudoLabelBackToItsClass()
    {
        var plan = SubclassPlan.FromCounts([8, 1, 20, 100, 40, 4, 80]);
        Assert.That(new[] { 0, 7, 8, 9, 28, 29, 128, 129, 168, 169, 172, 173, 252 }.Select(plan.ClassOf),
            Is.EqualTo(new[] { 0, 0, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => plan.ClassOf(253));
    }

    // The paper's Table 5 in canonical label order (angry, disgust, fear, happy, sad, surprise, neutral).
    // FER2013 is listed in its own label order already; MMAFEDB and Emotion-Domestic are listed in
    // alphabetical folder order (..., happy, neutral, sad, surprise), so their last three entries move.
    [TestCase("fer2013-b100", new[] { 8, 1, 20, 100, 40, 4, 80 })]
    [TestCase("fer2013-b10", new[] { 4, 1, 6, 10, 8, 2, 8 })]
    [TestCase("mmafedb-b100", new[] { 6, 1, 2, 60, 30, 20, 100 })]
    [TestCase("mmafedb-b10", new[] { 2, 1, 2, 8, 6, 4, 10 })]
    [TestCase("emotiondomestic-b100", new[] { 20, 6, 1, 100, 2, 30, 60 })]
    [TestCase("EmotionDomestic-B20", new[] { 2, 1, 1, 10, 1, 4, 8 })]
    public void Presets_HoldThePapersTable5_InCanonicalOrder(string name, int[] expected)
    {
        var plan = SubclassPlan.Parse(name, 7);
        Assert.That(plan.Counts.ToArray(), Is.EqualTo(expected));
        Assert.That(plan.PresetName, Is.EqualTo(name.ToLowerInvariant()));
    }

    [Test]
    public void Auto_DividesByTheTailClass_RoundingHalvesUp()
    {
        // The FER2013 beta = 10 training counts of the authors' script: n / 430 = 3.04, 1, 4.06, 10, 6.07, 2.03, 8.11.
        Assert.That(SubclassPlan.Parse("auto", 7, [1308, 430, 1744, 4300, 2612, 872, 3488]).Counts.ToArray(),
            Is.EqualTo(new[] { 3, 1, 4, 10, 6, 2, 8 }));
        // FER2013 beta = 100 (the authors' figure): n / 43 = 9.0, 1, 25.05, 100, 41.77, 3.23, 69.70.
        Assert.That(SubclassPlan.Auto([387, 43, 1077, 4300, 1796, 139, 2997]).Counts.ToArray(),
            Is.EqualTo(new[] { 9, 1, 25, 100, 42, 3, 70 }));
        // 5 / 2 = 2.5 -> 3 and 3 / 2 = 1.5 -> 2 (away from zero); an empty class gets 1.
        Assert.That(SubclassPlan.Auto([2, 5, 3, 0]).Counts.ToArray(), Is.EqualTo(new[] { 1, 3, 2, 1 }));
    }

    [Test]
    public void Sqrt_TakesTheRoundedSquareRootOfTheRatioToTheTail()
    {
        // n / 430 = 3.04, 1, 4.06, 10, 6.07, 2.03, 8.11 -> sqrt 1.74, 1, 2.01, 3.16, 2.46, 1.42, 2.85.
        Assert.That(SubclassPlan.Parse("sqrt", 7, [1308, 430, 1744, 4300, 2612, 872, 3488]).Counts.ToArray(),
            Is.EqualTo(new[] { 2, 1, 2, 3, 2, 1, 3 }));
        // 9 / 4 = 2.25 -> sqrt 1.5 -> 2 (halves round up); an empty class gets 1.
        Assert.That(SubclassPlan.Sqrt([4, 9, 0]).Counts.ToArray(), Is.EqualTo(new[] { 1, 2, 1 }));
        Assert.That(SubclassPlan.DeclaredClassCount("sqrt"), Is.Null);
    }

    [TestCase("1,2,3", "has 3 entries; expected 7")]
    [TestCase("8,0,20,100,40,4,80", "entry 2 is 0")]
    [TestCase("8,1,-20,100,40,4,80", "entry 3 is -20")]
    [TestCase("8,1,20,x,40,4,80", "entry 4 ('x') is not a whole number")]
    [TestCase("8,1,20,,40,4,80", "entry 4 ('') is not a whole number")]
    [TestCase("8,1,20,100,40,4,2.5", "entry 7 ('2.5') is not a whole number")]
    [TestCase("8,1,20,100,40,4,99999999999", "entry 7 ('99999999999') is not a whole number")]
    [TestCase("fer2013-b50", "unknown subclass preset 'fer2013-b50'; valid presets: fer2013-b100, fer2013-b10, mmafedb-b100, mmafedb-b10, emotiondomestic-b100, emotiondomestic-b20")]
    [TestCase("x,1,20,100,40,4,80", "entry 1 ('x') is not a whole number")]
    [TestCase("auto", "'auto' needs the training set's counts of all 7 classes")]
    [TestCase("  ", "empty subclass plan")]
    public void BadPlans_AreRejectedWithAMessageNamingTheProblem(string text, string message)
    {
        var e = Assert.Throws<SubclassPlanException>(() => SubclassPlan.Parse(text, 7));
        Assert.That(e!.Message, Does.Contain(message));
    }

    [TestCase("auto", null)]
    [TestCase("fer2013-b10", 7)]
    [TestCase("3,4", 2)]
    [TestCase("5", 1)]
    [TestCase("x,1,2", 3)]
    public void DeclaredClassCount_IsTheListLengthOrThePresetSize(string text, int? expected) =>
        Assert.That(SubclassPlan.DeclaredClassCount(text), Is.EqualTo(expected));

    [Test]
    public void PresetForSevenClasses_IsRejectedForAnotherClassCount()
    {
        var e = Assert.Throws<SubclassPlanException>(() => SubclassPlan.Parse("fer2013-b10", 5));
        Assert.That(e!.Message, Does.Contain("is for 7 classes, but there are 5"));
    }
}
