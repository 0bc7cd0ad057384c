using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Libraries;

/// <summary>
/// A cuBLAS handle bound to a stream. cuBLAS is column-major; <see cref="GemmRowMajor"/> takes the engine's
/// row-major convention (that of <c>Backends/Cpu/Gemm.cs</c>) and swaps operands, since a row-major C is a
/// column-major C^T = op(B)^T op(A)^T. The math mode defaults to full float32 (no TF32) so results match the
/// CPU backend to float rounding; <see cref="CublasMathMode.Tf32TensorOp"/> trades that for speed.
/// </summary>
internal sealed unsafe class CublasContext : CudaResource
{
    private nint _handle;
    private CudaStream _stream;

    public CublasContext(CudaContext context, CudaStream? stream = null) : base(context)
    {
        CudaLibraries.Require(CudaLibrary.Cublas);
        context.Bind();
        try
        {
            ThrowIfFailed(Cublas.cublasCreate_v2(out _handle));
            _stream = stream ?? context.Stream;
            ThrowIfFailed(Cublas.cublasSetStream_v2(_handle, _stream.Handle));
            ThrowIfFailed(Cublas.cublasSetMathMode(_handle, CublasMathMode.Default));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>cuBLAS's version, e.g. (12, 8, 4), without needing a device.</summary>
    public static (int Major, int Minor, int Patch) Version
    {
        get
        {
            CudaLibraries.Require(CudaLibrary.Cublas);
            ThrowIfFailed(Cublas.cublasGetProperty(Cublas.LibraryPropertyMajor, out int major));
            ThrowIfFailed(Cublas.cublasGetProperty(Cublas.LibraryPropertyMinor, out int minor));
            ThrowIfFailed(Cublas.cublasGetProperty(Cublas.LibraryPropertyPatch, out int patch));
            return (major, minor, patch);
        }
    }

    public nint Handle
    {
        get
        {
            ThrowIfDisposed();
            return _handle;
        }
    }

    /// <summary>The stream every call is queued on.</summary>
    public CudaStream Stream
    {
        get => _stream;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            Context.Bind();
            ThrowIfFailed(Cublas.cublasSetStream_v2(Handle, value.Handle));
            _stream = value;
        }
    }

    public CublasMathMode MathMode
    {
        set
        {
            Context.Bind();
            ThrowIfFailed(Cublas.cublasSetMathMode(Handle, value));
        }
    }

    /// <summary>
    /// Gives cuBLAS its workspace instead of letting it allocate: needed for calls captured into a CUDA graph
    /// (cuBLAS recommends at least 4 MiB, 32 MiB on Hopper). The memory must outlive the handle's use.
    /// </summary>
    public void SetWorkspace(CudaDeviceVariable<byte> workspace)
    {
        Context.Bind();
        ThrowIfFailed(Cublas.cublasSetWorkspace_v2(Handle, workspace.DevicePointer.Address, (nuint)workspace.SizeInBytes));
    }

    /// <summary>Column-major C = alpha op(A) op(B) + beta C (cublasSgemm, cuBLAS's own convention).</summary>
    public void Sgemm(CublasOperation transA, CublasOperation transB, int m, int n, int k, float alpha,
        DevicePointer a, int lda, DevicePointer b, int ldb, float beta, DevicePointer c, int ldc)
    {
        Context.Bind();
        ThrowIfFailed(Cublas.cublasSgemm_v2(Handle, transA, transB, m, n, k, &alpha, a.Address, lda, b.Address, ldb, &beta, c.Address, ldc));
    }

    /// <summary>
    /// Row-major C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C, op(A) = A or A^T (A stored [k,m] when transposed),
    /// leading dimensions are row strides: the same arguments as the CPU backend's Gemm.Sgemm.
    /// </summary>
    public void GemmRowMajor(bool transA, bool transB, int m, int n, int k, float alpha,
        DevicePointer a, int lda, DevicePointer b, int ldb, float beta, DevicePointer c, int ldc)
    {
        var g = ColumnMajorGemm.FromRowMajor(transA, transB, m, n, k, lda, ldb, ldc);
        Sgemm(g.TransA, g.TransB, g.M, g.N, g.K, alpha, g.FirstIsB ? b : a, g.Lda, g.FirstIsB ? a : b, g.Ldb, beta, c, g.Ldc);
    }

    /// <summary>Column-major GEMM with explicit data and compute types (cublasGemmEx); float alpha and beta.</summary>
    public void GemmEx(CublasOperation transA, CublasOperation transB, int m, int n, int k, float alpha,
        DevicePointer a, CudaDataType aType, int lda, DevicePointer b, CudaDataType bType, int ldb, float beta,
        DevicePointer c, CudaDataType cType, int ldc, CublasComputeType computeType = CublasComputeType.Float32)
    {
        Context.Bind();
        ThrowIfFailed(Cublas.cublasGemmEx(Handle, transA, transB, m, n, k, &alpha, a.Address, aType, lda, b.Address, bType, ldb,
            &beta, c.Address, cType, ldc, computeType, Cublas.GemmDefault));
    }

    /// <summary>Column-major batched GEMM over matrices at fixed strides (in elements).</summary>
    public void SgemmStridedBatched(CublasOperation transA, CublasOperation transB, int m, int n, int k, float alpha,
        DevicePointer a, int lda, long strideA, DevicePointer b, int ldb, long strideB, float beta,
        DevicePointer c, int ldc, long strideC, int batchCount)
    {
        Context.Bind();
        ThrowIfFailed(Cublas.cublasSgemmStridedBatched(Handle, transA, transB, m, n, k, &alpha, a.Address, lda, strideA,
            b.Address, ldb, strideB, &beta, c.Address, ldc, strideC, batchCount));
    }

    internal override int DisposalRank => 1;

    private protected override void Release()
    {
        if (_handle == 0) return;
        Cublas.cublasDestroy_v2(_handle);
        _handle = 0;
    }
}

/// <summary>
/// A column-major GEMM call (cuBLAS's convention) equivalent to a row-major one. A row-major matrix [r, c] with
/// row stride ld is the column-major [c, r] with the same ld, so the row-major C = op(A) op(B) is the
/// column-major C^T = op(B)^T op(A)^T: swap the operands (<see cref="FirstIsB"/>), swap m and n, keep each
/// operand's transpose flag and leading dimension.
/// </summary>
internal readonly record struct ColumnMajorGemm(CublasOperation TransA, CublasOperation TransB, int M, int N, int K,
    bool FirstIsB, int Lda, int Ldb, int Ldc)
{
    public static ColumnMajorGemm FromRowMajor(bool transA, bool transB, int m, int n, int k, int lda, int ldb, int ldc) =>
        new(transB ? CublasOperation.Transpose : CublasOperation.NonTranspose,
            transA ? CublasOperation.Transpose : CublasOperation.NonTranspose,
            n, m, k, FirstIsB: true, Lda: ldb, Ldb: lda, Ldc: ldc);
}
