using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Dicc.Engine.Clustering;

/// <summary>
/// The two reductions of a DICC step, written so that a CUDA kernel can reproduce them bit for bit
/// (docs/method.md, "Precision"). Both accumulate in double.
/// <list type="bullet">
/// <item><see cref="AccumulateRow"/>: class sums, one double per feature, samples added in batch order.</item>
/// <item><see cref="Distance"/>: <c>||f - mu||</c> with a fixed 32-lane order: lane k (k = j mod 32) sums
/// <c>fma(e, e, s)</c> over j = k, k+32, ... ascending, with <c>e = (double)f[j] - mu[j]</c>; the lanes are then
/// folded like a warp's shuffle-down tree (offsets 16, 8, 4, 2, 1: <c>s[k] += s[k + offset]</c>); the
/// result is the IEEE square root of lane 0. One warp per sample computes exactly this.</item>
/// </list>
/// </summary>
internal static class ClusterMath
{
    /// <summary>Partial sums in <see cref="Distance"/>: one per lane of a CUDA warp.</summary>
    public const int Lanes = 32;

    /// <summary><c>sum[j] += (double)row[j]</c> for every j (exact widening, one rounding per add).</summary>
    public static void AccumulateRow(ReadOnlySpan<float> row, Span<double> sum)
    {
        int m = row.Length, j = 0;
        ref float r = ref MemoryMarshal.GetReference(row);
        ref double s = ref MemoryMarshal.GetReference(sum);
        if (Vector256.IsHardwareAccelerated)
        {
            for (; j <= m - 8; j += 8)
            {
                var (lower, upper) = Vector256.Widen(Vector256.LoadUnsafe(ref r, (nuint)j));
                (Vector256.LoadUnsafe(ref s, (nuint)j) + lower).StoreUnsafe(ref s, (nuint)j);
                (Vector256.LoadUnsafe(ref s, (nuint)(j + 4)) + upper).StoreUnsafe(ref s, (nuint)(j + 4));
            }
        }
        for (; j < m; j++) Unsafe.Add(ref s, j) += Unsafe.Add(ref r, j);
    }

    /// <summary>
    /// One class's EMA step from its batch sums: <c>y = sum / count</c>; the first time
    /// <c>centre = (float)y</c>, afterwards <c>centre = (float)fma(keep, (double)centre, blend * y)</c> with
    /// <c>blend = 1 - keep</c>; then <c>wide = (double)centre</c>, the value distances are measured from.
    /// Every operation is one IEEE-rounded double op (division, multiply, fused multiply-add, rounding to
    /// float), so a kernel that does the same gets the same bits.
    /// </summary>
    public static void UpdateCentre(ReadOnlySpan<double> sum, int count, bool seen, double keep, double blend,
        Span<float> centre, Span<double> wide)
    {
        int m = sum.Length, j = 0;
        ref double s = ref MemoryMarshal.GetReference(sum);
        ref float c = ref MemoryMarshal.GetReference(centre);
        ref double w = ref MemoryMarshal.GetReference(wide);
        if (Vector256.IsHardwareAccelerated)
        {
            var n = Vector256.Create((double)count);
            var k = Vector256.Create(keep);
            var b = Vector256.Create(blend);
            for (; j <= m - 8; j += 8)
            {
                var y0 = Vector256.LoadUnsafe(ref s, (nuint)j) / n;
                var y1 = Vector256.LoadUnsafe(ref s, (nuint)(j + 4)) / n;
                if (seen)
                {
                    var (c0, c1) = Vector256.Widen(Vector256.LoadUnsafe(ref c, (nuint)j));
                    y0 = Vector256.FusedMultiplyAdd(k, c0, b * y0);
                    y1 = Vector256.FusedMultiplyAdd(k, c1, b * y1);
                }
                var rounded = Vector256.Narrow(y0, y1);
                rounded.StoreUnsafe(ref c, (nuint)j);
                var (w0, w1) = Vector256.Widen(rounded);
                w0.StoreUnsafe(ref w, (nuint)j);
                w1.StoreUnsafe(ref w, (nuint)(j + 4));
            }
        }
        for (; j < m; j++)
        {
            double y = Unsafe.Add(ref s, j) / count;
            ref float cj = ref Unsafe.Add(ref c, j);
            cj = seen ? (float)Math.FusedMultiplyAdd(keep, cj, blend * y) : (float)y;
            Unsafe.Add(ref w, j) = cj;
        }
    }

    /// <summary>True when no value is NaN or infinite (x - x is 0 exactly for finite x).</summary>
    public static bool AllFinite(ReadOnlySpan<double> values)
    {
        int j = 0;
        ref double v = ref MemoryMarshal.GetReference(values);
        if (Vector256.IsHardwareAccelerated)
        {
            var bad = Vector256<double>.Zero;
            for (; j <= values.Length - 4; j += 4)
            {
                var x = Vector256.LoadUnsafe(ref v, (nuint)j);
                bad |= x - x; // 0 for finite x, NaN (non-zero bits) otherwise
            }
            if (bad != Vector256<double>.Zero) return false;
        }
        for (; j < values.Length; j++)
            if (!double.IsFinite(Unsafe.Add(ref v, j))) return false;
        return true;
    }

    /// <summary>
    /// The Euclidean distance between a float feature row and a centre widened to double, in the fixed
    /// 32-lane order described on the class. <paramref name="lanes"/> is scratch of <see cref="Lanes"/> doubles,
    /// used only when the row length is not a multiple of 32.
    /// </summary>
    public static double Distance(ReadOnlySpan<float> feature, ReadOnlySpan<double> centre, Span<double> lanes)
    {
        int m = feature.Length;
        ref float f = ref MemoryMarshal.GetReference(feature);
        ref double mu = ref MemoryMarshal.GetReference(centre);
        // Eight 4-wide accumulators are the 32 lanes: accumulator a holds lanes 4a .. 4a+3.
        var a0 = Vector256<double>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var a4 = a0; var a5 = a0; var a6 = a0; var a7 = a0;
        int main = Vector256.IsHardwareAccelerated ? m & ~(Lanes - 1) : 0;
        for (int j = 0; j < main; j += Lanes)
        {
            var (l0, h0) = Vector256.Widen(Vector256.LoadUnsafe(ref f, (nuint)j));
            var (l1, h1) = Vector256.Widen(Vector256.LoadUnsafe(ref f, (nuint)(j + 8)));
            var (l2, h2) = Vector256.Widen(Vector256.LoadUnsafe(ref f, (nuint)(j + 16)));
            var (l3, h3) = Vector256.Widen(Vector256.LoadUnsafe(ref f, (nuint)(j + 24)));
            var e0 = l0 - Vector256.LoadUnsafe(ref mu, (nuint)j);
            var e1 = h0 - Vector256.LoadUnsafe(ref mu, (nuint)(j + 4));
            var e2 = l1 - Vector256.LoadUnsafe(ref mu, (nuint)(j + 8));
            var e3 = h1 - Vector256.LoadUnsafe(ref mu, (nuint)(j + 12));
            var e4 = l2 - Vector256.LoadUnsafe(ref mu, (nuint)(j + 16));
            var e5 = h2 - Vector256.LoadUnsafe(ref mu, (nuint)(j + 20));
            var e6 = l3 - Vector256.LoadUnsafe(ref mu, (nuint)(j + 24));
            var e7 = h3 - Vector256.LoadUnsafe(ref mu, (nuint)(j + 28));
            a0 = Vector256.FusedMultiplyAdd(e0, e0, a0);
            a1 = Vector256.FusedMultiplyAdd(e1, e1, a1);
            a2 = Vector256.FusedMultiplyAdd(e2, e2, a2);
            a3 = Vector256.FusedMultiplyAdd(e3, e3, a3);
            a4 = Vector256.FusedMultiplyAdd(e4, e4, a4);
            a5 = Vector256.FusedMultiplyAdd(e5, e5, a5);
            a6 = Vector256.FusedMultiplyAdd(e6, e6, a6);
            a7 = Vector256.FusedMultiplyAdd(e7, e7, a7);
        }

        if (main == m)
        {
            // The shuffle-down tree on whole accumulators: offsets 16, 8, 4, then 2 and 1 inside a0.
            a0 += a4; a1 += a5; a2 += a6; a3 += a7;
            a0 += a2; a1 += a3;
            a0 += a1;
            return Math.Sqrt((a0.GetElement(0) + a0.GetElement(2)) + (a0.GetElement(1) + a0.GetElement(3)));
        }

        ref double s = ref MemoryMarshal.GetReference(lanes);
        a0.StoreUnsafe(ref s, 0); a1.StoreUnsafe(ref s, 4); a2.StoreUnsafe(ref s, 8); a3.StoreUnsafe(ref s, 12);
        a4.StoreUnsafe(ref s, 16); a5.StoreUnsafe(ref s, 20); a6.StoreUnsafe(ref s, 24); a7.StoreUnsafe(ref s, 28);
        for (int j = main; j < m; j++)
        {
            double e = (double)Unsafe.Add(ref f, j) - Unsafe.Add(ref mu, j);
            ref double lane = ref Unsafe.Add(ref s, j & (Lanes - 1));
            lane = Math.FusedMultiplyAdd(e, e, lane);
        }
        for (int offset = Lanes / 2; offset > 0; offset >>= 1)
            for (int k = 0; k < offset; k++)
                Unsafe.Add(ref s, k) += Unsafe.Add(ref s, k + offset);
        return Math.Sqrt(s);
    }
}
