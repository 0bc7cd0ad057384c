namespace Dicc.Engine.Backends;

/// <summary>
/// A 2-D convolution (cross-correlation, as PyTorch's Conv2d): input [N, C, H, W], weights [K, C, R, S],
/// output [N, K, P, Q]. Dilation 1, groups 1.
/// </summary>
public readonly record struct ConvolutionGeometry(
    int N, int C, int H, int W, int K, int R, int S, int StrideH, int StrideW, int PadH, int PadW)
{
    /// <summary>Output height.</summary>
    public int P => (H + 2 * PadH - R) / StrideH + 1;
    /// <summary>Output width.</summary>
    public int Q => (W + 2 * PadW - S) / StrideW + 1;

    /// <summary>The input's shape [N, C, H, W].</summary>
    public Tensors.Shape InputShape => new(N, C, H, W);
    /// <summary>The weights' shape [K, C, R, S].</summary>
    public Tensors.Shape WeightShape => new(K, C, R, S);
    /// <summary>The output's shape [N, K, P, Q].</summary>
    public Tensors.Shape OutputShape => new(N, K, P, Q);

    /// <summary>Multiply-adds of the forward pass (each is 2 FLOPs).</summary>
    public long ForwardMacs => (long)N * K * P * Q * C * R * S;

    /// <summary>Throws an <see cref="ArgumentException"/> for sizes that are not positive or a kernel that does not fit.</summary>
    public void Validate()
    {
        if (N <= 0 || C <= 0 || H <= 0 || W <= 0 || K <= 0 || R <= 0 || S <= 0)
            throw new ArgumentException($"Convolution sizes must be positive: {this}.");
        if (StrideH <= 0 || StrideW <= 0 || PadH < 0 || PadW < 0)
            throw new ArgumentException($"Convolution stride must be positive and padding non-negative: {this}.");
        if (H + 2 * PadH < R || W + 2 * PadW < S)
            throw new ArgumentException($"A {R}x{S} kernel does not fit a padded {H}x{W} input: {this}.");
    }
}

/// <summary>Max pooling over [N, C, H, W] with a window, stride and zero padding (padding never wins).</summary>
public readonly record struct PoolGeometry(int N, int C, int H, int W, int WindowH, int WindowW, int StrideH, int StrideW, int PadH, int PadW)
{
    /// <summary>Output height.</summary>
    public int P => (H + 2 * PadH - WindowH) / StrideH + 1;
    /// <summary>Output width.</summary>
    public int Q => (W + 2 * PadW - WindowW) / StrideW + 1;
    /// <summary>The input's shape [N, C, H, W].</summary>
    public Tensors.Shape InputShape => new(N, C, H, W);
    /// <summary>The output's shape [N, C, P, Q].</summary>
    public Tensors.Shape OutputShape => new(N, C, P, Q);

    /// <summary>Throws an <see cref="ArgumentException"/> for sizes that are not positive, padding over half the window, or a window that does not fit.</summary>
    public void Validate()
    {
        if (N <= 0 || C <= 0 || H <= 0 || W <= 0 || WindowH <= 0 || WindowW <= 0 || StrideH <= 0 || StrideW <= 0)
            throw new ArgumentException($"Pooling sizes must be positive: {this}.");
        if (PadH < 0 || PadW < 0 || 2 * PadH > WindowH || 2 * PadW > WindowW)
            throw new ArgumentException($"Pooling padding must be at most half the window: {this}.");
        if (H + 2 * PadH < WindowH || W + 2 * PadW < WindowW)
            throw new ArgumentException($"A {WindowH}x{WindowW} window does not fit a {H}x{W} input: {this}.");
    }
}

/// <summary>How <see cref="Backend.CropImages"/> cuts a batch out of 48x48 images.</summary>
public enum CropMode
{
    /// <summary>Training: a random crop and a random horizontal flip per sample (counter-based draws).</summary>
    Random,

    /// <summary>Evaluation: the centre crop.</summary>
    Center,

    /// <summary>Evaluation: ten views per image (corners, centre, and their mirrors).</summary>
    TenCrop,
}
