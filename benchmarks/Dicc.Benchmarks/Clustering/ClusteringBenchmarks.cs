using BenchmarkDotNet.Attributes;
using Dicc.Engine.Clustering;
using Dicc.Engine.Randomness;

namespace Dicc.Benchmarks.Clustering;

/// <summary>
/// One DICC step on the host (class sums, EMA, distances, partition) for a batch of 512-d features over
/// the seven expression classes with the paper's FER2013 beta = 100 plan. docs/method.md ("Cost") asks that clustering cost
/// under 1% of a training step; compare these times with the step time of the same batch size.
/// </summary>
[MemoryDiagnoser, MinColumn, MedianColumn]
public class ClusteringBenchmarks
{
    private const int FeatureDim = 512;
    private IntraClassClustering _clustering = null!;
    private float[] _features = [];
    private int[] _labels = [];
    private int[] _pseudo = [];

    [Params(32, 256, 4096)]
    public int Batch { get; set; }

    [Params(PartitionMode.Interval, PartitionMode.Rank)]
    public PartitionMode Partition { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new RandomStream(1);
        _features = new float[Batch * FeatureDim];
        for (int i = 0; i < _features.Length; i++) _features[i] = (float)random.NextNormal();
        _labels = new int[Batch];
        for (int i = 0; i < Batch; i++) _labels[i] = random.NextInt(7);
        _pseudo = new int[Batch];
        _clustering = new IntraClassClustering(new ClusteringConfig(SubclassPlan.Preset("fer2013-b100"), FeatureDim, Partition), Batch);
        _clustering.Assign(_features, _labels, _pseudo);
    }

    [Benchmark]
    public void Step() => _clustering.Assign(_features, _labels, _pseudo);
}
