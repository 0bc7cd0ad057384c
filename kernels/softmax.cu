// Row softmax and the softmax cross-entropy loss with class weights (PyTorch's weighted mean).
// Launch the row kernels with one block per row and blockDim.x a multiple of 32 (128 is a good default).
#include "common.cuh"

// logits, probabilities [rows, k]: p = exp(z - max) / sum exp(z - max) per row. May run in place.
DICC_KERNEL void softmax_rows_f32(const float* logits, float* probabilities, int rows, int k)
{
    __shared__ float scratch[32];
    const int row = blockIdx.x;
    if (row >= rows) return;
    const float* z = logits + (i64)row * k;
    float* p = probabilities + (i64)row * k;
    float m = DICC_NEG_INF;
    for (int j = threadIdx.x; j < k; j += blockDim.x) m = fmaxf(m, z[j]);
    m = dicc_block_max(m, scratch);
    float s = 0.0f;
    for (int j = threadIdx.x; j < k; j += blockDim.x) s += expf(z[j] - m);
    s = dicc_block_sum(s, scratch);
    const float inv = 1.0f / s;
    for (int j = threadIdx.x; j < k; j += blockDim.x) p[j] = expf(z[j] - m) * inv;
}

// Step 1 of 3 of the cross-entropy. logits [rows, k], labels [rows] (int32), class_weights [k] or null.
// Per row i with label y_i and weight w_i = class_weights[y_i] (1 without weights):
//   row_lse[i] = log sum_j exp(z_ij),  row_loss[i] = w_i * (row_lse[i] - z_i,y_i),  row_weight[i] = w_i.
// A label outside [0, k) makes that row's loss NaN and records the first such row in status[0] as
// rows - row (status[0] must be 0 before the launch; 0 afterwards means every label was valid).
DICC_KERNEL void softmax_cross_entropy_rows_f32(const float* logits, const int* labels, const float* class_weights,
                                                float* row_loss, float* row_weight, float* row_lse, int* status,
                                                int rows, int k)
{
    __shared__ float scratch[32];
    const int row = blockIdx.x;
    if (row >= rows) return;
    const float* z = logits + (i64)row * k;
    float m = DICC_NEG_INF;
    for (int j = threadIdx.x; j < k; j += blockDim.x) m = fmaxf(m, z[j]);
    m = dicc_block_max(m, scratch);
    float s = 0.0f;
    for (int j = threadIdx.x; j < k; j += blockDim.x) s += expf(z[j] - m);
    s = dicc_block_sum(s, scratch);
    if (threadIdx.x != 0) return;
    const float lse = m + logf(s);
    const int label = labels[row];
    row_lse[row] = lse;
    if (label < 0 || label >= k)
    {
        atomicMax(status, rows - row);
        row_loss[row] = DICC_NAN;
        row_weight[row] = 0.0f;
        return;
    }
    const float w = class_weights ? class_weights[label] : 1.0f;
    row_loss[row] = w * (lse - z[label]);
    row_weight[row] = w;
}

// Step 2 of 3: one block. loss[0] = sum row_loss / sum row_weight, inv_weight_sum[0] = 1 / sum row_weight
// (sums in double, in a fixed order). row_loss, row_weight [rows]. When record is not null and step 1 found
// a label outside [0, k) (status[0] = rows - first bad row), the failure goes into record as
// (DICC_STATUS_CROSS_ENTROPY_LABEL, row, labels[row], k). labels [rows], status [1].
DICC_KERNEL void softmax_cross_entropy_loss_f32(const float* row_loss, const float* row_weight, float* loss,
                                                float* inv_weight_sum, int rows, const int* labels,
                                                const int* status, DiccStatus* record, int k)
{
    __shared__ double scratch[32];
    double total = 0.0, weights = 0.0;
    for (int i = threadIdx.x; i < rows; i += blockDim.x)
    {
        total += (double)row_loss[i];
        weights += (double)row_weight[i];
    }
    total = dicc_block_sum(total, scratch);
    weights = dicc_block_sum(weights, scratch);
    if (threadIdx.x == 0)
    {
        loss[0] = (float)(total / weights);
        inv_weight_sum[0] = (float)(1.0 / weights);
        if (record != 0 && status[0] > 0)
        {
            const int row = rows - status[0];
            dicc_report(record, DICC_STATUS_CROSS_ENTROPY_LABEL, row, labels[row], k, 0);
        }
    }
}

// Step 3 of 3: dlogits [rows, k] = w_i / sum_w * (softmax(z_i)_j - [j == y_i]), the gradient of the loss
// of step 2. row_lse [rows] and inv_weight_sum [1] come from steps 1 and 2. Rows with invalid labels get NaN.
DICC_KERNEL void softmax_cross_entropy_grad_f32(const float* logits, const int* labels, const float* class_weights,
                                                const float* row_lse, const float* inv_weight_sum, float* dlogits,
                                                int rows, int k)
{
    const float inv = inv_weight_sum[0];
    DICC_GRID_STRIDE(idx, (i64)rows * k)
    {
        const int row = (int)(idx / k), j = (int)(idx - (i64)row * k);
        const int label = labels[row];
        if (label < 0 || label >= k)
        {
            dlogits[idx] = DICC_NAN;
            continue;
        }
        const float w = class_weights ? class_weights[label] : 1.0f;
        const float p = expf(logits[idx] - row_lse[row]);
        dlogits[idx] = w * inv * (p - (j == label ? 1.0f : 0.0f));
    }
}

// The long-tail losses (docs/method.md, "Long-tail losses"): row i's logits are adjusted,
//   z'_ij = scale * (z_ij + offsets[j] - [j == y_i] * margins[y_i])     (offsets, margins [k] or null),
// and the row loss is the focal loss l_i = -(1 - p_i)^gamma * log p_i with p_i = softmax(z'_i)[y_i].
// Step 1 of 3 (one block per row): row_lse[i] = log sum_j exp(z'_ij), row_loss[i] = w_i * l_i, row_weight[i] = w_i,
// row_coef[i] = scale * w_i * g_i with g_i = (1 - p)^gamma - gamma (1 - p)^(gamma - 1) p log p (1 when gamma = 0),
// the factor of the gradient. 1 - p is summed over the other classes (no cancellation when p is near 1).
// Labels outside [0, k) as in softmax_cross_entropy_rows_f32. Step 2 is softmax_cross_entropy_loss_f32.
DICC_KERNEL void adjusted_cross_entropy_rows_f32(const float* logits, const int* labels, const float* class_weights,
                                                 const float* offsets, const float* margins, float scale, float gamma,
                                                 float* row_loss, float* row_weight, float* row_lse, float* row_coef,
                                                 int* status, int rows, int k)
{
    __shared__ float scratch[32];
    const int row = blockIdx.x;
    if (row >= rows) return;
    const float* z = logits + (i64)row * k;
    const int label = labels[row];
    const bool valid = label >= 0 && label < k;
    const float margin = valid && margins ? margins[label] : 0.0f;
    float m = DICC_NEG_INF;
    for (int j = threadIdx.x; j < k; j += blockDim.x)
        m = fmaxf(m, scale * (z[j] + (offsets ? offsets[j] : 0.0f) - (j == label ? margin : 0.0f)));
    m = dicc_block_max(m, scratch);
    float s = 0.0f, others = 0.0f;
    for (int j = threadIdx.x; j < k; j += blockDim.x)
    {
        const float e = expf(scale * (z[j] + (offsets ? offsets[j] : 0.0f) - (j == label ? margin : 0.0f)) - m);
        s += e;
        if (j != label) others += e;
    }
    s = dicc_block_sum(s, scratch);
    others = dicc_block_sum(others, scratch);
    if (threadIdx.x != 0) return;
    const float lse = m + logf(s);
    row_lse[row] = lse;
    if (!valid)
    {
        atomicMax(status, rows - row);
        row_loss[row] = DICC_NAN;
        row_weight[row] = 0.0f;
        row_coef[row] = DICC_NAN;
        return;
    }
    const float w = class_weights ? class_weights[label] : 1.0f;
    const float log_p = scale * (z[label] + (offsets ? offsets[label] : 0.0f) - margin) - lse;
    const float p = expf(log_p), q = others / s;
    const float focal = gamma == 0.0f ? 1.0f : powf(q, gamma);
    const float g = gamma == 0.0f ? 1.0f : q <= 0.0f ? 0.0f : focal - gamma * powf(q, gamma - 1.0f) * p * log_p;
    row_loss[row] = -w * focal * log_p;
    row_weight[row] = w;
    row_coef[row] = scale * w * g;
}

// Step 3 of 3: dlogits [rows, k] = row_coef[i] * inv_weight_sum * (softmax(z'_i)_j - [j == y_i]), the gradient with
// respect to the unadjusted logits. Rows with invalid labels get NaN.
DICC_KERNEL void adjusted_cross_entropy_grad_f32(const float* logits, const int* labels, const float* offsets,
                                                 const float* margins, float scale, const float* row_lse,
                                                 const float* row_coef, const float* inv_weight_sum, float* dlogits,
                                                 int rows, int k)
{
    const float inv = inv_weight_sum[0];
    DICC_GRID_STRIDE(idx, (i64)rows * k)
    {
        const int row = (int)(idx / k), j = (int)(idx - (i64)row * k);
        const int label = labels[row];
        if (label < 0 || label >= k)
        {
            dlogits[idx] = DICC_NAN;
            continue;
        }
        const float adjusted = scale * (logits[idx] + (offsets ? offsets[j] : 0.0f) - (j == label && margins ? margins[label] : 0.0f));
        const float p = expf(adjusted - row_lse[row]);
        dlogits[idx] = row_coef[row] * inv * (p - (j == label ? 1.0f : 0.0f));
    }
}
