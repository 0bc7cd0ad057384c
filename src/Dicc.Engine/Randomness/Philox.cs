using System.Runtime.CompilerServices;

namespace Dicc.Engine.Randomness;

/// <summary>
/// Philox4x32-10 (Salmon et al., SC 2011), the counter-based generator of cuRAND and PyTorch's CUDA
/// backend. A (key, counter) pair maps to four independent 32-bit words, so any element of a stream can
/// be computed directly: the CPU backend and a CUDA kernel produce the same dropout mask or crop offsets
/// from the same seed and position, and the state of a stream is just (seed, stream, position).
/// </summary>
public static class Philox
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57;
    private const uint W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>The four words of block <paramref name="counter"/> in stream <paramref name="stream"/> under key <paramref name="seed"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (uint, uint, uint, uint) Block(ulong seed, ulong stream, ulong counter)
    {
        uint c0 = (uint)counter, c1 = (uint)(counter >> 32), c2 = (uint)stream, c3 = (uint)(stream >> 32);
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        for (int round = 0; round < 10; round++)
        {
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint n0 = (uint)(p1 >> 32) ^ c1 ^ k0;
            uint n1 = (uint)p1;
            uint n2 = (uint)(p0 >> 32) ^ c3 ^ k1;
            uint n3 = (uint)p0;
            c0 = n0; c1 = n1; c2 = n2; c3 = n3;
            k0 += W0; k1 += W1;
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>Word <paramref name="index"/> of the flat stream (four words per block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Word(ulong seed, ulong stream, ulong index)
    {
        var (a, b, c, d) = Block(seed, stream, index >> 2);
        return (index & 3) switch { 0 => a, 1 => b, 2 => c, _ => d };
    }

    /// <summary>A uniform float in [0, 1) from a 32-bit word: the top 24 bits, exactly representable.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToUniform(uint word) => (word >> 8) * (1.0f / 16777216.0f);
}

/// <summary>
/// A seeded random stream over Philox with an explicit position, so that its whole state can be saved in
/// a checkpoint and restored exactly. Not thread-safe: give each consumer its own stream id.
/// </summary>
public sealed class RandomStream
{
    private uint _b0, _b1, _b2, _b3;
    private ulong _bufferedBlock = ulong.MaxValue;

    /// <summary>A stream of Philox4x32-10 numbers for (<paramref name="seed"/>, <paramref name="stream"/>), starting at <paramref name="position"/>.</summary>
    public RandomStream(ulong seed, ulong stream = 0, ulong position = 0)
    {
        Seed = seed;
        Stream = stream;
        Position = position;
    }

    /// <summary>The seed.</summary>
    public ulong Seed { get; }
    /// <summary>The stream number.</summary>
    public ulong Stream { get; }

    /// <summary>Number of 32-bit words consumed so far.</summary>
    public ulong Position { get; set; }

    /// <summary>The next 32 random bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint NextUInt()
    {
        ulong block = Position >> 2;
        if (block != _bufferedBlock)
        {
            (_b0, _b1, _b2, _b3) = Philox.Block(Seed, Stream, block);
            _bufferedBlock = block;
        }
        uint w = (Position & 3) switch { 0 => _b0, 1 => _b1, 2 => _b2, _ => _b3 };
        Position++;
        return w;
    }

    /// <summary>Uniform in [0, 1).</summary>
    public float NextFloat() => Philox.ToUniform(NextUInt());

    /// <summary>Uniform in [0, 1) with 53 bits.</summary>
    public double NextDouble() => ((ulong)NextUInt() << 21 ^ NextUInt() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Unbiased integer in [0, bound) (Lemire's multiply-and-reject).</summary>
    public int NextInt(int bound)
    {
        if (bound <= 0) throw new ArgumentOutOfRangeException(nameof(bound));
        ulong m = (ulong)NextUInt() * (uint)bound;
        uint low = (uint)m;
        if (low < (uint)bound)
        {
            uint threshold = (uint)(-bound) % (uint)bound;
            while (low < threshold)
            {
                m = (ulong)NextUInt() * (uint)bound;
                low = (uint)m;
            }
        }
        return (int)(m >> 32);
    }

    /// <summary>Standard normal (Box-Muller, one value per two words; deterministic, not cached).</summary>
    public double NextNormal()
    {
        double u1 = (NextUInt() + 1.0) * (1.0 / 4294967296.0); // (0, 1]
        double u2 = NextUInt() * (1.0 / 4294967296.0);
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>An independent stream derived from this one's seed (e.g. one per layer or per epoch).</summary>
    public RandomStream Fork(ulong stream) => new(Seed, stream);
}
