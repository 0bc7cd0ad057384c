namespace Dicc.Engine.Backends.Cuda;

/// <summary>A block of a chunk: chunk number, byte offset, byte size.</summary>
internal readonly record struct Block(int Chunk, long Offset, long Size);

/// <summary>
/// The bookkeeping of the CUDA backend's memory pool, without any device calls (so it is tested on any
/// machine): chunks of address space, blocks handed out from them at <see cref="Alignment"/>-byte boundaries
/// (best fit: the smallest free block that holds the request), and freed blocks merged with free neighbours.
/// Deterministic: the same requests give the same offsets.
/// </summary>
internal sealed class BlockAllocator
{
    /// <summary>Every block starts at a multiple of this (what cuBLAS, cuDNN and vector loads want).</summary>
    public const long Alignment = 256;

    private readonly List<long> _chunks = [];
    private readonly List<Block> _free = []; // sorted by (chunk, offset); no two adjacent
    private readonly Dictionary<(int, long), long> _used = [];

    public int ChunkCount => _chunks.Count;
    public long ChunkBytes { get; private set; }
    public long UsedBytes { get; private set; }
    public int UsedBlocks => _used.Count;

    public static long RoundUp(long bytes) => (Math.Max(1, bytes) + Alignment - 1) / Alignment * Alignment;

    /// <summary>Adds a chunk of <paramref name="size"/> bytes (a multiple of <see cref="Alignment"/>); returns its number.</summary>
    public int AddChunk(long size)
    {
        if (size <= 0 || size % Alignment != 0) throw new ArgumentOutOfRangeException(nameof(size), size, $"A chunk is a positive multiple of {Alignment} bytes.");
        _chunks.Add(size);
        ChunkBytes += size;
        _free.Add(new Block(_chunks.Count - 1, 0, size));
        return _chunks.Count - 1;
    }

    /// <summary>The smallest free block that holds <paramref name="bytes"/> (rounded up), split off; null when none does.</summary>
    public Block? TryAllocate(long bytes)
    {
        long size = RoundUp(bytes);
        int best = -1;
        for (int i = 0; i < _free.Count; i++)
            if (_free[i].Size >= size && (best < 0 || _free[i].Size < _free[best].Size)) best = i;
        if (best < 0) return null;
        var f = _free[best];
        var block = new Block(f.Chunk, f.Offset, size);
        if (f.Size == size) _free.RemoveAt(best);
        else _free[best] = f with { Offset = f.Offset + size, Size = f.Size - size };
        _used.Add((block.Chunk, block.Offset), size);
        UsedBytes += size;
        return block;
    }

    /// <summary>Returns a block; it merges with free neighbours in its chunk.</summary>
    public void Free(Block block)
    {
        if (!_used.Remove((block.Chunk, block.Offset), out long size) || size != block.Size)
            throw new InvalidOperationException($"{block} was not allocated here (or was freed twice).");
        UsedBytes -= size;
        int i = 0;
        while (i < _free.Count && (_free[i].Chunk < block.Chunk || (_free[i].Chunk == block.Chunk && _free[i].Offset < block.Offset))) i++;
        var merged = block;
        if (i > 0 && _free[i - 1].Chunk == block.Chunk && _free[i - 1].Offset + _free[i - 1].Size == block.Offset)
        {
            merged = _free[i - 1] with { Size = _free[i - 1].Size + block.Size };
            _free.RemoveAt(--i);
        }
        if (i < _free.Count && _free[i].Chunk == block.Chunk && merged.Offset + merged.Size == _free[i].Offset)
        {
            merged = merged with { Size = merged.Size + _free[i].Size };
            _free.RemoveAt(i);
        }
        _free.Insert(i, merged);
    }

    /// <summary>The free blocks, in (chunk, offset) order (for tests).</summary>
    public IReadOnlyList<Block> FreeBlocks => _free;
}
