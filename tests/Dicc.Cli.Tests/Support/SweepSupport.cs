using Dicc.Engine.IO;
using Dicc.Engine.Training;
using NUnit.Framework;

namespace Dicc.Cli.Tests.Support;

/// <summary>The tiny sweep the sweep tests train, and the comparison of two runs' results.</summary>
internal static class SweepSupport
{
    /// <summary>
    /// Synthetic faces and a narrow VGG11: 0.3-0.5 s an epoch with two cells on two cores (2026-11-29), so that a task
    /// can be stopped mid-run: the stop tests signal after a first epoch, polling every 200 ms. (With 60 images a class
    /// an epoch had come down to 0.05 s as the CPU backend got faster, and a sweep could finish between the poll and the
    /// signal.)
    /// </summary>
    public const string Data = "synthetic:per-class=300,size=36,val=4,test=6,seed=3";

    /// <summary>A grid of 2 methods x 2 seeds (4 cells) of <paramref name="epochs"/> epochs.</summary>
    public static string Grid(int epochs) => $$"""
        {
          // 2 methods x 2 seeds on synthetic faces, a tiny model
          "datasets": [{"data": "{{Data}}", "name": "faces"}],
          "methods": ["baseline", {"method": "dicc", "subclasses": "sqrt", "partition": "rank"}],
          "seeds": 2,
          "arch": "vgg11", "width": 0.125, "crop": 32, "lr": 0.01, "batch": 16,
          "epochs": {{epochs}},
        }
        """;

    /// <summary>The run directories of the grid's cells, relative to the sweep folder, in cell order.</summary>
    public static readonly string[] Cells =
        ["faces/baseline-none/seed-1", "faces/dicc-none/seed-1", "faces/baseline-none/seed-2", "faces/dicc-none/seed-2"];

    /// <summary>metrics.jsonl without the timings, which differ between any two runs.</summary>
    public static string[] MetricsWithoutTimes(string run) =>
        new RunDirectory(run).ReadMetrics().Select(m => RunDirectory.Serialize(m with { Seconds = 0, ImagesPerSecond = 0 })).ToArray();

    /// <summary>
    /// Asserts that two runs computed the same: the test and validation reports and result.json byte for byte,
    /// every metrics line but its timings, and every tensor of the last and the best checkpoint (their metadata
    /// holds timings too).
    /// </summary>
    public static void AssertSameResults(string run, string reference)
    {
        foreach (var file in new[] { "report.json", "report-validation.json", "result.json" })
            Assert.That(File.ReadAllBytes(Path.Combine(run, file)), Is.EqualTo(File.ReadAllBytes(Path.Combine(reference, file))), $"{run}: {file} as in {reference}");
        Assert.That(MetricsWithoutTimes(run), Is.EqualTo(MetricsWithoutTimes(reference)), $"{run}: metrics.jsonl as in {reference}");
        foreach (var checkpoint in new[] { "checkpoints/last.safetensors", "checkpoints/best.safetensors" })
        {
            var a = SafetensorsFile.Load(Path.Combine(run, checkpoint));
            var b = SafetensorsFile.Load(Path.Combine(reference, checkpoint));
            Assert.That(a.Names, Is.EqualTo(b.Names), $"{run}: {checkpoint} holds the same tensors");
            foreach (var name in a.Names)
                Assert.That(a.Tensors[name].Data.ToArray(), Is.EqualTo(b.Tensors[name].Data.ToArray()), $"{run}: {checkpoint} tensor {name}");
        }
    }
}
