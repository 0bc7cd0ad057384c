using Dicc.Engine.Imbalance;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Imbalance;

public class EpochSamplerTests
{
    private const int Classes = 7, Batch = 32;

    /// <summary>Labels with the given class counts, classes interleaved so that index order says nothing.</summary>
    private static int[] LabelsWithCounts(int[] counts)
    {
        var labels = counts.SelectMany((n, c) => Enumerable.Repeat(c, n)).ToArray();
        new Dicc.Engine.Randomness.RandomStream(99).Shuffle<int>(labels);
        return labels;
    }

    [Test]
    public void Resample_MovesTheBatchClassMixFromLongTailedToNearlyUniform()
    {
        int[] counts = EffectiveNumberTests.Fer2013Beta100;
        var labels = LabelsWithCounts(counts);
        var sampler = new ClassBalancedSampler(labels, Classes, seed: 7);
        const int epochs = 10;
        int draws = epochs * sampler.EpochLength; // 107,390 draws, 3,355 full batches of 32
        var drawn = new long[Classes];
        var perSample = new int[labels.Length];
        int batches = 0, batchesWithDisgust = 0;
        for (int e = 0; e < epochs; e++)
        {
            var epoch = sampler.Epoch(e);
            for (int start = 0; start + Batch <= epoch.Length; start += Batch)
            {
                bool disgust = false;
                foreach (int i in epoch.AsSpan(start, Batch)) disgust |= labels[i] == 1;
                batches++;
                if (disgust) batchesWithDisgust++;
            }
            foreach (int i in epoch)
            {
                drawn[labels[i]]++;
                perSample[i]++;
            }
        }

        var expected = EffectiveNumber.ResampledClassShares(counts);
        for (int c = 0; c < Classes; c++)
        {
            double share = (double)drawn[c] / draws;
            double sigma = Math.Sqrt(expected[c] * (1 - expected[c]) / draws);
            // Within 5 standard deviations of n_c/E(n_c) normalised (about +-0.005 here) ...
            Assert.That(share, Is.EqualTo(expected[c]).Within(5 * sigma), $"class {c}: share of the draws");
            // ... which puts every class within 0.03 of 1/C = 0.143, where the original shares run from 0.004 to 0.40.
            Assert.That(share, Is.EqualTo(1.0 / Classes).Within(0.03), $"class {c}: near uniform");
        }
        Assert.That((double)counts[1] / labels.Length, Is.LessThan(0.005), "disgust's original share");
        Assert.That((double)counts[3] / labels.Length, Is.GreaterThan(0.39), "happy's original share");
        // With the original mix only 1 - (1 - 0.004)^32 = 12% of batches hold a disgust sample; resampled, 99%.
        Assert.That((double)batchesWithDisgust / batches, Is.GreaterThan(0.97));

        // Inside a class the draws are uniform: each of the 43 disgust samples is drawn about
        // draws * p / 43 = 337 times (binomial sigma 18); allow 6 sigma.
        double perDisgust = draws * expected[1] / counts[1];
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] == 1)
                Assert.That(perSample[i], Is.EqualTo(perDisgust).Within(6 * Math.Sqrt(perDisgust)), $"sample {i}");
    }

    [Test]
    public void Shuffle_KeepsTheOriginalMix_AsAPermutationPerEpoch()
    {
        var labels = LabelsWithCounts(EffectiveNumberTests.Fer2013Beta100);
        var sampler = new ShuffleSampler(labels.Length, seed: 7);
        var first = sampler.Epoch(0);
        var second = sampler.Epoch(1);
        Assert.That(first.Order(), Is.EqualTo(Enumerable.Range(0, labels.Length)));
        Assert.That(second.Order(), Is.EqualTo(Enumerable.Range(0, labels.Length)));
        Assert.That(second, Is.Not.EqualTo(first));
        Assert.That(first.Take(100), Is.Not.EqualTo(Enumerable.Range(0, 100)), "shuffled, not the identity");
    }

    [Test]
    public void Epochs_AreAPureFunctionOfSeedStreamAndEpoch_SoAResumedRunDrawsTheSame()
    {
        int[] labels = LabelsWithCounts([50, 5, 20]);
        var running = new ClassBalancedSampler(labels, 3, seed: 11, stream: 4);
        var epochs = Enumerable.Range(0, 4).Select(e => running.Epoch(e)).ToArray();
        Assert.That(running.Position, Is.GreaterThan(EpochSampler.EpochStartPosition(3)));

        // A fresh sampler (a resumed run) jumps straight to epoch 3.
        var resumed = new ClassBalancedSampler(labels, 3, seed: 11, stream: 4);
        Assert.That(resumed.Epoch(3), Is.EqualTo(epochs[3]));
        Assert.That(resumed.Epoch(1), Is.EqualTo(epochs[1]));
        Assert.That(epochs[2], Is.Not.EqualTo(epochs[3]));
        Assert.That(new ClassBalancedSampler(labels, 3, seed: 12, stream: 4).Epoch(3), Is.Not.EqualTo(epochs[3]));
        Assert.That(new ClassBalancedSampler(labels, 3, seed: 11, stream: 5).Epoch(3), Is.Not.EqualTo(epochs[3]));

        var shuffle = new ShuffleSampler(labels.Length, seed: 11);
        var s2 = shuffle.Epoch(2);
        Assert.That(new ShuffleSampler(labels.Length, seed: 11).Epoch(2), Is.EqualTo(s2));
    }

    [Test]
    public void ClassesWithoutSamples_AreNeverDrawn_AndBadLabelsAreNamed()
    {
        int[] labels = [2, 2, 0, 2, 0];
        var sampler = new ClassBalancedSampler(labels, 4, seed: 1);
        Assert.That(sampler.ClassShares[1], Is.Zero);
        Assert.That(sampler.ClassShares[3], Is.Zero);
        var epoch = sampler.Epoch(0).Concat(sampler.Epoch(1)).Concat(sampler.Epoch(2));
        Assert.That(epoch.Select(i => labels[i]), Is.All.AnyOf(0, 2));
        var e = Assert.Throws<ArgumentException>(() => new ClassBalancedSampler([0, 1, 7], 3, seed: 1));
        Assert.That(e!.Message, Does.Contain("Label 7 of sample 2"));
        Assert.Throws<ArgumentException>(() => sampler.FillEpoch(0, new int[4]));
    }
}
