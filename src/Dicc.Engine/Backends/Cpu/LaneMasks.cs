using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Dicc.Engine.Backends.Cpu;

/// <summary>Masks for the partial vectors at the ends of rows (masked loads and stores take them as float lanes).</summary>
internal static class LaneMasks
{
    /// <summary>Lanes [0, count) of eight set (none for count &lt;= 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> First256(int count) =>
        Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(count)).AsSingle();

    /// <summary>Lanes [0, count) of 16 set (none for count &lt;= 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> First512(int count) =>
        Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();
}
