using System.Runtime.CompilerServices;

namespace Dicc.Engine.Tensors;

/// <summary>
/// An immutable tensor shape (row-major, outermost dimension first). Images are NCHW, matrices are
/// [rows, columns]. Compared by value so that it can key plan caches.
/// </summary>
public sealed class Shape : IEquatable<Shape>
{
    private readonly int[] _dims;

    /// <summary>A shape with these dimensions (each at least 0).</summary>
    public Shape(params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        if (dims.Length == 0) throw new ArgumentException("A shape needs at least one dimension.", nameof(dims));
        foreach (int d in dims)
            if (d < 0) throw new ArgumentException($"Negative dimension in shape [{string.Join(", ", dims)}].", nameof(dims));
        _dims = (int[])dims.Clone();
        long n = 1;
        foreach (int d in _dims) n = checked(n * d);
        ElementCount = n;
    }

    /// <summary>The number of dimensions.</summary>
    public int Rank => _dims.Length;
    /// <summary>The number of elements.</summary>
    public long ElementCount { get; }
    /// <summary>The size of dimension <paramref name="axis"/> (negative counts from the end).</summary>
    public int this[int axis] => _dims[axis < 0 ? _dims.Length + axis : axis];
    /// <summary>The dimensions.</summary>
    public ReadOnlySpan<int> Dims => _dims;

    /// <summary>Batch size: the outermost dimension.</summary>
    public int N => _dims[0];

    /// <summary>Elements per batch item (everything but the outermost dimension).</summary>
    public long ItemSize => _dims[0] == 0 ? 0 : ElementCount / _dims[0];

    /// <summary>[n, c, h, w].</summary>
    public static Shape Nchw(int n, int c, int h, int w) => new(n, c, h, w);
    /// <summary>[rows, columns].</summary>
    public static Shape Matrix(int rows, int columns) => new(rows, columns);
    /// <summary>[length].</summary>
    public static Shape Vector(int length) => new(length);

    /// <summary>The same shape with a different outermost (batch) dimension.</summary>
    public Shape WithBatch(int n)
    {
        var d = (int[])_dims.Clone();
        d[0] = n;
        return new Shape(d);
    }

    /// <summary>Throws a <see cref="ShapeMismatchException"/> unless the shape has <paramref name="rank"/> dimensions.</summary>
    public void RequireRank(int rank, [CallerArgumentExpression(nameof(rank))] string? what = null)
    {
        if (Rank != rank) throw new ShapeMismatchException($"Expected a rank-{rank} tensor, got {this}.");
    }

    /// <summary>True for the same dimensions.</summary>
    public bool Equals(Shape? other) => other is not null && _dims.AsSpan().SequenceEqual(other._dims);
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Shape s && Equals(s);
    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (int d in _dims) h.Add(d);
        return h.ToHashCode();
    }
    /// <summary>True for the same dimensions (or both null).</summary>
    public static bool operator ==(Shape? a, Shape? b) => a is null ? b is null : a.Equals(b);
    /// <summary>False for the same dimensions.</summary>
    public static bool operator !=(Shape? a, Shape? b) => !(a == b);
    /// <inheritdoc/>
    public override string ToString() => "[" + string.Join("x", _dims) + "]";
}

/// <summary>Thrown when tensor shapes do not fit an operation; the message names both shapes.</summary>
public sealed class ShapeMismatchException(string message) : InvalidOperationException(message);
