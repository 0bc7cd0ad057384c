using System.Runtime.InteropServices;
using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>What a failed device-side check was: kernels/common.cuh's DICC_STATUS_* values.</summary>
internal enum DeviceStatusKind
{
    None = 0,
    CrossEntropyLabel = 1,
    GatherIndex = 2,
    CropIndex = 3,
    ClusterLabel = 4,
    ClusterNonFinite = 5,
}

/// <summary>kernels/common.cuh's DiccStatus: the first failed check since the record was last read (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct DeviceStatusRecord
{
    public DeviceStatusKind Kind;
    public int Row, Value, Bound, Aux;
    private int _pad0, _pad1, _pad2;

    public const int SizeInBytes = 32;

    public DeviceStatusRecord(DeviceStatusKind kind, int row, int value, int bound, int aux = 0)
    {
        Kind = kind;
        Row = row;
        Value = value;
        Bound = bound;
        Aux = aux;
        _pad0 = _pad1 = _pad2 = 0;
    }

    /// <summary>
    /// The exception the CPU backend (or the reference clustering) throws for the same input: same type, same
    /// parameter name, same message, so a failure reads the same on every device.
    /// </summary>
    public readonly Exception ToException() => Kind switch
    {
        DeviceStatusKind.CrossEntropyLabel =>
            new ArgumentOutOfRangeException("labels", Value, $"Label of row {Row} is outside [0, {Bound})."),
        DeviceStatusKind.GatherIndex =>
            new ArgumentOutOfRangeException("indices", Value, $"Index {Value} at position {Row} is outside [0, {Bound})."),
        DeviceStatusKind.CropIndex =>
            new ArgumentOutOfRangeException("indices", Value, $"Image index {Value} at batch position {Row} is outside [0, {Bound})."),
        DeviceStatusKind.ClusterLabel =>
            new ArgumentException($"Label {Value} of sample {Row} is outside [0, {Bound}).", "labels"),
        DeviceStatusKind.ClusterNonFinite when Row >= 0 =>
            new ArgumentException($"Feature {Value} of sample {Row} is {BitConverter.Int32BitsToSingle(Aux)}; clustering needs finite features.", "features"),
        DeviceStatusKind.ClusterNonFinite =>
            new ArgumentException($"The features of class {Value} are not finite.", "features"),
        _ => new CudaException($"The device reported an unknown failure (status kind {(int)Kind}, row {Row}, value {Value}, bound {Bound})."),
    };
}

/// <summary>
/// A device status record and its page-locked host copy. Kernels write the record; at each synchronisation
/// point the owner queues <see cref="EnqueueRead"/> before its wait and calls <see cref="ThrowIfFailed"/> after
/// it, which clears the record and throws the failure's exception. Reading costs one 32-byte copy per sync.
/// </summary>
internal sealed unsafe class DeviceStatusMonitor : IDisposable
{
    private readonly DeviceAllocation _record;
    private readonly CudaPinnedHostBuffer<DeviceStatusRecord> _host;

    public DeviceStatusMonitor(CudaContext context, IDeviceAllocator allocator)
    {
        _record = allocator.Allocate(DeviceStatusRecord.SizeInBytes);
        _host = context.AllocatePinned<DeviceStatusRecord>(1);
        _host.Span[0] = default;
    }

    /// <summary>The record's device address (a DiccStatus*).</summary>
    public DevicePointer Record => _record.Pointer;

    /// <summary>Queues the copy of the record to the host behind the stream's work so far.</summary>
    public void EnqueueRead(CudaStream stream)
    {
        stream.Context.Bind();
        fixed (DeviceStatusRecord* p = _host.Span)
            CudaCheck.ThrowIfFailed(CudaDriver.cuMemcpyDtoHAsync_v2(p, Record.Address, DeviceStatusRecord.SizeInBytes, stream.Handle));
    }

    /// <summary>After the stream has been synchronised: throws the recorded failure, if any, and clears the record.</summary>
    public void ThrowIfFailed(CudaStream stream)
    {
        var record = _host.Span[0];
        if (record.Kind == DeviceStatusKind.None) return;
        _host.Span[0] = default;
        stream.Context.Bind();
        CudaCheck.ThrowIfFailed(CudaDriver.cuMemsetD8Async(Record.Address, 0, DeviceStatusRecord.SizeInBytes, stream.Handle));
        throw record.ToException();
    }

    /// <summary>Waits for <paramref name="stream"/> and throws the first failure recorded since the last check.</summary>
    public void Check(CudaStream stream)
    {
        EnqueueRead(stream);
        stream.Synchronize();
        ThrowIfFailed(stream);
    }

    public void Dispose()
    {
        _host.Dispose();
        _record.Dispose();
    }
}
