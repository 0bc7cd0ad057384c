using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda;

/// <summary>
/// The CUDA backend's device memory: a few large cuMemAlloc chunks carved into blocks by a
/// <see cref="BlockAllocator"/>. Parameters, gradients, optimiser state, activations and scratch all come from
/// here, so after the first training step (which plans every buffer) nothing reaches cuMemAlloc, which would
/// synchronise the device. Blocks are zero-filled by an asynchronous memset on the backend's stream; a freed
/// block may be handed out again at once, because every use of the memory is ordered on that one stream.
/// </summary>
internal sealed class DeviceMemoryPool : IDeviceAllocator, IDisposable
{
    private readonly CudaContext _context;
    private readonly BlockAllocator _blocks = new();
    private readonly List<CudaDeviceVariable<byte>> _chunks = [];
    private readonly Action<DeviceAllocation> _release;

    public DeviceMemoryPool(CudaContext context, CudaStream stream, long chunkBytes)
    {
        _context = context;
        Stream = stream;
        ChunkBytes = BlockAllocator.RoundUp(chunkBytes);
        _release = Release;
    }

    public CudaStream Stream { get; }

    /// <summary>Size of a chunk (a larger request gets a chunk of its own size).</summary>
    public long ChunkBytes { get; }

    /// <summary>cuMemAlloc calls made so far (one per chunk).</summary>
    public int DeviceAllocations => _chunks.Count;

    /// <summary>Blocks handed out so far (every <see cref="Allocate"/>).</summary>
    public long BlockAllocations { get; private set; }

    /// <summary>Device memory the pool holds.</summary>
    public long ReservedBytes => _blocks.ChunkBytes;

    /// <summary>Device memory in blocks now handed out.</summary>
    public long UsedBytes => _blocks.UsedBytes;

    public DeviceAllocation Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        var block = _blocks.TryAllocate(bytes) ?? Grow(bytes);
        var pointer = _chunks[block.Chunk].DevicePointer.Offset(block.Offset);
        _context.Bind();
        ThrowIfFailed(CudaDriver.cuMemsetD8Async(pointer.Address, 0, (nuint)block.Size, Stream.Handle));
        BlockAllocations++;
        return new BlockAllocation(pointer, bytes, block, _release);
    }

    private Block Grow(long bytes)
    {
        long needed = BlockAllocator.RoundUp(bytes);
        long size = Math.Max(needed, ChunkBytes);
        CudaDeviceVariable<byte> chunk;
        try
        {
            chunk = _context.Allocate<byte>(size);
        }
        catch (CudaException e) when (e.StatusCode == (int)CuResult.OutOfMemory && size > needed)
        {
            chunk = AllocateExactly(needed);
        }
        catch (CudaException e) when (e.StatusCode == (int)CuResult.OutOfMemory)
        {
            throw OutOfMemory(needed, e);
        }
        _chunks.Add(chunk);
        _blocks.AddChunk(chunk.SizeInBytes);
        return _blocks.TryAllocate(bytes) ?? throw new InvalidOperationException("A fresh chunk did not hold the block it was made for.");
    }

    private CudaDeviceVariable<byte> AllocateExactly(long bytes)
    {
        try
        {
            return _context.Allocate<byte>(bytes);
        }
        catch (CudaException e) when (e.StatusCode == (int)CuResult.OutOfMemory)
        {
            throw OutOfMemory(bytes, e);
        }
    }

    private GpuOutOfMemoryException OutOfMemory(long bytes, Exception inner)
    {
        long free = -1, total = _context.Device.TotalMemoryBytes;
        try { (free, total) = _context.MemoryInfo(); }
        catch (CudaException) { } // a broken context: report what is known
        return new GpuOutOfMemoryException(_context.Device.ToString(), bytes, free, total, ReservedBytes, inner);
    }

    private void Release(DeviceAllocation allocation) => _blocks.Free(((BlockAllocation)allocation).Block);

    /// <summary>Frees every chunk (the blocks handed out become invalid); the stream must be idle.</summary>
    public void Dispose()
    {
        foreach (var c in _chunks) c.Dispose();
        _chunks.Clear();
    }

    private sealed class BlockAllocation(DevicePointer pointer, long bytes, Block block, Action<DeviceAllocation> release)
        : DeviceAllocation(pointer, bytes, release)
    {
        public Block Block { get; } = block;
    }
}
