// The kernels that the Gpu test suite reaches only through CudaBackend (which needs cuBLAS and cuDNN, absent
// on the emulated device) checked through their public launchers against the CPU backend and the clustering
// reference: the same cases and tolerances as CudaClusteringTests and CudaBackendOpTests (README.md, "Smoke check").
// Run with DICC_CUDA_PATH naming libdicc-emulated-cuda.so; exits 1 when a check fails.
using System.Diagnostics;
using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Clustering;
using Dicc.Engine.Cuda.Clustering;
using Dicc.Engine.Cuda.Kernels;
using Dicc.Engine.Cuda.Runtime;
using Dicc.Engine.Data;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

int failed = 0, passed = 0;
void Check(bool ok, string what)
{
    if (ok) passed++;
    else failed++;
    Console.WriteLine($"{(ok ? "passed" : "FAILED")} {what}");
}

using var context = CudaContext.Create();
Console.WriteLine(context.Device);
using var cpu = new CpuBackend();
var stream = context.Stream;
var total = Stopwatch.StartNew();

float[] RandomFloats(int n, ulong seed, float scale = 1f)
{
    var r = new RandomStream(seed);
    var a = new float[n];
    for (int i = 0; i < n; i++) a[i] = (r.NextFloat() * 2f - 1f) * scale;
    return a;
}

CudaDeviceVariable<T> Upload<T>(T[] data) where T : unmanaged
{
    var v = context.Allocate<T>(data.Length);
    v.CopyToDevice(data);
    return v;
}

Tensor Cpu(float[] data, Shape shape)
{
    var t = cpu.Create(shape);
    cpu.CopyIn<float>(t, data);
    return t;
}

// |actual - expected| <= atol + rtol |expected|, the worst element named (TestSupport.AssertClose's rule).
void Close(float[] actual, float[] expected, float atol, float rtol, string what)
{
    int worst = -1;
    double worstExcess = 0, maxDiff = 0;
    for (int i = 0; i < actual.Length; i++)
    {
        double diff = Math.Abs((double)actual[i] - expected[i]);
        maxDiff = Math.Max(maxDiff, double.IsNaN(diff) ? double.PositiveInfinity : diff);
        double excess = diff - (atol + rtol * Math.Abs(expected[i]));
        if (excess > worstExcess || double.IsNaN(diff)) { worstExcess = double.IsNaN(diff) ? double.PositiveInfinity : excess; worst = i; }
    }
    Check(actual.Length == expected.Length && worst < 0,
        $"{what}: max |diff| {maxDiff:G3}" + (worst >= 0 ? $"; element {worst} is {actual[worst]}, expected {expected[worst]}" : ""));
}

void Equal(float[] actual, float[] expected, string what)
{
    int differ = actual.Zip(expected).Count(p => BitConverter.SingleToInt32Bits(p.First) != BitConverter.SingleToInt32Bits(p.Second));
    int first = -1;
    for (int i = 0; i < Math.Min(actual.Length, expected.Length) && first < 0; i++)
        if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i])) first = i;
    Check(actual.Length == expected.Length && differ == 0,
        $"{what}: {differ} of {actual.Length} values differ" + (first >= 0 ? $" (first: element {first} is {actual[first]}, expected {expected[first]})" : ""));
}

var training = TrainingKernels.Load(context);

// ---- batch normalisation (CudaBackendOpTests.BatchNorm_TrainingInferenceAndBackward) ----
foreach (var shape in new[] { new Shape(8, 512), new Shape(16, 8, 40, 40), new Shape(33, 20), new Shape(4, 64, 22, 22) })
{
    int n = shape[0], c = shape[1], spatial = checked((int)(shape.ElementCount / (n * c)));
    var x = RandomFloats(checked((int)shape.ElementCount), 11, 3f).Select(v => v + 5f).ToArray();
    var gamma = RandomFloats(c, 12).Select(v => 1f + 0.5f * v).ToArray();
    var beta = RandomFloats(c, 13);
    var rm = RandomFloats(c, 14);
    var rv = RandomFloats(c, 15).Select(v => 1f + 0.5f * v).ToArray();
    var dy = RandomFloats(x.Length, 16);
    using var gx = Upload(x);
    using var gGamma = Upload(gamma);
    using var gBeta = Upload(beta);
    using var gRm = Upload(rm);
    using var gRv = Upload(rv);
    using var gDy = Upload(dy);
    using var gY = context.Allocate<float>(x.Length);
    using var gDx = context.Allocate<float>(x.Length);
    using var gYi = context.Allocate<float>(x.Length);
    using var gSm = context.Allocate<float>(c);
    using var gSi = context.Allocate<float>(c);
    using var gDg = context.Allocate<float>(c);
    using var gDb = context.Allocate<float>(c);
    using var ws = context.Allocate<byte>(TrainingKernels.BatchNormWorkspaceBytes(n, c, spatial));
    training.BatchNormTrainingForward(stream, gx.DevicePointer, gY.DevicePointer, gGamma.DevicePointer, gBeta.DevicePointer, gRm.DevicePointer,
        gRv.DevicePointer, gSm.DevicePointer, gSi.DevicePointer, n, c, spatial, 0.1f, 1e-5f, ws.DevicePointer);
    training.BatchNormBackward(stream, gx.DevicePointer, gDy.DevicePointer, gGamma.DevicePointer, gSm.DevicePointer, gSi.DevicePointer,
        gDx.DevicePointer, gDg.DevicePointer, gDb.DevicePointer, n, c, spatial, ws.DevicePointer);
    training.BatchNormInferenceForward(stream, gx.DevicePointer, gYi.DevicePointer, gGamma.DevicePointer, gBeta.DevicePointer, gRm.DevicePointer,
        gRv.DevicePointer, n, c, spatial, 1e-5f, ws.DevicePointer);
    stream.Synchronize();

    Tensor cx = Cpu(x, shape), cGamma = Cpu(gamma, new Shape(c)), cBeta = Cpu(beta, new Shape(c)), cRm = Cpu(rm, new Shape(c)),
        cRv = Cpu(rv, new Shape(c)), cDy = Cpu(dy, shape), cY = cpu.Create(shape), cDx = cpu.Create(shape), cYi = cpu.Create(shape),
        cSm = cpu.Create(new Shape(c)), cSi = cpu.Create(new Shape(c)), cDg = cpu.Create(new Shape(c)), cDb = cpu.Create(new Shape(c));
    cpu.BatchNormTrainingForward(cx, cGamma, cBeta, cY, cRm, cRv, 0.1f, 1e-5f, cSm, cSi);
    cpu.BatchNormBackward(cx, cDy, cGamma, cSm, cSi, cDx, cDg, cDb);
    cpu.BatchNormInferenceForward(cx, cGamma, cBeta, cRm, cRv, 1e-5f, cYi);
    string s = shape.ToString();
    Close(gSm.ToArray(), cpu.ToArray(cSm), 1e-6f, 1e-6f, $"batch norm {s}: saved mean");
    Close(gSi.ToArray(), cpu.ToArray(cSi), 0f, 1e-6f, $"batch norm {s}: saved inverse std");
    Close(gRm.ToArray(), cpu.ToArray(cRm), 1e-6f, 1e-6f, $"batch norm {s}: running mean");
    Close(gRv.ToArray(), cpu.ToArray(cRv), 0f, 1e-6f, $"batch norm {s}: running variance");
    Close(gY.ToArray(), cpu.ToArray(cY), 1e-5f, 1e-5f, $"batch norm {s}: y");
    Close(gDg.ToArray(), cpu.ToArray(cDg), 1e-4f, 1e-5f, $"batch norm {s}: dgamma");
    Close(gDb.ToArray(), cpu.ToArray(cDb), 1e-4f, 1e-5f, $"batch norm {s}: dbeta");
    Close(gDx.ToArray(), cpu.ToArray(cDx), 1e-5f, 1e-4f, $"batch norm {s}: dx");
    Close(gYi.ToArray(), cpu.ToArray(cYi), 1e-5f, 1e-5f, $"batch norm {s}: inference y");
}

// ---- max pooling (CudaBackendOpTests.MaxPool_ForwardAndBackwardEqualTheCpu) ----
foreach (bool ties in new[] { false, true })
    foreach (var g in new[] { new PoolGeometry(4, 64, 44, 44, 2, 2, 2, 2, 0, 0), new PoolGeometry(2, 3, 11, 9, 3, 2, 2, 1, 1, 0) })
    {
        var values = RandomFloats(checked((int)g.InputShape.ElementCount), 21);
        if (ties) values = values.Select(v => MathF.Round(v * 2) / 2).ToArray();
        var dy = RandomFloats(checked((int)g.OutputShape.ElementCount), 22);
        using var gx = Upload(values);
        using var gDy = Upload(dy);
        using var gY = context.Allocate<float>(dy.Length);
        using var gDx = context.Allocate<float>(values.Length);
        training.MaxPoolForward(stream, gx.DevicePointer, gY.DevicePointer, g);
        training.MaxPoolBackward(stream, gx.DevicePointer, gDy.DevicePointer, gDx.DevicePointer, g);
        stream.Synchronize();
        Tensor cx = Cpu(values, g.InputShape), cDy = Cpu(dy, g.OutputShape), cY = cpu.Create(g.OutputShape), cDx = cpu.Create(g.InputShape);
        cpu.MaxPoolForward(g, cx, cY);
        cpu.MaxPoolBackward(g, cx, cY, cDy, cDx);
        Equal(gY.ToArray(), cpu.ToArray(cY), $"max pool forward {g}{(ties ? ", ties" : "")}");
        Equal(gDx.ToArray(), cpu.ToArray(cDx), $"max pool backward {g}{(ties ? ", ties" : "")}");
    }

// ---- bias terms: against their definitions (the CPU backend's loops: float adds, double sums in row order) ----
{
    const int rows = 33, cols = 253, n = 5, channels = 7, spatial = 9 * 11;
    var y = RandomFloats(rows * cols, 31);
    var bias = RandomFloats(cols, 32);
    using var gy = Upload(y);
    using var gb = Upload(bias);
    using var sums = context.Allocate<float>(cols);
    training.AddRowBias(stream, gy.DevicePointer, gb.DevicePointer, rows, cols);
    training.ColumnSums(stream, gy.DevicePointer, sums.DevicePointer, rows, cols);
    stream.Synchronize();
    var expectedY = y.Select((v, i) => v + bias[i % cols]).ToArray();
    var expectedSums = Enumerable.Range(0, cols).Select(j => { double a = 0; for (int i = 0; i < rows; i++) a += expectedY[i * cols + j]; return (float)a; }).ToArray();
    Equal(gy.ToArray(), expectedY, "add_row_bias");
    Equal(sums.ToArray(), expectedSums, "column_sums (double, rows in order)");

    var z = RandomFloats(n * channels * spatial, 33);
    var cb = RandomFloats(channels, 34);
    using var gz = Upload(z);
    using var gcb = Upload(cb);
    using var csums = context.Allocate<float>(channels);
    using var ws = context.Allocate<byte>(TrainingKernels.ChannelSumsWorkspaceBytes(n, channels, spatial));
    training.AddChannelBias(stream, gz.DevicePointer, gcb.DevicePointer, n, channels, spatial);
    training.ChannelSums(stream, gz.DevicePointer, csums.DevicePointer, n, channels, spatial, ws.DevicePointer);
    stream.Synchronize();
    var expectedZ = z.Select((v, i) => v + cb[i / spatial % channels]).ToArray();
    var expectedC = Enumerable.Range(0, channels).Select(ch =>
    {
        double a = 0;
        for (int i = 0; i < n; i++) for (int j = 0; j < spatial; j++) a += expectedZ[(i * channels + ch) * spatial + j];
        return (float)a;
    }).ToArray();
    Equal(gz.ToArray(), expectedZ, "add_channel_bias");
    Close(csums.ToArray(), expectedC, 1e-5f, 1e-6f, "channel sums (double, segments)");
}

// ---- dataset batches (CudaBackendOpTests.DatasetBatches_EqualTheCpu) ----
{
    const int count = 40, height = 48, width = 48, n = 64;
    var r = new RandomStream(7);
    var images = new byte[count * height * width];
    for (int i = 0; i < images.Length; i++) images[i] = (byte)r.NextInt(256);
    var picks = Enumerable.Range(0, n).Select(_ => r.NextInt(count)).ToArray();
    var labels = Enumerable.Range(0, count).Select(i => i % 7).ToArray();
    using var gImages = Upload(images);
    using var gPicks = Upload(picks);
    var cImages = cpu.Create(new Shape(count, height, width), DType.UInt8);
    cpu.CopyIn<byte>(cImages, images);
    var cPicks = cpu.Create(new Shape(n), DType.Int32);
    cpu.CopyIn<int>(cPicks, picks);
    foreach (var mode in new[] { CropMode.Random, CropMode.Center, CropMode.TenCrop })
    {
        int views = mode == CropMode.TenCrop ? 10 : 1;
        using var crops = context.Allocate<float>(n * views * 44 * 44);
        training.CropImages(stream, gImages.DevicePointer, gPicks.DevicePointer, crops.DevicePointer, count, height, width, n, mode, 44, 77, 123_456);
        stream.Synchronize();
        var cCrops = cpu.Create(new Shape(n * views, 1, 44, 44));
        cpu.CropImages(cImages, cPicks, cCrops, mode, 44, 77, 123_456);
        Equal(crops.ToArray(), cpu.ToArray(cCrops), $"crops, {mode}");
    }
    using var gLabels = Upload(labels);
    using var gathered = context.Allocate<int>(n);
    using var status = context.Allocate<byte>(32);
    status.Memset(0);
    training.Gather(stream, gLabels.DevicePointer, count, gPicks.DevicePointer, gathered.DevicePointer, n, status.DevicePointer);
    stream.Synchronize();
    Check(gathered.ToArray().SequenceEqual(picks.Select(p => labels[p])) && status.ToArray().All(b => b == 0), "gather of labels");
    var bad = picks.ToArray();
    bad[9] = count + 3;
    bad[20] = -1;
    using var gBad = Upload(bad);
    training.CheckIndices(stream, gBad.DevicePointer, n, count, 3, status.DevicePointer);
    stream.Synchronize();
    var record = new int[8];
    Buffer.BlockCopy(status.ToArray(), 0, record, 0, 32);
    Check(record[0] == 3 && record[1] == 9 && record[2] == count + 3 && record[3] == count,
        $"check_indices records the first bad index: kind {record[0]}, row {record[1]}, value {record[2]}, bound {record[3]}");
}

// ---- clustering (CudaClusteringTests, through the embedding API: the kernels CudaClusteringModule launches) ----
(float[] Features, int[] Labels) Batch(RandomStream r, int n, int m, int classes)
{
    var labels = new int[n];
    double sum = Enumerable.Range(1, classes).Sum(c => 1.0 / c);
    for (int i = 0; i < n; i++)
    {
        double u = r.NextDouble() * sum;
        int c = 0;
        while (c < classes - 1 && (u -= 1.0 / (c + 1)) > 0) c++;
        labels[i] = c;
    }
    var features = RandomFloats(n * m, r.NextUInt(), 2f);
    for (int i = 1; i < n; i += 7)
    {
        int j = Array.FindIndex(labels, 0, i, l => l == labels[i]);
        if (j >= 0) Array.Copy(features, j * m, features, i * m, m);
    }
    for (int k = 0; k < features.Length; k++) features[k] = MathF.Max(features[k], 0f);
    return (features, labels);
}

foreach (var partition in new[] { PartitionMode.Interval, PartitionMode.Rank })
    foreach (var (name, m, batches, decay) in new[]
             {
                 ("Fused_M512", 512, new[] { 8, 32, 256, 1, 1000 }, 0.99), ("MultiBlock_M512", 512, new[] { 1300, 4096, 2000 }, 0.99),
                 ("BothPaths_M100", 100, new[] { 64, 3000, 5, 3000 }, 0.5), ("WideFeatures_M4100", 4100, new[] { 16, 40 }, 0.99),
             })
    {
        var watch = Stopwatch.StartNew();
        var plan = SubclassPlan.FromCounts([4, 1, 6, 10, 8, 2, 8]);
        using var module = new DeviceClustering(context, plan, m, partition, decay, maxBatchSize: 4096);
        var reference = new IntraClassClustering(plan, m, partition, decay);
        var r = new RandomStream(1234);
        int step = 0, wrongSteps = 0;
        string firstWrong = "";
        foreach (int n in batches.Concat(batches))
        {
            var (features, labels) = Batch(r, n, m, plan.ClassCount);
            var expected = new int[n];
            reference.Assign(features, labels, expected);
            using var f = Upload(features);
            using var y = Upload(labels);
            using var pseudo = context.Allocate<int>(n);
            module.Assign(f.DevicePointer, y.DevicePointer, pseudo.DevicePointer, n, stream);
            module.ThrowIfFailed(stream.Handle);
            var got = pseudo.ToArray();
            var state = module.ReadState(stream);
            int wrong = got.Zip(expected).Count(p => p.First != p.Second);
            int centreBits = state.Centers.Zip(reference.Centers.ToArray())
                .Count(p => BitConverter.SingleToInt32Bits(p.First) != BitConverter.SingleToInt32Bits(p.Second));
            bool ok = wrong == 0 && centreBits == 0 && state.Seen.SequenceEqual(reference.Seen.ToArray()) && state.Step == reference.Step;
            if (!ok && wrongSteps++ == 0)
                firstWrong = $"; step {step} (batch {n}): {wrong} pseudo-labels and {centreBits} centre values differ, step {state.Step} vs {reference.Step}";
            step++;
        }
        Check(wrongSteps == 0, $"clustering {name}_{partition}: {step} batches equal the reference bit for bit ({watch.Elapsed.TotalSeconds:F1} s){firstWrong}");
    }

{
    var plan = SubclassPlan.FromCounts([2, 3, 1]);
    using var clustering = new DeviceClustering(context, plan, 32, PartitionMode.Rank, 0.99, maxBatchSize: 4096);
    using var bad = Upload(new[] { 0, 9 });
    using var two = context.Allocate<float>(64);
    two.Memset(0);
    using var out2 = context.Allocate<int>(2);
    clustering.Assign(two.DevicePointer, bad.DevicePointer, out2.DevicePointer, 2, stream);
    string message = "";
    try { clustering.ThrowIfFailed(stream.Handle); }
    catch (ArgumentException e) { message = e.Message; }
    Check(message.StartsWith("Label 9 of sample 1 is outside [0, 3).", StringComparison.Ordinal), $"clustering reports a bad label as the reference: \"{message}\"");
}

// ---- errors through the engine ----
{
    // The emulator's fault handler is installed now: a managed null dereference is still the runtime's exception.
    bool managed = false;
    try
    {
        string? nothing = Environment.GetEnvironmentVariable("DICC_EMU_SMOKE_UNSET_VARIABLE");
        _ = nothing!.Length;
    }
    catch (NullReferenceException) { managed = true; }
    Check(managed, "a managed null dereference is a NullReferenceException with the emulator's fault handler installed");
    // A kernel writing past its buffer is the engine's CudaException, naming the kernel and the allocation.
    var core = CoreKernels.Load(context);
    using var small = context.Allocate<float>(4);
    string text = "";
    try
    {
        core.Fill(null, small.DevicePointer, 1f, 1000);
    }
    catch (CudaException e) { text = e.Message; }
    Check(text.Contains("CUDA_ERROR_ILLEGAL_ADDRESS", StringComparison.Ordinal) && text.Contains("kernel fill_f32", StringComparison.Ordinal)
        && text.Contains("just past the end of the 16-byte allocation", StringComparison.Ordinal), $"an out-of-bounds kernel write is a CudaException: \"{text}\"");
    core.Fill(null, small.DevicePointer, 2f, 4);
    Check(small.ToArray().All(v => v == 2f), "the device works on after a kernel fault");
}

Console.WriteLine($"smoke: {passed} passed, {failed} failed ({total.Elapsed.TotalSeconds:F1} s)");
return failed == 0 ? 0 : 1;
