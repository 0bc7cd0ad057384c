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
    /// <summary>A view of <paramref name="storage"/>: <paramref name="shape"/> elements of <paramref name="dtype"/> from element <paramref name="offset"/>.</summary>
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

    /// <summary>The memory this tensor views.</summary>
    public Storage Storage { get; }
    /// <summary>Its shape.</summary>
    public Shape Shape { get; }
    /// <summary>Its element type.</summary>
    public DType DType { get; }

    /// <summary>Offset into the storage, in elements of <see cref="DType"/>.</summary>
    public long Offset { get; }
    /// <summary>The number of elements.</summary>
    public long ElementCount => Shape.ElementCount;
    /// <summary>The backend that owns the memory.</summary>
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

    /// <summary>Throws a <see cref="ShapeMismatchException"/> unless the tensor has shape <paramref name="expected"/>.</summary>
    public void RequireShape(Shape expected, [CallerArgumentExpression(nameof(expected))] string? what = null)
    {
        if (Shape != expected) throw new ShapeMismatchException($"Expected {expected} ({what}), got {Shape}.");
    }

    /// <summary>Throws unless the tensor's element type is <paramref name="expected"/>.</summary>
    public void RequireDType(DType expected)
    {
        if (DType != expected) throw new ArgumentException($"Expected a {expected} tensor, got {DType} {Shape}.");
    }

    /// <inheritdoc/>
    public override string ToString() => $"{DType}{Shape}@{Backend.Name}";
}
