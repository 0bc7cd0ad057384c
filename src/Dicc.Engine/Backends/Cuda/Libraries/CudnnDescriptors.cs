using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Libraries;

/// <summary>A cuDNN descriptor (host-side shape information), owned by the context like every other handle.</summary>
internal abstract class CudnnDescriptor : CudaResource
{
    private protected nint _handle;

    private protected CudnnDescriptor(CudaContext context) : base(RequireCudnn(context)) { }

    private static CudaContext RequireCudnn(CudaContext context)
    {
        CudaLibraries.Require(CudaLibrary.Cudnn); // before registering anything
        return context;
    }

    public nint Handle
    {
        get
        {
            ThrowIfDisposed();
            return _handle;
        }
    }

    internal override int DisposalRank => 2;
}

/// <summary>A dense float32 NCHW tensor shape.</summary>
internal sealed class CudnnTensorDescriptor : CudnnDescriptor
{
    public CudnnTensorDescriptor(CudaContext context, int n, int c, int h, int w) : base(context)
    {
        (N, C, H, W) = (n, c, h, w);
        ThrowIfFailed(Cudnn.cudnnCreateTensorDescriptor(out _handle));
        try
        {
            ThrowIfFailed(Cudnn.cudnnSetTensor4dDescriptor(_handle, CudnnTensorFormat.Nchw, CudnnDataType.Float, n, c, h, w));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int N { get; }
    public int C { get; }
    public int H { get; }
    public int W { get; }

    private protected override void Release()
    {
        if (_handle != 0) Cudnn.cudnnDestroyTensorDescriptor(_handle);
        _handle = 0;
    }
}

/// <summary>Float32 convolution weights [K, C, R, S] (NCHW order).</summary>
internal sealed class CudnnFilterDescriptor : CudnnDescriptor
{
    public CudnnFilterDescriptor(CudaContext context, int k, int c, int r, int s) : base(context)
    {
        ThrowIfFailed(Cudnn.cudnnCreateFilterDescriptor(out _handle));
        try
        {
            ThrowIfFailed(Cudnn.cudnnSetFilter4dDescriptor(_handle, CudnnDataType.Float, CudnnTensorFormat.Nchw, k, c, r, s));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private protected override void Release()
    {
        if (_handle != 0) Cudnn.cudnnDestroyFilterDescriptor(_handle);
        _handle = 0;
    }
}

/// <summary>A 2-D cross-correlation (PyTorch's Conv2d) with float32 accumulation.</summary>
internal sealed class CudnnConvolutionDescriptor : CudnnDescriptor
{
    public CudnnConvolutionDescriptor(CudaContext context, int padH, int padW, int strideH, int strideW, CudnnMathType mathType)
        : base(context)
    {
        ThrowIfFailed(Cudnn.cudnnCreateConvolutionDescriptor(out _handle));
        try
        {
            ThrowIfFailed(Cudnn.cudnnSetConvolution2dDescriptor(_handle, padH, padW, strideH, strideW, 1, 1,
                CudnnConvolutionMode.CrossCorrelation, CudnnDataType.Float));
            ThrowIfFailed(Cudnn.cudnnSetConvolutionMathType(_handle, mathType));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private protected override void Release()
    {
        if (_handle != 0) Cudnn.cudnnDestroyConvolutionDescriptor(_handle);
        _handle = 0;
    }
}
