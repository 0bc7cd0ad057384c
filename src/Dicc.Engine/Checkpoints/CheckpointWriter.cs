using Dicc.Engine.IO;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Checkpoints;

/// <summary>
/// Collects a training state as named tensors (device tensors are copied to the host) plus string
/// metadata, and writes one safetensors file atomically. PyTorch reads it with
/// <c>safetensors.torch.load_file</c>; weight names follow PyTorch's module naming.
/// </summary>
public sealed class CheckpointWriter
{
    private readonly SortedDictionary<string, SafetensorsTensor> _tensors = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, string> _metadata = new(StringComparer.Ordinal);

    /// <summary>Adds a tensor (copied to the host now) under <paramref name="name"/>.</summary>
    public void Add(string name, Tensor tensor)
    {
        var shape = tensor.Shape.Dims.ToArray().Select(d => (long)d).ToArray();
        var backend = tensor.Backend;
        Put(name, tensor.DType switch
        {
            DType.Float32 => SafetensorsTensor.From(backend.ToArray<float>(tensor), shape),
            DType.Int32 => SafetensorsTensor.From(backend.ToArray<int>(tensor), shape),
            DType.UInt8 => SafetensorsTensor.From(backend.ToArray<byte>(tensor), shape),
            _ => throw new ArgumentOutOfRangeException(nameof(tensor), tensor.DType, null),
        });
    }

    /// <summary>Adds float32 values with the given shape.</summary>
    public void Add(string name, float[] values, params long[] shape) => Put(name, SafetensorsTensor.From(values, shape));
    /// <summary>Adds int32 values with the given shape.</summary>
    public void Add(string name, int[] values, params long[] shape) => Put(name, SafetensorsTensor.From(values, shape));
    /// <summary>Adds a scalar int64 (a counter).</summary>
    public void Add(string name, long value) => Put(name, SafetensorsTensor.From(new[] { value }, Array.Empty<long>()));
    /// <summary>Adds booleans as a uint8 vector (0 or 1).</summary>
    public void Add(string name, bool[] values) =>
        Put(name, SafetensorsTensor.From(values.Select(v => v ? (byte)1 : (byte)0).ToArray(), values.Length));

    /// <summary>Sets a string in the file's <c>__metadata__</c>.</summary>
    public void AddMetadata(string key, string value) => _metadata[key] = value;

    private void Put(string name, SafetensorsTensor t)
    {
        if (!_tensors.TryAdd(name, t)) throw new InvalidOperationException($"Checkpoint tensor '{name}' was added twice.");
    }

    /// <summary>The names added so far, in order.</summary>
    public IReadOnlyCollection<string> Names => _tensors.Keys;

    /// <summary>Writes the file atomically: a crash leaves the previous checkpoint intact.</summary>
    public void Save(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        SafetensorsFile.Save(path, _tensors, _metadata);
    }
}

/// <summary>Reads a checkpoint back into a training state, checking every name, type and shape.</summary>
public sealed class CheckpointReader
{
    private readonly SafetensorsContent _content;

    /// <summary>Reads the checkpoint at <paramref name="path"/>; throws an <see cref="InputException"/> when it is missing or not a valid safetensors file.</summary>
    public CheckpointReader(string path)
    {
        if (!File.Exists(path)) throw new InputException($"{path}: checkpoint not found.");
        Path_ = path;
        _content = SafetensorsFile.Load(path);
    }

    private string Path_ { get; }
    /// <summary>The file's <c>__metadata__</c> strings.</summary>
    public IReadOnlyDictionary<string, string> Metadata => _content.Metadata;
    /// <summary>True when the checkpoint holds a tensor of that name.</summary>
    public bool Contains(string name) => _content.Tensors.ContainsKey(name);
    /// <summary>The names of the tensors the checkpoint holds.</summary>
    public IEnumerable<string> TensorNames => _content.Tensors.Keys;

    /// <summary>A metadata value; throws an <see cref="InputException"/> naming the file and key when it is missing.</summary>
    public string RequireMetadata(string key) =>
        _content.Metadata.TryGetValue(key, out var v) ? v : throw new InputException($"{Path_}: checkpoint metadata has no '{key}'.");

    private SafetensorsTensor Get(string name) =>
        _content.Tensors.TryGetValue(name, out var t) ? t
            : throw new InputException($"{Path_}: checkpoint has no tensor '{name}' (was it written by another model configuration?).");

    /// <summary>Copies the named tensor into a device tensor of the same type and shape.</summary>
    public void ReadInto(string name, Tensor tensor)
    {
        var t = Get(name);
        var expected = tensor.Shape.Dims.ToArray().Select(d => (long)d).ToArray();
        if (!t.Shape.SequenceEqual(expected))
            throw new InputException($"{Path_}: tensor '{name}' has shape [{string.Join("x", t.Shape)}], the model expects [{string.Join("x", expected)}].");
        var backend = tensor.Backend;
        switch (tensor.DType)
        {
            case DType.Float32 when t.DType == SafetensorsDType.Float32: backend.CopyIn(tensor, t.AsSpan<float>()); break;
            case DType.Int32 when t.DType == SafetensorsDType.Int32: backend.CopyIn(tensor, t.AsSpan<int>()); break;
            case DType.UInt8 when t.DType == SafetensorsDType.UInt8: backend.CopyIn(tensor, t.AsSpan<byte>()); break;
            default: throw new InputException($"{Path_}: tensor '{name}' is {t.DType}, the model expects {tensor.DType}.");
        }
    }

    /// <summary>The named float32 tensor's values, whatever its shape; throws when it is missing or not float32.</summary>
    public float[] ReadFloats(string name)
    {
        var t = Get(name);
        if (t.DType != SafetensorsDType.Float32) throw new InputException($"{Path_}: tensor '{name}' is {t}, expected F32.");
        return t.ToArray<float>();
    }

    /// <summary>The named float32 tensor's values; throws when its type or element count differs.</summary>
    public float[] ReadFloats(string name, long expectedCount)
    {
        var t = Get(name);
        if (t.DType != SafetensorsDType.Float32 || t.ElementCount != expectedCount)
            throw new InputException($"{Path_}: tensor '{name}' is {t}, expected F32 with {expectedCount} elements.");
        return t.ToArray<float>();
    }

    /// <summary>The named int32 tensor; throws when its type or element count differs.</summary>
    public int[] ReadInt32s(string name, long expectedCount)
    {
        var t = Get(name);
        if (t.DType != SafetensorsDType.Int32 || t.ElementCount != expectedCount)
            throw new InputException($"{Path_}: tensor '{name}' is {t}, expected I32 with {expectedCount} elements.");
        return t.ToArray<int>();
    }

    /// <summary>The named uint8 tensor as booleans; throws when its type or element count differs.</summary>
    public bool[] ReadBools(string name, int expectedCount)
    {
        var t = Get(name);
        if (t.DType != SafetensorsDType.UInt8 || t.ElementCount != expectedCount)
            throw new InputException($"{Path_}: tensor '{name}' is {t}, expected U8 with {expectedCount} elements.");
        return t.AsSpan<byte>().ToArray().Select(b => b != 0).ToArray();
    }

    /// <summary>The named scalar int64; throws when it is not one.</summary>
    public long ReadInt64(string name)
    {
        var t = Get(name);
        if (t.DType != SafetensorsDType.Int64 || t.ElementCount != 1)
            throw new InputException($"{Path_}: tensor '{name}' is {t}, expected a scalar I64.");
        return t.AsSpan<long>()[0];
    }
}
