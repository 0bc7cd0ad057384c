using Dicc.Engine.Backends.Cuda.Kernels;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cuda;

// Linear layers (cuBLAS, pedantic float32: no TF32, no reduced-precision reductions), softmax and the
// softmax cross-entropy (the engine's kernels). The GEMMs take the CPU backend's row-major arguments;
// CublasContext.GemmRowMajor turns them into cuBLAS's column-major call (ColumnMajorGemm).
public sealed partial class CudaBackend
{
    /// <inheritdoc/>
    protected override void LinearForwardCore(Tensor x, Tensor w, Tensor? b, Tensor y, int n, int fin, int fout)
    {
        if (n == 0) return;
        // y [n, out] = x [n, in] w^T, w [out, in]
        Blas.GemmRowMajor(false, true, n, fout, fin, 1f, P(x), fin, P(w), fin, 0f, P(y), fout);
        if (b is not null) _kernels.Bias.AddRowBias(_stream, P(y), P(b), n, fout);
    }

    /// <inheritdoc/>
    protected override void LinearBackwardCore(Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db, int n, int fin, int fout)
    {
        // dx [n, in] = dy [n, out] w [out, in]
        if (dx is not null && n > 0) Blas.GemmRowMajor(false, false, n, fin, fout, 1f, P(dy), fout, P(w), fin, 0f, P(dx), fin);
        // dw [out, in] = dy^T [out, n] x [n, in] (k = n = 0 writes zeros, as the CPU)
        Blas.GemmRowMajor(true, false, fout, fin, n, 1f, P(dy), fout, P(x), fin, 0f, P(dw), fin);
        if (db is not null) _kernels.Bias.ColumnSums(_stream, P(dy), P(db), n, fout);
    }

    /// <inheritdoc/>
    protected override void NormalizeRowsCore(Tensor x, Tensor y, Tensor norms)
    {
        int rows = x.Shape[0], f = x.Shape[1];
        if (rows == 0) return;
        if (f == 0) { _kernels.Elementwise.Fill(_stream, P(norms), 0f, rows); return; }
        _kernels.Normalization.NormalizeRows(_stream, P(x), P(y), P(norms), rows, f, RowNormEpsilon);
    }

    /// <inheritdoc/>
    protected override void NormalizeRowsBackwardCore(Tensor y, Tensor norms, Tensor dy, Tensor dx)
    {
        int rows = y.Shape[0], f = y.Shape[1];
        if (rows == 0 || f == 0) return;
        _kernels.Normalization.NormalizeRowsBackward(_stream, P(y), P(norms), P(dy), P(dx), rows, f, RowNormEpsilon);
    }

    /// <inheritdoc/>
    protected override void SoftmaxCore(Tensor logits, Tensor probabilities)
    {
        int rows = logits.Shape[0], k = logits.Shape[1];
        if (rows == 0 || k == 0) return;
        _kernels.Softmax.Softmax(_stream, P(logits), P(probabilities), rows, k);
    }

    /// <inheritdoc/>
    protected override void SoftmaxCrossEntropyCore(Tensor logits, Tensor labels, Tensor? classWeights, Tensor loss, Tensor? dlogits)
    {
        int rows = logits.Shape[0], k = logits.Shape[1];
        if (rows == 0 || k == 0)
        {
            // The CPU's 0 / 0 (rows == 0), or every label out of range (k == 0: the first row's).
            _kernels.Elementwise.Fill(_stream, P(loss), float.NaN, 1);
            if (rows > 0) _kernels.Data.CheckIndices(_stream, P(labels), rows, 0, DeviceStatusKind.CrossEntropyLabel, _status.Record);
            return;
        }
        var workspace = Scratch(_crossEntropyScratch, SoftmaxKernels.CrossEntropyWorkspaceFloats(rows) * sizeof(float));
        _kernels.Softmax.CrossEntropy(_stream, P(logits), P(labels), PointerOrNull(classWeights), P(loss), PointerOrNull(dlogits), workspace,
            _crossEntropyStatus.Pointer, rows, k, _status.Record);
    }

    /// <inheritdoc/>
    protected override void AdjustedSoftmaxCrossEntropyCore(Tensor logits, Tensor labels, Tensor? classWeights, Tensor? classOffsets,
        Tensor? labelMargins, float scale, float focalGamma, Tensor loss, Tensor? dlogits)
    {
        int rows = logits.Shape[0], k = logits.Shape[1];
        if (rows == 0 || k == 0)
        {
            _kernels.Elementwise.Fill(_stream, P(loss), float.NaN, 1);
            if (rows > 0) _kernels.Data.CheckIndices(_stream, P(labels), rows, 0, DeviceStatusKind.CrossEntropyLabel, _status.Record);
            return;
        }
        var workspace = Scratch(_crossEntropyScratch, SoftmaxKernels.AdjustedCrossEntropyWorkspaceFloats(rows) * sizeof(float));
        _kernels.Softmax.AdjustedCrossEntropy(_stream, P(logits), P(labels), PointerOrNull(classWeights), PointerOrNull(classOffsets),
            PointerOrNull(labelMargins), scale, focalGamma, P(loss), PointerOrNull(dlogits), workspace, _crossEntropyStatus.Pointer, rows, k,
            _status.Record);
    }
}
