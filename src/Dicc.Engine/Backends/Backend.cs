using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends;

/// <summary>
/// The backend contract: memory, transfers, and the handful of ops a VGG + DICC training step needs.
/// The CPU backend is the reference implementation (and the oracle for GPU tests); the CUDA backend
/// implements the same contract. Public methods check shapes once here, so that every backend gets the
/// same errors; backends implement the protected <c>...Core</c> methods and may assume valid arguments.
///
/// Conventions: tensors are dense, row-major, float32 unless stated. Gradient outputs are overwritten,
/// never accumulated (each parameter is used once per step, so there is nothing to zero). Ops may run
/// asynchronously; <see cref="CopyOut{T}"/> and <see cref="Synchronize"/> wait for them.
/// </summary>
public abstract class Backend : IDisposable
{
    /// <summary>Short name, e.g. "cpu" or "cuda:0".</summary>
    public abstract string Name { get; }

    /// <summary>What the backend runs on, for logs (CPU model and threads, GPU name).</summary>
    public abstract string Description { get; }

    // ---- memory -----------------------------------------------------------------------------------

    /// <summary>Allocates zero-filled memory. Call while planning, never inside a step.</summary>
    public abstract Storage Allocate(long sizeInBytes);

    /// <summary>Allocates a fresh tensor of its own (a convenience for planning and tests).</summary>
    public Tensor Create(Shape shape, DType dtype = DType.Float32) =>
        new(Allocate(Math.Max(1, shape.ElementCount * dtype.SizeInBytes())), shape, dtype);

    /// <summary>Copies host values into a tensor of this backend (element type and count must match). On a GPU the copy is queued on the backend's stream; the source may be reused when the call returns.</summary>
    public void CopyIn<T>(Tensor dst, ReadOnlySpan<T> src) where T : unmanaged
    {
        RequireOwn(dst);
        dst.RequireDType(DTypeExtensions.Of<T>());
        if (src.Length != dst.ElementCount)
            throw new ArgumentException($"Copying {src.Length} values into {dst.Shape} ({dst.ElementCount} elements).");
        CopyInCore(dst, System.Runtime.InteropServices.MemoryMarshal.AsBytes(src));
    }

    /// <summary>Copies a tensor into host memory (element type and count must match); waits for the work queued before it.</summary>
    public void CopyOut<T>(Tensor src, Span<T> dst) where T : unmanaged
    {
        RequireOwn(src);
        src.RequireDType(DTypeExtensions.Of<T>());
        if (dst.Length != src.ElementCount)
            throw new ArgumentException($"Copying {src.Shape} ({src.ElementCount} elements) into {dst.Length} values.");
        CopyOutCore(src, System.Runtime.InteropServices.MemoryMarshal.AsBytes(dst));
    }

    /// <summary>Reads a tensor back into a new array (tests, logging, checkpoints; not for the hot path).</summary>
    public T[] ToArray<T>(Tensor src) where T : unmanaged
    {
        var a = new T[src.ElementCount];
        CopyOut<T>(src, a);
        return a;
    }

    /// <summary>Reads a float32 tensor back into a new array (tests, logging, checkpoints; not for the hot path).</summary>
    public float[] ToArray(Tensor src) => ToArray<float>(src);

    /// <summary>Device-to-device copy between tensors of equal shape and type.</summary>
    public void Copy(Tensor src, Tensor dst)
    {
        RequireOwn(src, dst);
        if (src.ElementCount != dst.ElementCount || src.DType != dst.DType)
            throw new ShapeMismatchException($"Copy from {src} to {dst}: element counts or types differ.");
        CopyCore(src, dst);
    }

    /// <summary>Sets every element of a float32 tensor to <paramref name="value"/>.</summary>
    public void Fill(Tensor dst, float value)
    {
        RequireOwn(dst);
        dst.RequireDType(DType.Float32);
        FillCore(dst, value);
    }

    /// <summary>Waits until every op issued so far has finished.</summary>
    public abstract void Synchronize();

    // ---- convolution ------------------------------------------------------------------------------

    /// <summary>Workspace bytes the three convolution ops need for this geometry.</summary>
    public long ConvolutionWorkspaceBytes(in ConvolutionGeometry g)
    {
        g.Validate();
        return ConvolutionWorkspaceBytesCore(g);
    }

    /// <summary>Grows the shared scratch memory to at least this size (done while planning).</summary>
    public abstract void ReserveWorkspace(long sizeInBytes);

    /// <summary>y = conv(x, w) + bias. x [N,C,H,W], w [K,C,R,S], bias [K] or null, y [N,K,P,Q].</summary>
    public void ConvolutionForward(in ConvolutionGeometry g, Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        g.Validate();
        RequireOwn(x, w, y);
        x.RequireShape(g.InputShape);
        w.RequireShape(g.WeightShape);
        y.RequireShape(g.OutputShape);
        if (bias is not null) { RequireOwn(bias); RequireLength(bias, g.K, "convolution bias"); }
        ConvolutionForwardCore(g, x, w, bias, y);
    }

    /// <summary>dx = dL/dx given dy [N,K,P,Q] and w.</summary>
    public void ConvolutionBackwardData(in ConvolutionGeometry g, Tensor dy, Tensor w, Tensor dx)
    {
        g.Validate();
        RequireOwn(dy, w, dx);
        dy.RequireShape(g.OutputShape);
        w.RequireShape(g.WeightShape);
        dx.RequireShape(g.InputShape);
        ConvolutionBackwardDataCore(g, dy, w, dx);
    }

    /// <summary>dw = dL/dw and dbias = sum of dy over N, P, Q (when dbias is given).</summary>
    public void ConvolutionBackwardFilter(in ConvolutionGeometry g, Tensor x, Tensor dy, Tensor dw, Tensor? dbias)
    {
        g.Validate();
        RequireOwn(x, dy, dw);
        x.RequireShape(g.InputShape);
        dy.RequireShape(g.OutputShape);
        dw.RequireShape(g.WeightShape);
        if (dbias is not null) { RequireOwn(dbias); RequireLength(dbias, g.K, "convolution bias gradient"); }
        ConvolutionBackwardFilterCore(g, x, dy, dw, dbias);
    }

    // ---- batch normalisation (per channel over N, H, W; PyTorch semantics) -------------------------

    /// <summary>
    /// Training mode: normalise with the batch mean and biased variance; update the running statistics
    /// with <c>running = (1 - momentum) * running + momentum * batch</c>, using the unbiased variance for
    /// <c>runningVar</c>; save mean and 1/sqrt(var + eps) for the backward pass.
    /// </summary>
    public void BatchNormTrainingForward(Tensor x, Tensor gamma, Tensor beta, Tensor y,
        Tensor runningMean, Tensor runningVar, float momentum, float epsilon, Tensor saveMean, Tensor saveInvStd)
    {
        RequireOwn(x, gamma, beta, y, runningMean, runningVar, saveMean, saveInvStd);
        int c = RequireBatchNorm(x, y, gamma, beta, runningMean, runningVar, saveMean, saveInvStd);
        if (x.Shape.ElementCount / c < 2)
            throw new ArgumentException($"Batch normalisation in training needs more than one value per channel, got {x.Shape}.");
        BatchNormTrainingForwardCore(x, gamma, beta, y, runningMean, runningVar, momentum, epsilon, saveMean, saveInvStd);
    }

    /// <summary>Evaluation mode: y = gamma * (x - runningMean) / sqrt(runningVar + eps) + beta.</summary>
    public void BatchNormInferenceForward(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        float epsilon, Tensor y)
    {
        RequireOwn(x, gamma, beta, y, runningMean, runningVar);
        RequireBatchNorm(x, y, gamma, beta, runningMean, runningVar);
        BatchNormInferenceForwardCore(x, gamma, beta, runningMean, runningVar, epsilon, y);
    }

    /// <summary>Backward of the training-mode forward: dx, dgamma, dbeta.</summary>
    public void BatchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
        Tensor dx, Tensor dgamma, Tensor dbeta)
    {
        RequireOwn(x, dy, gamma, saveMean, saveInvStd, dx, dgamma, dbeta);
        RequireBatchNorm(x, dy, gamma, saveMean, saveInvStd, dgamma, dbeta);
        dx.RequireShape(x.Shape);
        BatchNormBackwardCore(x, dy, gamma, saveMean, saveInvStd, dx, dgamma, dbeta);
    }

    // ---- elementwise ------------------------------------------------------------------------------

    /// <summary>y = max(x, 0). x and y may be the same tensor.</summary>
    public void ReluForward(Tensor x, Tensor y)
    {
        RequireOwn(x, y);
        RequireSameShape(x, y);
        ReluForwardCore(x, y);
    }

    /// <summary>dx = dy where y &gt; 0, else 0 (y is the forward output).</summary>
    public void ReluBackward(Tensor y, Tensor dy, Tensor dx)
    {
        RequireOwn(y, dy, dx);
        RequireSameShape(y, dy);
        RequireSameShape(y, dx);
        ReluBackwardCore(y, dy, dx);
    }

    /// <summary>
    /// Inverted dropout: mask_i = 1/(1-p) when uniform_i &gt;= p else 0, y = x * mask. uniform_i is the
    /// Philox4x32-10 stream of <paramref name="seed"/> at counter <c>offset + i</c>, identical on every
    /// backend, so masks match exactly across devices.
    /// </summary>
    public void DropoutForward(Tensor x, Tensor y, Tensor mask, float p, ulong seed, ulong offset)
    {
        RequireOwn(x, y, mask);
        RequireSameShape(x, y);
        RequireSameShape(x, mask);
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1).");
        DropoutForwardCore(x, y, mask, p, seed, offset);
    }

    /// <summary>dx = dy * a (elementwise); the dropout backward with a = mask.</summary>
    public void Multiply(Tensor dy, Tensor a, Tensor dx)
    {
        RequireOwn(dy, a, dx);
        RequireSameShape(dy, a);
        RequireSameShape(dy, dx);
        MultiplyCore(dy, a, dx);
    }

    // ---- pooling ----------------------------------------------------------------------------------

    /// <summary>Max pooling forward: <paramref name="y"/> [N, C, P, Q] gets the maximum of each window of <paramref name="x"/> [N, C, H, W] (NaN wins).</summary>
    public void MaxPoolForward(in PoolGeometry g, Tensor x, Tensor y)
    {
        g.Validate();
        RequireOwn(x, y);
        x.RequireShape(g.InputShape);
        y.RequireShape(g.OutputShape);
        MaxPoolForwardCore(g, x, y);
    }

    /// <summary>
    /// Routes each output gradient to the first position (row-major within the window) that holds the
    /// window's maximum, as PyTorch does; x and y are the forward input and output.
    /// </summary>
    public void MaxPoolBackward(in PoolGeometry g, Tensor x, Tensor y, Tensor dy, Tensor dx)
    {
        g.Validate();
        RequireOwn(x, y, dy, dx);
        x.RequireShape(g.InputShape);
        dx.RequireShape(g.InputShape);
        y.RequireShape(g.OutputShape);
        dy.RequireShape(g.OutputShape);
        MaxPoolBackwardCore(g, x, y, dy, dx);
    }

    // ---- dense ------------------------------------------------------------------------------------

    /// <summary>y [N, out] = x [N, in] * w [out, in]^T + b [out].</summary>
    public void LinearForward(Tensor x, Tensor w, Tensor? b, Tensor y)
    {
        RequireOwn(x, w, y);
        var (n, fin, fout) = RequireLinear(x, w, y);
        if (b is not null) { RequireOwn(b); RequireLength(b, fout, "linear bias"); }
        LinearForwardCore(x, w, b, y, n, fin, fout);
    }

    /// <summary>dx = dy * w (when dx is given), dw = dy^T * x, db = column sums of dy (when db is given).</summary>
    public void LinearBackward(Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db)
    {
        RequireOwn(x, w, dy, dw);
        var (n, fin, fout) = RequireLinear(x, w, dy);
        dw.RequireShape(w.Shape);
        if (dx is not null) { RequireOwn(dx); dx.RequireShape(x.Shape); }
        if (db is not null) { RequireOwn(db); RequireLength(db, fout, "linear bias gradient"); }
        LinearBackwardCore(x, w, dy, dx, dw, db, n, fin, fout);
    }

    /// <summary>The smallest norm <see cref="NormalizeRows"/> divides by (PyTorch's <c>F.normalize</c> epsilon).</summary>
    public const float RowNormEpsilon = 1e-12f;

    /// <summary>
    /// Row-wise L2 normalisation of [N, F], PyTorch's <c>F.normalize(x, dim=1)</c>: <c>y_i = x_i / max(|x_i|, eps)</c>
    /// with eps = <see cref="RowNormEpsilon"/>; writes each row's norm <c>|x_i|</c> into <paramref name="norms"/> [N]
    /// for <see cref="NormalizeRowsBackward"/>. The cosine classifier's head (docs/method.md, "Long-tail losses").
    /// </summary>
    public void NormalizeRows(Tensor x, Tensor y, Tensor norms)
    {
        RequireOwn(x, y, norms);
        x.Shape.RequireRank(2);
        RequireSameShape(x, y);
        RequireLength(norms, x.Shape[0], "row norms");
        NormalizeRowsCore(x, y, norms);
    }

    /// <summary>
    /// The gradient of <see cref="NormalizeRows"/> from its output <paramref name="y"/> and the saved norms:
    /// <c>dx_i = (dy_i - y_i (y_i . dy_i)) / |x_i|</c>, or <c>dy_i / eps</c> where the norm was below eps.
    /// </summary>
    public void NormalizeRowsBackward(Tensor y, Tensor norms, Tensor dy, Tensor dx)
    {
        RequireOwn(y, norms, dy, dx);
        y.Shape.RequireRank(2);
        RequireSameShape(y, dy);
        RequireSameShape(y, dx);
        RequireLength(norms, y.Shape[0], "row norms");
        NormalizeRowsBackwardCore(y, norms, dy, dx);
    }

    /// <summary>Row-wise softmax of [N, K] logits (numerically stable).</summary>
    public void Softmax(Tensor logits, Tensor probabilities)
    {
        RequireOwn(logits, probabilities);
        logits.Shape.RequireRank(2);
        RequireSameShape(logits, probabilities);
        SoftmaxCore(logits, probabilities);
    }

    /// <summary>
    /// Softmax cross-entropy over [N, K] logits with int32 labels [N]. With class weights [K] it is
    /// PyTorch's weighted mean: <c>sum_i w[y_i] * -log p_i[y_i] / sum_i w[y_i]</c>. Writes the loss into the
    /// one-element tensor <paramref name="loss"/> (no host sync) and, when given, its gradient with respect
    /// to the logits into <paramref name="dlogits"/>. A label outside [0, K) is an error.
    /// </summary>
    public void SoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor? classWeights, Tensor loss, Tensor? dlogits)
    {
        RequireCrossEntropy(logits, labels, classWeights, loss, dlogits);
        SoftmaxCrossEntropyCore(logits, labels, classWeights, loss, dlogits);
    }

    /// <summary>The checks both cross-entropies make: [N, K] logits, N int32 labels, a one-element loss, class weights [K] and dlogits like the logits.</summary>
    private void RequireCrossEntropy(Tensor logits, Tensor labels, Tensor? classWeights, Tensor loss, Tensor? dlogits)
    {
        RequireOwn(logits, labels, loss);
        logits.Shape.RequireRank(2);
        labels.RequireDType(DType.Int32);
        if (labels.ElementCount != logits.Shape[0])
            throw new ShapeMismatchException($"{labels.ElementCount} labels for {logits.Shape} logits.");
        RequireLength(loss, 1, "loss");
        if (classWeights is not null) { RequireOwn(classWeights); RequireLength(classWeights, logits.Shape[1], "class weights"); }
        if (dlogits is not null) { RequireOwn(dlogits); RequireSameShape(logits, dlogits); }
    }

    /// <summary>
    /// The long-tail losses' softmax cross-entropy (docs/method.md, "Long-tail losses") over [N, K] logits with int32
    /// labels [N]. Row i is first adjusted, <c>z'_ij = s * (z_ij + b_j - [j == y_i] * m_{y_i})</c> (per-class offsets b
    /// [K] or null: logit adjustment and balanced softmax; per-class margins m [K] or null: LDAM; scale s), then the
    /// per-row loss is the focal loss <c>l_i = -(1 - p_i)^gamma * log p_i</c>, <c>p_i = softmax(z'_i)[y_i]</c>
    /// (gamma = 0: cross-entropy), and the loss is the weighted mean <c>sum_i w[y_i] l_i / sum_i w[y_i]</c> (class
    /// weights [K] or null for ones). With no offsets, margins or weights, s = 1 and gamma = 0 it is
    /// <see cref="SoftmaxCrossEntropy"/>. Writes the loss into the one-element <paramref name="loss"/> and, when
    /// given, its gradient with respect to the unadjusted logits into <paramref name="dlogits"/>. A label outside
    /// [0, K) is an error.
    /// </summary>
    public void AdjustedSoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor? classWeights, Tensor? classOffsets, Tensor? labelMargins,
        float scale, float focalGamma, Tensor loss, Tensor? dlogits)
    {
        RequireCrossEntropy(logits, labels, classWeights, loss, dlogits);
        if (classOffsets is not null) { RequireOwn(classOffsets); RequireLength(classOffsets, logits.Shape[1], "class offsets"); }
        if (labelMargins is not null) { RequireOwn(labelMargins); RequireLength(labelMargins, logits.Shape[1], "label margins"); }
        if (!(scale > 0) || float.IsInfinity(scale)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "The logit scale must be positive and finite.");
        if (!(focalGamma >= 0) || float.IsInfinity(focalGamma))
            throw new ArgumentOutOfRangeException(nameof(focalGamma), focalGamma, "The focal gamma must be non-negative and finite.");
        AdjustedSoftmaxCrossEntropyCore(logits, labels, classWeights, classOffsets, labelMargins, scale, focalGamma, loss, dlogits);
    }

    // ---- optimiser --------------------------------------------------------------------------------

    /// <summary>
    /// SGD with momentum and weight decay over flat parameter, gradient and momentum buffers, PyTorch
    /// semantics (dampening 0): <c>g += wd * w; v = mu * v + g; w -= lr * (nesterov ? g + mu * v : v)</c>.
    /// </summary>
    public void SgdStep(Tensor weights, Tensor grads, Tensor momentum, float learningRate, float momentumFactor,
        float weightDecay, bool nesterov)
    {
        RequireOwn(weights, grads, momentum);
        RequireSameShape(weights, grads);
        RequireSameShape(weights, momentum);
        SgdStepCore(weights, grads, momentum, learningRate, momentumFactor, weightDecay, nesterov);
    }

    // ---- data -------------------------------------------------------------------------------------

    /// <summary>
    /// Turns uint8 images [count, H, W] (a dataset resident on the backend) into a float batch:
    /// <see cref="CropMode.Random"/> crops image <c>indices[j]</c> at the Philox draw of sample
    /// <c>firstSample + j</c> under <paramref name="seed"/> and maybe mirrors it (output [n, 1, crop, crop]);
    /// <see cref="CropMode.Center"/> takes the centre crop ([n, 1, crop, crop]); <see cref="CropMode.TenCrop"/>
    /// the four corners, the centre and their mirrors ([n * 10, 1, crop, crop], image-major). Pixels / 255.
    /// The draws and geometry are <see cref="Data.Augmentation"/>'s, on every backend.
    /// </summary>
    public void CropImages(Tensor images, Tensor indices, Tensor output, CropMode mode, int crop, ulong seed = 0, ulong firstSample = 0)
    {
        RequireOwn(images, indices, output);
        images.RequireDType(DType.UInt8);
        indices.RequireDType(DType.Int32);
        output.RequireDType(DType.Float32);
        images.Shape.RequireRank(3);
        int n = checked((int)indices.ElementCount), views = mode == CropMode.TenCrop ? 10 : 1;
        if (crop < 1 || crop > images.Shape[1] || crop > images.Shape[2])
            throw new ArgumentOutOfRangeException(nameof(crop), crop, $"A {crop} crop does not fit {images.Shape[1]}x{images.Shape[2]} images.");
        output.RequireShape(new Shape(n * views, 1, crop, crop));
        CropImagesCore(images, indices, output, mode, crop, seed, firstSample);
    }

    /// <summary>output[j] = values[indices[j]] for int32 tensors (labels of a batch). An index out of range is an error.</summary>
    public void Gather(Tensor values, Tensor indices, Tensor output)
    {
        RequireOwn(values, indices, output);
        values.RequireDType(DType.Int32);
        indices.RequireDType(DType.Int32);
        output.RequireDType(DType.Int32);
        if (output.ElementCount != indices.ElementCount)
            throw new ShapeMismatchException($"Gather: {indices.ElementCount} indices into {output.ElementCount} outputs.");
        GatherCore(values, indices, output);
    }

    // ---- what backends implement -----------------------------------------------------------------

    /// <summary>The backend's batch cropping (arguments already checked by <see cref="CropImages"/>).</summary>
    protected abstract void CropImagesCore(Tensor images, Tensor indices, Tensor output, CropMode mode, int crop, ulong seed, ulong firstSample);
    /// <summary>The backend's gather (arguments already checked by <see cref="Gather"/>).</summary>
    protected abstract void GatherCore(Tensor values, Tensor indices, Tensor output);

    /// <summary>The backend's host-to-device copy of raw bytes (arguments already checked).</summary>
    protected abstract void CopyInCore(Tensor dst, ReadOnlySpan<byte> src);
    /// <summary>The backend's device-to-host copy of raw bytes (arguments already checked); returns when the bytes are on the host.</summary>
    protected abstract void CopyOutCore(Tensor src, Span<byte> dst);
    /// <summary>The backend's device-to-device copy (arguments already checked).</summary>
    protected abstract void CopyCore(Tensor src, Tensor dst);
    /// <summary>The backend's fill (arguments already checked).</summary>
    protected abstract void FillCore(Tensor dst, float value);
    /// <summary>Workspace bytes the backend's convolution passes need for this geometry.</summary>
    protected abstract long ConvolutionWorkspaceBytesCore(in ConvolutionGeometry g);
    /// <summary>The backend's convolution forward pass (arguments already checked).</summary>
    protected abstract void ConvolutionForwardCore(in ConvolutionGeometry g, Tensor x, Tensor w, Tensor? bias, Tensor y);
    /// <summary>The backend's convolution input gradient (arguments already checked).</summary>
    protected abstract void ConvolutionBackwardDataCore(in ConvolutionGeometry g, Tensor dy, Tensor w, Tensor dx);
    /// <summary>The backend's convolution weight (and bias) gradient (arguments already checked).</summary>
    protected abstract void ConvolutionBackwardFilterCore(in ConvolutionGeometry g, Tensor x, Tensor dy, Tensor dw, Tensor? dbias);
    /// <summary>The backend's batch normalisation in training mode (arguments already checked).</summary>
    protected abstract void BatchNormTrainingForwardCore(Tensor x, Tensor gamma, Tensor beta, Tensor y,
        Tensor runningMean, Tensor runningVar, float momentum, float epsilon, Tensor saveMean, Tensor saveInvStd);
    /// <summary>The backend's batch normalisation with running statistics (arguments already checked).</summary>
    protected abstract void BatchNormInferenceForwardCore(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean,
        Tensor runningVar, float epsilon, Tensor y);
    /// <summary>The backend's batch normalisation backward pass (arguments already checked).</summary>
    protected abstract void BatchNormBackwardCore(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
        Tensor dx, Tensor dgamma, Tensor dbeta);
    /// <summary>The backend's ReLU forward pass (arguments already checked).</summary>
    protected abstract void ReluForwardCore(Tensor x, Tensor y);
    /// <summary>The backend's ReLU backward pass (arguments already checked).</summary>
    protected abstract void ReluBackwardCore(Tensor y, Tensor dy, Tensor dx);
    /// <summary>The backend's dropout forward pass (arguments already checked).</summary>
    protected abstract void DropoutForwardCore(Tensor x, Tensor y, Tensor mask, float p, ulong seed, ulong offset);
    /// <summary>The backend's elementwise product (arguments already checked).</summary>
    protected abstract void MultiplyCore(Tensor a, Tensor b, Tensor result);
    /// <summary>The backend's max pooling forward pass (arguments already checked).</summary>
    protected abstract void MaxPoolForwardCore(in PoolGeometry g, Tensor x, Tensor y);
    /// <summary>The backend's max pooling backward pass (arguments already checked).</summary>
    protected abstract void MaxPoolBackwardCore(in PoolGeometry g, Tensor x, Tensor y, Tensor dy, Tensor dx);
    /// <summary>The backend's linear forward pass (arguments already checked).</summary>
    protected abstract void LinearForwardCore(Tensor x, Tensor w, Tensor? b, Tensor y, int n, int fin, int fout);
    /// <summary>The backend's linear backward pass (arguments already checked).</summary>
    protected abstract void LinearBackwardCore(Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db, int n, int fin, int fout);
    /// <summary>The backend's row L2 normalisation (arguments already checked by <see cref="NormalizeRows"/>).</summary>
    protected abstract void NormalizeRowsCore(Tensor x, Tensor y, Tensor norms);
    /// <summary>The backend's row L2 normalisation gradient (arguments already checked by <see cref="NormalizeRowsBackward"/>).</summary>
    protected abstract void NormalizeRowsBackwardCore(Tensor y, Tensor norms, Tensor dy, Tensor dx);
    /// <summary>The backend's row softmax (arguments already checked).</summary>
    protected abstract void SoftmaxCore(Tensor logits, Tensor probabilities);
    /// <summary>The backend's softmax cross-entropy (arguments already checked).</summary>
    protected abstract void SoftmaxCrossEntropyCore(Tensor logits, Tensor labels, Tensor? classWeights, Tensor loss, Tensor? dlogits);
    /// <summary>The backend's adjusted (long-tail) softmax cross-entropy (arguments already checked by <see cref="AdjustedSoftmaxCrossEntropy"/>).</summary>
    protected abstract void AdjustedSoftmaxCrossEntropyCore(Tensor logits, Tensor labels, Tensor? classWeights, Tensor? classOffsets,
        Tensor? labelMargins, float scale, float focalGamma, Tensor loss, Tensor? dlogits);
    /// <summary>The backend's SGD step over a parameter arena (arguments already checked).</summary>
    protected abstract void SgdStepCore(Tensor weights, Tensor grads, Tensor momentum, float learningRate,
        float momentumFactor, float weightDecay, bool nesterov);

    /// <summary>Frees the backend's resources; tensors it allocated must not be used afterwards.</summary>
    public virtual void Dispose() => GC.SuppressFinalize(this);

    // ---- checks -----------------------------------------------------------------------------------

    /// <summary>Throws unless every tensor belongs to this backend and its storage has not been disposed.</summary>
    protected void RequireOwn(params ReadOnlySpan<Tensor> tensors)
    {
        foreach (var t in tensors)
        {
            if (!ReferenceEquals(t.Storage.Backend, this))
                throw new ArgumentException($"Tensor {t} belongs to backend '{t.Backend.Name}', not '{Name}'.");
            if (t.Storage.IsDisposed)
                throw new ObjectDisposedException($"Tensor {t.Shape}", "The tensor's storage has been disposed.");
        }
    }

    private static void RequireSameShape(Tensor a, Tensor b)
    {
        if (a.Shape != b.Shape) throw new ShapeMismatchException($"Shapes differ: {a.Shape} and {b.Shape}.");
        if (a.DType != DType.Float32 || b.DType != DType.Float32)
            throw new ArgumentException($"Expected float32 tensors, got {a.DType} and {b.DType}.");
    }

    private static void RequireLength(Tensor t, long length, string what)
    {
        if (t.ElementCount != length)
            throw new ShapeMismatchException($"The {what} has {t.ElementCount} elements ({t.Shape}); expected {length}.");
    }

    private static int RequireBatchNorm(Tensor x, Tensor y, params ReadOnlySpan<Tensor> perChannel)
    {
        if (x.Shape.Rank != 4 && x.Shape.Rank != 2)
            throw new ShapeMismatchException($"Batch normalisation expects [N,C,H,W] or [N,C], got {x.Shape}.");
        y.RequireShape(x.Shape);
        int c = x.Shape[1];
        foreach (var t in perChannel) RequireLength(t, c, "per-channel batch-norm tensor");
        return c;
    }

    private static (int n, int fin, int fout) RequireLinear(Tensor x, Tensor w, Tensor y)
    {
        x.Shape.RequireRank(2);
        w.Shape.RequireRank(2);
        y.Shape.RequireRank(2);
        int n = x.Shape[0], fin = x.Shape[1], fout = w.Shape[0];
        if (w.Shape[1] != fin || y.Shape[0] != n || y.Shape[1] != fout)
            throw new ShapeMismatchException($"Linear: x {x.Shape}, w {w.Shape}, y {y.Shape} do not fit (w is [out, in]).");
        return (n, fin, fout);
    }
}
