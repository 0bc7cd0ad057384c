using System.Runtime.CompilerServices;
using Dicc.Engine.Backends;

namespace Dicc.Engine.Tensors;

/// <summary>
/// A view of a backend's storage: element offset, shape and element type. Always dense and row-major
/// (NCHW for images). Tensors do not own memory; the storage does. Views are made when memory is planned,
/// never inside a training step.
/// </summary>
public sealed class Tensor
{
    public Tensor(Storage storage, Shape shape, DType dtype = DType.Float32, long offset = 0)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(shape);
        if (offset < 0) throw new ArgumentOutOfRangeException(nameof(offset));
        long end = (offset + shape.ElementCount) * dtype.SizeInBytes();
        if (end > storage.SizeInBytes)
            throw new ArgumentException(
                $"A {dtype} view {shape} at element {offset} needs {end} bytes; the storage has {storage.SizeInBytes}.");
        Storage = storage;
        Shape = shape;
        DType = dtype;
        Offset = offset;
    }

    public Storage Storage { get; }
    public Shape Shape { get; }
    public DType DType { get; }

    /// <summary>Offset into the storage, in elements of <see cref="DType"/>.</summary>
    public long Offset { get; }
    public long ElementCount => Shape.ElementCount;
    public Backend Backend => Storage.Backend;

    /// <summary>A view of the same memory with another shape of equal element count.</summary>
    public Tensor Reshape(Shape shape)
    {
        if (shape.ElementCount != ElementCount)
            throw new ShapeMismatchException($"Cannot reshape {Shape} ({ElementCount} elements) to {shape}.");
        return new Tensor(Storage, shape, DType, Offset);
    }

    /// <summary>A view of the first <paramref name="n"/> items along the batch axis.</summary>
    public Tensor SliceBatch(int n) => SliceBatch(0, n);

    /// <summary>A view of items [start, start + n) along the batch axis.</summary>
    public Tensor SliceBatch(int start, int n)
    {
        if (start < 0 || n < 0 || start + n > Shape.N)
            throw new ArgumentOutOfRangeException(nameof(n), $"Batch slice [{start}, {start + n}) outside {Shape}.");
        return new Tensor(Storage, Shape.WithBatch(n), DType, Offset + start * Shape.ItemSize);
    }

    public void RequireShape(Shape expected, [CallerArgumentExpression(nameof(expected))] string? what = null)
    {
        if (Shape != expected) throw new ShapeMismatchException($"Expected {expected} ({what}), got {Shape}.");
    }

    public void RequireDType(DType expected)
    {
        if (DType != expected) throw new ArgumentException($"Expected a {expected} tensor, got {DType} {Shape}.");
    }

    public override string ToString() => $"{DType}{Shape}@{Backend.Name}";
}
