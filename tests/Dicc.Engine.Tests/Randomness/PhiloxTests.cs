using Dicc.Engine.Randomness;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Randomness;

public class PhiloxTests
{
    // Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
    [Test]
    public void Block_MatchesRandom123KnownAnswers()
    {
        Assert.That(Philox.Block(0, 0, 0), Is.EqualTo((0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)));
        Assert.That(Philox.Block(ulong.MaxValue, ulong.MaxValue, ulong.MaxValue),
            Is.EqualTo((0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)));
    }

    [Test]
    public void Stream_IsReproducibleAndRestorableFromItsPosition()
    {
        var a = new RandomStream(42, 7);
        var first = Enumerable.Range(0, 100).Select(_ => a.NextUInt()).ToArray();
        var b = new RandomStream(42, 7);
        Assert.That(Enumerable.Range(0, 100).Select(_ => b.NextUInt()), Is.EqualTo(first));
        var c = new RandomStream(42, 7, position: 37);
        Assert.That(c.NextUInt(), Is.EqualTo(first[37]));
        Assert.That(new RandomStream(43, 7).NextUInt(), Is.Not.EqualTo(first[0]));
    }

    [Test]
    public void NextInt_IsUniformEnough()
    {
        var r = new RandomStream(1);
        var counts = new int[7];
        for (int i = 0; i < 70000; i++) counts[r.NextInt(7)]++;
        foreach (int c in counts) Assert.That(c, Is.InRange(9500, 10500));
    }

    [Test]
    public void NextNormal_HasUnitVariance()
    {
        var r = new RandomStream(3);
        double sum = 0, sq = 0;
        const int n = 200000;
        for (int i = 0; i < n; i++) { double v = r.NextNormal(); sum += v; sq += v * v; }
        Assert.That(sum / n, Is.EqualTo(0).Within(0.01));
        Assert.That(sq / n, Is.EqualTo(1).Within(0.02));
    }
}
