using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dicc.Engine.Backends.Cuda;
using Dicc.Engine.Models;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;

namespace Dicc.Benchmarks.Gpu;

/// <summary>
/// `gpu-step`: training-step time of the VGG on 1x44x44 inputs on the CUDA backend, baseline and DICC, timed with
/// CUDA events over many steps after a warm-up (the GPU's own clock: host-side gaps count, as they would in
/// training), plus the DICC clustering module alone per batch and as a share of the DICC step. Prints one JSON
/// object; benchmarks/pytorch/vgg_step.py prints the same for PyTorch, and scripts/gpu-check.sh puts them side
/// by side. Each configuration gets a fresh backend, so memory and algorithm choices do not carry over.
/// </summary>
internal static class GpuStep
{
    private const string Usage =
        "usage: gpu-step [--batches 32,256] [--steps 200] [--warmup 20] [--methods baseline,dicc] [--depth 19] [--width 1] " +
        "[--search heuristic|measure] [--out FILE]";

    /// <summary>The paper's FER2013 beta = 10 subclass numbers (K = 39): what a DICC run on FER2013 uses.</summary>
    public const string Subclasses = "4,1,6,10,8,2,8";

    public static int Run(string[] args)
    {
        int[] batches = [32, 256];
        int steps = 200, warmup = 20, depth = 19;
        double width = 1.0;
        string[] methods = ["baseline", "dicc"];
        var search = ConvolutionSearch.Heuristic;
        string? output = null;
        for (int i = 0; i < args.Length; i += 2)
        {
            string name = args[i];
            string? value = i + 1 < args.Length ? args[i + 1] : null;
            bool ok = value is not null && name switch
            {
                "--batches" => TryInts(value, out batches),
                "--steps" => int.TryParse(value, CultureInfo.InvariantCulture, out steps) && steps > 0,
                "--warmup" => int.TryParse(value, CultureInfo.InvariantCulture, out warmup) && warmup >= 0,
                "--depth" => int.TryParse(value, CultureInfo.InvariantCulture, out depth) && Enum.IsDefined((VggDepth)depth),
                "--width" => double.TryParse(value, CultureInfo.InvariantCulture, out width) && width > 0,
                "--methods" => (methods = value.Split(',')).All(m => m is "baseline" or "dicc"),
                "--search" => Enum.TryParse(value, ignoreCase: true, out search) && Enum.IsDefined(search),
                "--out" => (output = value) is not null,
                _ => false,
            };
            if (!ok)
            {
                Console.Error.WriteLine($"gpu-step: bad argument '{name} {value}'.\n{Usage}");
                return 2;
            }
        }

        var results = new JsonArray();
        string device = "", library = "";
        foreach (string method in methods)
            foreach (int batch in batches)
            {
                using var backend = CudaBackend.Create(0, new CudaBackendOptions { ConvolutionSearch = search });
                device = backend.Context.Device.ToString();
                library = backend.Description;
                var r = Measure(backend, method == "dicc" ? TrainingMethod.Dicc : TrainingMethod.Baseline, (VggDepth)depth, width, batch, steps, warmup);
                Console.Error.WriteLine($"gpu-step: {method} batch {batch}: {r["ms_per_step"]} ms/step");
                results.Add(r);
            }

        var json = new JsonObject
        {
            ["engine"] = "dicc", ["device"] = device, ["backend"] = library, ["precision"] = "float32, no TF32",
            ["convolution_search"] = search.ToString().ToLowerInvariant(), ["depth"] = depth, ["width"] = width,
            ["input"] = "1x44x44", ["classes"] = 7, ["subclasses"] = Subclasses, ["steps"] = steps, ["warmup"] = warmup,
            ["results"] = results,
        };
        string text = json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        Console.WriteLine(text);
        if (output is not null) File.WriteAllText(output, text);
        return 0;
    }

    private static JsonObject Measure(CudaBackend backend, TrainingMethod method, VggDepth depth, double width, int batch, int steps, int warmup)
    {
        var options = new TrainingOptions
        {
            Arch = depth, Width = width, Method = method, Subclasses = Subclasses, BatchSize = batch, LearningRate = 0.01,
            WeightDecay = 5e-4, Seed = 1,
        };
        var model = ModelFactory.Create(backend, options, 7, [1, 1, 1, 1, 1, 1, 1]);
        var random = new RandomStream(2);
        var images = backend.Create(new Shape(batch, 1, 44, 44));
        var labels = backend.Create(new Shape(batch), DType.Int32);
        backend.CopyIn<float>(images, Enumerable.Range(0, (int)images.ElementCount).Select(_ => random.NextFloat()).ToArray());
        backend.CopyIn<int>(labels, Enumerable.Range(0, batch).Select(_ => random.NextInt(7)).ToArray());

        for (int s = 0; s < warmup; s++) model.TrainStep(images, labels, 0.01f);
        backend.Synchronize();
        long chunks = backend.DeviceAllocationCount;
        using var start = backend.Context.CreateEvent();
        using var end = backend.Context.CreateEvent();
        start.Record(backend.Stream);
        for (int s = 0; s < steps; s++) model.TrainStep(images, labels, 0.01f);
        end.Record(backend.Stream);
        end.Synchronize();
        double stepMs = end.ElapsedMillisecondsSince(start) / steps;
        var (loss, _) = model.ReadLosses();
        double flops = 3.0 * model.ForwardFlops(images.Shape);

        var result = new JsonObject
        {
            ["method"] = method == TrainingMethod.Dicc ? "dicc" : "baseline", ["batch"] = batch, ["ms_per_step"] = Math.Round(stepMs, 4),
            ["images_per_second"] = Math.Round(batch / (stepMs / 1000), 1), ["tflops"] = Math.Round(flops / (stepMs * 1e9), 3),
            ["final_loss"] = float.IsFinite(loss) ? Math.Round(loss, 5) : null,
            ["reserved_mib"] = backend.ReservedBytes >> 20,
            ["allocations_during_timing"] = backend.DeviceAllocationCount - chunks,
        };
        if (model is DiccModel dicc)
        {
            // The module alone on the features and labels of the last step, many times, timed the same way.
            var pseudo = backend.Create(new Shape(batch), DType.Int32);
            for (int s = 0; s < 10; s++) dicc.Clustering.Assign(dicc.Features, labels, pseudo);
            start.Record(backend.Stream);
            for (int s = 0; s < steps; s++) dicc.Clustering.Assign(dicc.Features, labels, pseudo);
            end.Record(backend.Stream);
            end.Synchronize();
            backend.Synchronize();
            double clusterMs = end.ElapsedMillisecondsSince(start) / steps;
            result["cluster_ms"] = Math.Round(clusterMs, 5);
            result["cluster_share_of_step"] = Math.Round(clusterMs / stepMs, 5);
            result["cluster_path"] = Engine.Backends.Cuda.Kernels.LaunchShapes.UsesFusedClustering(batch, 7, Vgg.FeatureSize(new VggOptions { Width = width }))
                ? "one block" : "multi-block";
        }
        return result;
    }

    private static bool TryInts(string? text, out int[] values)
    {
        values = [];
        if (text is null) return false;
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        values = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], CultureInfo.InvariantCulture, out values[i]) || values[i] < 2) return false;
        return true;
    }
}
