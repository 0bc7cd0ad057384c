using System.Buffers;
using System.IO.MemoryMappedFiles;

namespace Dicc.Engine.Data;

/// <summary>
/// A read-only region of a memory-mapped file exposed as <see cref="Memory{T}"/>. The mapping stays valid
/// until <see cref="IDisposable.Dispose"/>; there is deliberately no finalizer that unmaps, because spans
/// handed out earlier cannot be tracked (an undisposed mapping lives until the process ends).
/// </summary>
internal sealed unsafe class MappedFileMemory : MemoryManager<byte>
{
    private MemoryMappedFile? _file;
    private MemoryMappedViewAccessor? _view;
    private byte* _base;
    private readonly long _offset;
    private readonly int _length;

    public MappedFileMemory(string path, long offset, int length)
    {
        _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, capacity: 0, MemoryMappedFileAccess.Read);
        try
        {
            _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            _base = pointer + _view.PointerOffset;
        }
        catch
        {
            _view?.Dispose();
            _file.Dispose();
            throw;
        }
        _offset = offset;
        _length = length;
    }

    public override Span<byte> GetSpan()
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        return new Span<byte>(_base + _offset, _length);
    }

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        if ((uint)elementIndex > (uint)_length) throw new ArgumentOutOfRangeException(nameof(elementIndex));
        return new MemoryHandle(_base + _offset + elementIndex);
    }

    public override void Unpin() { }

    protected override void Dispose(bool disposing)
    {
        if (_base == null) return;
        _base = null;
        _view!.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file!.Dispose();
        _view = null;
        _file = null;
    }
}
