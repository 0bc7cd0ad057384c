// Batches cut from a dataset resident on the GPU (CpuBackend.Data.cs and Data/Augmentation.cs are the reference):
// crops of uint8 images into float batches, and gathering the batch's labels. Bad indices are recorded in the
// device status record (common.cuh) and never read out of bounds.
#include "common.cuh"

// The first position j of indices [n] (int32) outside [0, bound), over one block; DICC_INT_MAX when none.
// blockDim.x a multiple of 32; scratch holds 32 ints in shared memory.
__device__ int dicc_first_bad_index(const int* indices, int n, int bound, int* scratch)
{
    int first = DICC_INT_MAX;
    for (int j = threadIdx.x; j < n; j += blockDim.x)
        if ((unsigned)indices[j] >= (unsigned)bound) { first = j; break; } // strides ascend: the thread's first is its smallest
    return dicc_block_min_i32(first, scratch);
}

// Records the first index of indices [n] outside [0, bound) in status as (kind, j, indices[j], bound).
// Launch with one block (blockDim.x a multiple of 32).
DICC_KERNEL void check_indices_i32(const int* indices, int n, int bound, int kind, DiccStatus* status)
{
    __shared__ int scratch[32];
    const int first = dicc_first_bad_index(indices, n, bound, scratch);
    if (threadIdx.x == 0 && first != DICC_INT_MAX) dicc_report(status, kind, first, indices[first], bound, 0);
}

// output [n] = values[indices[j]] for values [count] (int32); an index outside [0, count) leaves its output
// unwritten and is recorded as DICC_STATUS_GATHER_INDEX. One block (blockDim.x a multiple of 32).
DICC_KERNEL void gather_i32(const int* values, int count, const int* indices, int* output, int n, DiccStatus* status)
{
    __shared__ int scratch[32];
    for (int j = threadIdx.x; j < n; j += blockDim.x)
    {
        const int i = indices[j];
        if ((unsigned)i < (unsigned)count) output[j] = values[i];
    }
    const int first = dicc_first_bad_index(indices, n, count, scratch);
    if (threadIdx.x == 0 && first != DICC_INT_MAX) dicc_report(status, DICC_STATUS_GATHER_INDEX, first, indices[first], count, 0);
}

// The crop arguments (Kernels/TrainingKernels.cs mirrors this layout). 48 bytes.
struct DiccCropShape
{
    unsigned long long seed;         // the run seed (random crops)
    unsigned long long first_sample; // the sample counter of batch position 0 (random crops)
    unsigned long long stream;       // Augmentation.CropStream
    int count, height, width;        // the dataset: images [count, height, width]
    int n;                           // batch size (indices [n])
    int mode;                        // 0 random, 1 centre, 2 ten-crop (CropMode)
    int crop;                        // side of the square crop
};

// output [n * views, 1, crop, crop] = images[indices[j]] cropped and maybe mirrored, pixels / 255 (views = 10 for
// the ten-crop, else 1). Random: the Philox block (seed, stream, first_sample + j) = (w0, w1, w2, w3) gives
// top = (w0 * (height - crop + 1)) >> 32, left = likewise from w1, flip = w2 >> 31 (Augmentation.DrawCrop).
// Centre: offsets center_top, center_left. Ten-crop view v < 5: corner v (top-left, top-right, bottom-left,
// bottom-right, centre), view 5 + k: the mirror of the crop at (top_k, width - crop - left_k). An index out of
// range gives zeros (check_indices_i32 reports it). One block per view; blockDim.x any multiple of 32.
DICC_KERNEL void crop_images_u8(const unsigned char* images, const int* indices, float* output, DiccCropShape s,
                                int center_top, int center_left)
{
    const int views = s.mode == 2 ? 10 : 1;
    const int view = blockIdx.x, j = view / views, v = view - j * views;
    if (j >= s.n) return;
    int top, left;
    bool flip;
    if (s.mode == 0)
    {
        const uint4 r = dicc_philox4x32_10(s.seed, s.stream, s.first_sample + (u64)j);
        top = (int)(((u64)r.x * (u64)(s.height - s.crop + 1)) >> 32);
        left = (int)(((u64)r.y * (u64)(s.width - s.crop + 1)) >> 32);
        flip = (r.z >> 31) != 0;
    }
    else if (s.mode == 1)
    {
        top = center_top;
        left = center_left;
        flip = false;
    }
    else
    {
        const int k = v < 5 ? v : v - 5;
        top = k == 0 || k == 1 ? 0 : k == 4 ? center_top : s.height - s.crop;
        left = k == 0 || k == 2 ? 0 : k == 4 ? center_left : s.width - s.crop;
        flip = v >= 5;
        if (flip) left = s.width - s.crop - left;
    }
    const int index = indices[j];
    const bool valid = (unsigned)index < (unsigned)s.count;
    const unsigned char* image = images + (i64)(valid ? index : 0) * s.height * s.width;
    float* out = output + (i64)view * s.crop * s.crop;
    const int pixels = s.crop * s.crop;
    for (int p = threadIdx.x; p < pixels; p += blockDim.x)
    {
        const int y = p / s.crop, x = p - y * s.crop;
        const int column = left + (flip ? s.crop - 1 - x : x);
        out[p] = valid ? __fdiv_rn((float)image[(top + y) * s.width + column], 255.0f) : 0.0f;
    }
}
