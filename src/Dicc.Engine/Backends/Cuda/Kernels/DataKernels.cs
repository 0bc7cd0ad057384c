using Dicc.Engine.Backends.Cuda.Runtime;
using Dicc.Engine.Data;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>kernels/data.cu: index checks, label gathering and batches cropped from a device-resident uint8 dataset.</summary>
internal sealed class DataKernels(KernelResolver resolve, int multiprocessors)
    : KernelLaunchers(ModuleFile, resolve, multiprocessors)
{
    public const string ModuleFile = "data.cu";

    private readonly CudaKernel _checkIndices = resolve(ModuleFile, "check_indices_i32");
    private readonly CudaKernel _gather = resolve(ModuleFile, "gather_i32");
    private readonly CudaKernel _crop = resolve(ModuleFile, "crop_images_u8");

    public override IReadOnlyDictionary<string, int> BlockThreads { get; } = new Dictionary<string, int>
    {
        ["check_indices_i32"] = LaunchShapes.ReductionThreads, ["gather_i32"] = LaunchShapes.ReductionThreads, ["crop_images_u8"] = 256,
    };

    /// <summary>Records in <paramref name="status"/> (a DiccStatus) the first of indices [n] outside [0, bound) as <paramref name="kind"/>.</summary>
    public void CheckIndices(CudaStream? stream, DevicePointer indices, int n, int bound, DeviceStatusKind kind, DevicePointer status)
    {
        if (n <= 0) return;
        _checkIndices.Launch(new LaunchConfig(1, LaunchShapes.ReductionThreads), stream, indices, n, bound, (int)kind, status);
    }

    /// <summary>output [n] = values[indices[j]] (int32, values [count]); a bad index is recorded in <paramref name="status"/>.</summary>
    public void Gather(CudaStream? stream, DevicePointer values, int count, DevicePointer indices, DevicePointer output, int n, DevicePointer status)
    {
        if (n <= 0) return;
        _gather.Launch(new LaunchConfig(1, LaunchShapes.ReductionThreads), stream, values, count, indices, output, n, status);
    }

    /// <summary>
    /// output [n * views, 1, crop, crop] from uint8 images [count, height, width] at indices [n] (Backend.CropImages;
    /// the random draws are <see cref="Augmentation.DrawCrop"/>'s). Indices are not checked here (see
    /// <see cref="CheckIndices"/>); a bad one gives zeros.
    /// </summary>
    public void CropImages(CudaStream? stream, DevicePointer images, DevicePointer indices, DevicePointer output, int count, int height, int width,
        int n, CropMode mode, int crop, ulong seed, ulong firstSample)
    {
        if (n <= 0) return;
        int views = mode == CropMode.TenCrop ? Augmentation.TenCropViews : 1;
        var s = new CropShape
        {
            Seed = seed, FirstSample = firstSample, Stream = Augmentation.CropStream, Count = count, Height = height, Width = width,
            N = n, Mode = (int)mode, Crop = crop,
        };
        _crop.Launch(new LaunchConfig(new Dim3(checked((uint)(n * views))), 256), stream, images, indices, output, s,
            Augmentation.CenterOffset(height, crop), Augmentation.CenterOffset(width, crop));
    }
}
