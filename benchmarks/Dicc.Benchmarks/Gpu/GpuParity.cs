using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dicc.Engine.Backends;
using Dicc.Engine.Checkpoints;
using Dicc.Engine.IO;
using Dicc.Engine.Layers;
using Dicc.Engine.Models;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;

namespace Dicc.Benchmarks.Gpu;

/// <summary>
/// One VGG19 training step compared with PyTorch's (benchmarks/pytorch/vgg_parity.py):
/// <list type="bullet">
/// <item><c>parity-export --device cuda|cpu --method baseline|dicc --batch 8 --dir DIR</c> writes the model's initial
/// state (DIR/checkpoint.safetensors, PyTorch names), the inputs (DIR/inputs.safetensors: images, labels, and for
/// DICC the pseudo-labels our clustering gave), and our logits, losses, gradients and updated BatchNorm running
/// statistics of one forward/backward without the optimiser step (DIR/ours-DEVICE.safetensors). Dropout is 0
/// (PyTorch cannot draw our Philox masks). A second export into the same folder (the other device) reuses the
/// inputs, pseudo-labels included, and reports how many of its own pseudo-labels differ.</item>
/// <item><c>parity-compare --reference DIR/torch.safetensors FILE...</c> compares each of our files with PyTorch's,
/// tensor by tensor: |ours - torch| &lt;= atol + rtol |torch| with atol = 1e-3 x max |torch| and rtol = 1e-3;
/// prints JSON (worst difference per tensor) and exits 1 when a tensor is outside.</item>
/// </list>
/// </summary>
internal static class GpuParity
{
    private const string ExportUsage = "usage: parity-export --device cuda|cpu --method baseline|dicc [--batch 8] [--seed 3] --dir DIR";
    private const string CompareUsage = "usage: parity-compare --reference TORCH.safetensors OURS.safetensors... [--out FILE]";

    public static int Export(string[] args)
    {
        string device = "cuda", method = "dicc";
        string? dir = null;
        int batch = 8;
        ulong seed = 3;
        for (int i = 0; i < args.Length; i += 2)
        {
            string? value = i + 1 < args.Length ? args[i + 1] : null;
            bool ok = value is not null && args[i] switch
            {
                "--device" => (device = value!).Length > 0,
                "--method" => (method = value!) is "baseline" or "dicc",
                "--batch" => int.TryParse(value, CultureInfo.InvariantCulture, out batch) && batch >= 2,
                "--seed" => ulong.TryParse(value, CultureInfo.InvariantCulture, out seed),
                "--dir" => (dir = value) is not null,
                _ => false,
            };
            if (!ok)
            {
                Console.Error.WriteLine($"parity-export: bad argument '{args[i]}'.\n{ExportUsage}");
                return 2;
            }
        }
        if (dir is null)
        {
            Console.Error.WriteLine(ExportUsage);
            return 2;
        }
        Directory.CreateDirectory(dir);
        using var backend = BackendFactory.Create(device);
        var options = new TrainingOptions
        {
            Arch = VggDepth.Vgg19, Width = 1.0, Dropout = 0f, Method = method == "dicc" ? TrainingMethod.Dicc : TrainingMethod.Baseline,
            Subclasses = GpuStep.Subclasses, BatchSize = batch, Seed = seed,
        };
        var model = ModelFactory.Create(backend, options, 7, [1, 1, 1, 1, 1, 1, 1]);
        var initial = new CheckpointWriter();
        model.Save(initial);
        initial.Save(Path.Combine(dir, "checkpoint.safetensors"));

        var random = new RandomStream(seed, stream: 77);
        var hostImages = Enumerable.Range(0, batch * 44 * 44).Select(_ => random.NextFloat()).ToArray();
        var hostLabels = Enumerable.Range(0, batch).Select(j => j % 7).ToArray(); // every class present
        var images = backend.Create(new Shape(batch, 1, 44, 44));
        var labels = backend.Create(new Shape(batch), DType.Int32);
        backend.CopyIn<float>(images, hostImages);
        backend.CopyIn<int>(labels, hostLabels);

        // The first export writes the inputs; a later one (the other device, same seed and batch) reuses them.
        string inputsPath = Path.Combine(dir, "inputs.safetensors");
        var shared = File.Exists(inputsPath) ? SafetensorsFile.Load(inputsPath) : null;
        if (shared is not null && (!shared["images"].ToArray<float>().SequenceEqual(hostImages) || shared.Metadata.GetValueOrDefault("method") != method))
        {
            Console.Error.WriteLine($"parity-export: {inputsPath} holds another batch or method; use an empty --dir.");
            return 2;
        }
        var inputs = new CheckpointWriter();
        inputs.Add("images", hostImages, batch, 1, 44, 44);
        inputs.Add("labels", hostLabels, batch);
        var ours = new CheckpointWriter();
        var context = new StepContext { Training = true, Seed = seed, Step = 0 };
        if (model is DiccModel dicc)
        {
            var logits = dicc.Main.Forward(images, context);
            var pseudo = backend.Create(new Shape(batch), DType.Int32);
            dicc.Clustering.Assign(dicc.Features, labels, pseudo);
            var own = backend.ToArray<int>(pseudo);
            ours.Add("pseudo_labels", own, batch);
            if (shared is not null)
            {
                // A second export (the other device) uses the first one's pseudo-labels, so that both are compared
                // with the same PyTorch step; a difference in the clustering itself shows here.
                var first = shared["pseudo_labels"].ToArray<int>();
                int differ = first.Zip(own).Count(p => p.First != p.Second);
                Console.WriteLine($"parity-export: {differ} of {batch} pseudo-labels differ from {inputsPath}'s");
                backend.CopyIn<int>(pseudo, first);
            }
            var loss = new SoftmaxCrossEntropyLoss(backend, dicc.Options.Clustering.SubclassCount);
            loss.Compute(logits, pseudo, dicc.Main.OutputGrad);
            dicc.Main.Backward(images, context);
            AddStep(ours, dicc.Main, "subclass_logits", logits, "loss", loss.Value);
            inputs.Add("pseudo_labels", backend.ToArray<int>(pseudo), batch);

            var probabilities = backend.Create(logits.Shape);
            backend.Softmax(logits, probabilities);
            var mapping = dicc.Mapping ?? throw new InvalidOperationException("The parity step needs the MLP mapping.");
            var mappingLogits = mapping.Forward(probabilities, context);
            var mappingLoss = new SoftmaxCrossEntropyLoss(backend, 7);
            mappingLoss.Compute(mappingLogits, labels, mapping.OutputGrad);
            mapping.Backward(probabilities, context);
            AddStep(ours, mapping, "mapping_logits", mappingLogits, "mapping_loss", mappingLoss.Value);
        }
        else
        {
            var baseline = (BaselineModel)model;
            var logits = baseline.Network.Forward(images, context);
            var loss = new SoftmaxCrossEntropyLoss(backend, 7);
            loss.Compute(logits, labels, baseline.Network.OutputGrad);
            baseline.Network.Backward(images, context);
            AddStep(ours, baseline.Network, "logits", logits, "loss", loss.Value);
        }
        inputs.AddMetadata("method", method);
        if (shared is null) inputs.Save(inputsPath);
        ours.AddMetadata("backend", backend.Description);
        ours.Save(Path.Combine(dir, $"ours-{device.Replace(':', '-')}.safetensors"));
        Console.WriteLine($"parity-export: {method} step on {backend.Description} written to {dir}");
        return 0;
    }

    /// <summary>A network's outputs of one step: logits, loss, parameter gradients ("grad." + name), running statistics.</summary>
    private static void AddStep(CheckpointWriter w, Network network, string logitsName, Tensor logits, string lossName, Tensor loss)
    {
        w.Add(logitsName, logits);
        w.Add(lossName, loss);
        foreach (var p in network.Parameters.Parameters) w.Add("grad." + p.Name, p.Grad);
        foreach (var s in network.State) w.Add(s.Name, s.Tensor);
    }

    public static int Compare(string[] args)
    {
        string? reference = null, output = null;
        var files = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--reference" && i + 1 < args.Length) reference = args[++i];
            else if (args[i] == "--out" && i + 1 < args.Length) output = args[++i];
            else if (!args[i].StartsWith("--", StringComparison.Ordinal)) files.Add(args[i]);
            else
            {
                Console.Error.WriteLine($"parity-compare: bad argument '{args[i]}'.\n{CompareUsage}");
                return 2;
            }
        }
        if (reference is null || files.Count == 0)
        {
            Console.Error.WriteLine(CompareUsage);
            return 2;
        }
        var torch = SafetensorsFile.Load(reference);
        var report = new JsonObject { ["reference"] = reference, ["atol"] = "1e-3 x max|torch| per tensor", ["rtol"] = 1e-3 };
        bool allOk = true;
        foreach (string file in files)
        {
            var ours = SafetensorsFile.Load(file);
            var tensors = new JsonObject();
            bool ok = true;
            string worstName = "";
            double worstRatio = 0;
            foreach (string name in torch.Names)
            {
                if (torch[name].DType != SafetensorsDType.Float32) continue;
                if (!ours.Tensors.TryGetValue(name, out var mine))
                {
                    tensors[name] = "missing in ours";
                    ok = false;
                    continue;
                }
                var t = torch[name].ToArray<float>();
                var o = mine.ToArray<float>();
                if (t.Length != o.Length)
                {
                    tensors[name] = $"{o.Length} values, torch has {t.Length}";
                    ok = false;
                    continue;
                }
                double scale = t.Length == 0 ? 0 : t.Max(v => Math.Abs((double)v));
                double atol = 1e-3 * scale + 1e-7, maxAbs = 0, ratio = 0;
                for (int k = 0; k < t.Length; k++)
                {
                    double d = Math.Abs((double)o[k] - t[k]);
                    if (double.IsNaN(d)) d = double.PositiveInfinity;
                    maxAbs = Math.Max(maxAbs, d);
                    ratio = Math.Max(ratio, d / (atol + 1e-3 * Math.Abs(t[k])));
                }
                tensors[name] = new JsonObject
                {
                    ["max_abs_diff"] = double.IsFinite(maxAbs) ? maxAbs : null, ["max_abs_torch"] = scale,
                    ["worst_over_tolerance"] = double.IsFinite(ratio) ? Math.Round(ratio, 4) : null, ["ok"] = ratio <= 1,
                };
                ok &= ratio <= 1;
                if (worstName.Length == 0 || !(ratio <= worstRatio)) (worstRatio, worstName) = (ratio, name);
            }
            report[Path.GetFileName(file)] = new JsonObject
            {
                ["ok"] = ok, ["worst_tensor"] = worstName, ["worst_over_tolerance"] = double.IsFinite(worstRatio) ? Math.Round(worstRatio, 4) : null,
                ["backend"] = ours.Metadata.GetValueOrDefault("backend", ""), ["tensors"] = tensors,
            };
            allOk &= ok;
            Console.Error.WriteLine($"parity-compare: {Path.GetFileName(file)}: {(ok ? "within tolerance" : "OUTSIDE tolerance")}, worst {worstName} at {worstRatio:G3} of the tolerance");
        }
        report["ok"] = allOk;
        string text = report.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        Console.WriteLine(text);
        if (output is not null) File.WriteAllText(output, text);
        return allOk ? 0 : 1;
    }
}
