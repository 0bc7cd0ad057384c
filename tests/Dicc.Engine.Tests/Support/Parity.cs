using NUnit.Framework;

namespace Dicc.Engine.Tests.Support;

/// <summary>How close a device's result must be to the CPU oracle's: |actual - expected| &lt;= Atol + Rtol |expected|.</summary>
internal readonly record struct Tolerance(float Atol, float Rtol, string Why)
{
    /// <summary>The same tolerance with the absolute part scaled (for results whose size is known to shrink, e.g. 1 / rows).</summary>
    public Tolerance WithAtolScaled(float factor) => this with { Atol = Atol * factor };

    public override string ToString() => $"atol {Atol:G3}, rtol {Rtol:G3}";
}

/// <summary>
/// Every tolerance a parity test (GPU or emulated device against the CPU backend) uses, in one place, with the reason
/// for its size. Ops that docs/gpu.md calls bit-exact (ReLU, multiply, dropout, SGD, pooling, crops, gathers, the
/// linear bias gradient, clustering) have no entry: they are compared with <see cref="Parity.AssertBitwise"/>.
/// </summary>
internal static class Tolerances
{
    // cuDNN sums the products in another order (and FFT or Winograd algorithms by another method) than im2col + GEMM:
    // a few float ulp of the sums' magnitudes (C*R*S terms forward, K*R*S backward-data).
    public static readonly Tolerance ConvolutionForward = new(1e-4f, 1e-4f, "float32 sums of C*R*S products in another order");
    public static readonly Tolerance ConvolutionBackwardData = new(1e-4f, 1e-4f, "float32 sums of K*R*S products in another order");

    // The filter gradient sums N*P*Q products per weight, the longest float32 sums of a step.
    public static readonly Tolerance ConvolutionBackwardFilter = new(5e-4f, 1e-4f, "float32 sums of N*P*Q products in another order");

    // Our bias.cu sums in double in a fixed order (to float at the end); cuDNN's own bias gradient sums in float.
    public static readonly Tolerance ConvolutionBiasGradient = new(1e-4f, 1e-6f, "double sums, rounded once");
    public static readonly Tolerance CudnnBiasGradient = new(2e-4f, 1e-4f, "cuDNN's float32 sums over N*P*Q");

    // Batch normalisation: statistics in double on both sides, summed in different segment orders: a float ulp or two.
    public static readonly Tolerance BatchNormStatistics = new(1e-6f, 1e-6f, "double sums in another order, rounded to float");
    public static readonly Tolerance BatchNormOutput = new(1e-5f, 1e-5f, "float (x - mean) * invstd * gamma + beta from statistics a ulp apart");
    public static readonly Tolerance BatchNormParameterGradient = new(1e-4f, 1e-5f, "double sums of N*H*W products, rounded to float");
    public static readonly Tolerance BatchNormInputGradient = new(1e-5f, 1e-4f, "dx subtracts two means of dy terms: cancellation magnifies ulps");

    // cuBLAS's SGEMM (pedantic float32) against our packed GEMM: the same products summed in another order.
    public static readonly Tolerance Gemm = new(2e-5f, 1e-5f, "float32 dot products of up to 512 terms in another order");
    public static readonly Tolerance GemmExAgainstSgemm = new(1e-6f, 1e-6f, "one library, two entry points: only the kernel choice differs");

    // Softmax and cross-entropy: float log-sum-exp on the device, double on the CPU.
    public static readonly Tolerance Softmax = new(1e-7f, 1e-5f, "float exp and sum against the CPU's double");
    public static readonly Tolerance CrossEntropyLoss = new(1e-6f, 1e-5f, "a mean of float log-sum-exps against double ones");

    // Gradients are at most w / sum(w) ~ 1 / rows in size and p - 1 near p = 1 cancels: scale Atol by 1 / rows.
    public static readonly Tolerance CrossEntropyGradient = new(4e-6f, 1e-4f, "(p - onehot) w / sum(w); scale Atol by 1 / rows");

    // The long-tail losses: z' = s (z + b - m) in float with s up to 30 (LDAM) multiplies the rounding of z by s before
    // exp, and the gradient carries s again: p' - 1 near p' = 1 is off by ~s |z'| ulp, times s w / sum(w).
    public static readonly Tolerance AdjustedCrossEntropyLoss = new(2e-5f, 2e-4f, "float s (z + b - m), s up to 30, and powf against double");
    public static readonly Tolerance AdjustedCrossEntropyGradient = new(4e-6f, 2e-3f, "s g w (p' - onehot) / sum(w) with float p'; scale Atol by s^2 / rows");

    // Row L2 normalisation: double sums on both sides in another order; a float ulp or two (the gradient subtracts y (y . dy)).
    public static readonly Tolerance RowNormalization = new(1e-6f, 1e-5f, "double sums in another order, rounded to float");

    // Whole training steps: cuDNN and cuBLAS differ from the CPU in the last bits, and SGD carries that forward.
    public static readonly Tolerance FirstStepLoss = new(1e-4f, 1e-4f, "one forward pass of VGG19: sixteen convolutions' rounding");
    public static readonly Tolerance TwentyStepLosses = new(1e-2f, 1e-2f, "rounding differences in the weights grow through 20 SGD steps (lr 0.01, batch 8)");
}

/// <summary>The parity assertions: every device result is compared with the CPU oracle here, printing the largest difference.</summary>
internal static class Parity
{
    /// <summary>|actual - expected| &lt;= atol + rtol |expected| everywhere; the message names the worst element and the tolerance's reason.</summary>
    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, Tolerance tolerance, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what);
        int worst = -1;
        double worstExcess = 0, maxDiff = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double diff = Math.Abs((double)actual[i] - expected[i]);
            if (double.IsNaN(diff) && float.IsNaN(actual[i]) && float.IsNaN(expected[i])) continue; // NaN where the oracle has NaN
            maxDiff = Math.Max(maxDiff, diff);
            double excess = diff - (tolerance.Atol + tolerance.Rtol * Math.Abs(expected[i]));
            if (excess > worstExcess || double.IsNaN(diff)) { worstExcess = double.IsNaN(diff) ? double.PositiveInfinity : excess; worst = i; }
        }
        TestContext.Out.WriteLine($"{what}: max |diff| = {maxDiff:G3} over {actual.Length} values ({tolerance})");
        if (worst >= 0)
            Assert.Fail($"{what}: element {worst} is {actual[worst]}, expected {expected[worst]} ({tolerance}: {tolerance.Why}); max |diff| {maxDiff:G3}.");
    }

    /// <summary>Equal to the bit (NaNs with the same payload count as equal); the message says how many elements differ.</summary>
    public static void AssertBitwise(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what);
        int differ = 0, first = -1;
        for (int i = 0; i < actual.Length; i++)
            if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
            {
                differ++;
                if (first < 0) first = i;
            }
        TestContext.Out.WriteLine($"{what}: {differ} of {actual.Length} values differ in some bit");
        if (differ > 0) Assert.Fail($"{what}: {differ} of {actual.Length} values differ; the first is element {first}: {actual[first]} instead of {expected[first]}.");
    }

    public static void AssertBitwise(ReadOnlySpan<int> actual, ReadOnlySpan<int> expected, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what);
        int differ = 0, first = -1;
        for (int i = 0; i < actual.Length; i++)
            if (actual[i] != expected[i])
            {
                differ++;
                if (first < 0) first = i;
            }
        if (differ > 0) Assert.Fail($"{what}: {differ} of {actual.Length} values differ; the first is element {first}: {actual[first]} instead of {expected[first]}.");
    }
}
