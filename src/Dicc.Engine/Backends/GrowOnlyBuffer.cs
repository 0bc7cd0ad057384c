using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends;

/// <summary>
/// Backend memory for one purpose (an activation, a mask, an op's workspace) that only grows: it is
/// reallocated when a larger size is asked for (while planning) and reused as it is otherwise, so the
/// steps after the first allocate nothing. Views of any shape up to the largest asked for share it.
/// </summary>
internal sealed class GrowOnlyBuffer(Backend backend) : IDisposable
{
    private Storage? _storage;

    public long Bytes => _storage?.SizeInBytes ?? 0;

    /// <summary>The memory, at least <paramref name="bytes"/> long (64 at least).</summary>
    public Storage Ensure(long bytes)
    {
        if (_storage is null || _storage.SizeInBytes < bytes)
        {
            _storage?.Dispose();
            _storage = backend.Allocate(Math.Max(64, bytes));
        }
        return _storage;
    }

    /// <summary>A view of the memory as a tensor of this shape.</summary>
    public Tensor View(Shape shape, DType dtype = DType.Float32) =>
        new(Ensure(Math.Max(1, shape.ElementCount) * dtype.SizeInBytes()), shape, dtype);

    public void Dispose()
    {
        _storage?.Dispose();
        _storage = null;
    }
}
