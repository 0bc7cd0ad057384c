// The DICC clustering step on the GPU, equal to Clustering/IntraClassClustering.cs (the reference) bit for bit:
// the arithmetic of docs/method.md "Precision", every double operation written as an IEEE intrinsic so that
// nothing is contracted or reordered:
//   1. class sums in double, samples of a class added in batch order (from 0, one rounded add per sample);
//   2. y = sum / count; centre = first time (float) y, else (float) fma(keep, (double) centre, blend * y);
//   3. d = sqrt of the sum of e * e (e = (double) f - (double) centre) over 32 lanes (lane k takes features
//      k, k + 32, ... with fma), folded by a warp's shuffle-down tree (offsets 16, 8, 4, 2, 1);
//   4. interval: n = min(floor(d / (max_c / Ns)), Ns - 1), 0 when max_c / Ns = 0; rank: the rank of (d bits,
//      batch position) among the class, n = rank * Ns / count in 64-bit integers;
//   5. pseudo-label = offset_c + n.
// Labels are checked first and features' finiteness before any state changes; a failure is recorded in the
// device status record (common.cuh) and the step then changes nothing.
//
// Two paths: cluster_fused_f32 does everything in one block with the batch in shared memory (one launch, for
// batches up to about a thousand); the five cluster_* step kernels do it with many blocks for larger batches.
#include "common.cuh"

// Scalars of a clustering step (Cuda/Clustering/DeviceClustering.cs mirrors this layout). 32 bytes.
struct DiccClusterShape
{
    double keep;   // m, the EMA decay
    double blend;  // 1 - m, computed once in double by the host
    int n;         // batch size
    int classes;   // C
    int dim;       // M, the feature width
    int partition; // 0 interval, 1 rank
};

// The module's state and plan in device memory. 40 bytes.
struct DiccClusterState
{
    float* centers;         // [C, M] EMA centres
    int* seen;              // [C] 1 once a class has a centre
    long long* step;        // [1] batches clustered
    const int* sub_counts;  // [C] Ns per class
    const int* sub_offsets; // [C] first pseudo-label of each class
};

// Scratch of the multi-block path. 64 bytes.
struct DiccClusterWork
{
    double* sums;                   // [C, M] class sums, then the updated centres widened to double
    double* distances;              // [N]
    unsigned long long* class_max;  // [C] bits of each class's largest distance (interval mode)
    int* counts;                    // [C] samples per class
    int* starts;                    // [C] where each class's samples start in order
    int* order;                     // [N] batch positions grouped by class, ascending within a class
    int* non_finite;                // [C] 1 when a class's sums are not all finite
    int* abort;                     // [1] 1 after a failed check: the later steps do nothing
};

#define DICC_FULL_MASK 0xffffffffu

// ---- shared steps ---------------------------------------------------------------------------------------

// Counts the classes of labels [n] into counts [C] (zeroed by the caller) and returns the first position whose
// label is outside [0, C) (DICC_INT_MAX when none). One block; every thread gets the result.
__device__ int dicc_cluster_count(const int* labels, int n, int classes, int* counts, int* scratch)
{
    int first = DICC_INT_MAX;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
    {
        const int c = labels[i];
        if ((unsigned)c >= (unsigned)classes) { if (first == DICC_INT_MAX) first = i; }
        else atomicAdd(&counts[c], 1);
    }
    return dicc_block_min_i32(first, scratch);
}

// starts [C] = exclusive prefix sums of counts; order [n] = the batch positions of each class in ascending
// order (a stable counting sort: each warp takes whole classes and walks the batch 32 positions at a time).
// One block; counts complete before the call; ends with __syncthreads.
__device__ void dicc_cluster_order(const int* labels, int n, int classes, const int* counts, int* starts, int* order)
{
    if (threadIdx.x == 0)
    {
        int start = 0;
        for (int c = 0; c < classes; c++)
        {
            starts[c] = start;
            start += counts[c];
        }
    }
    __syncthreads();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const unsigned below = (1u << lane) - 1u;
    for (int c = warp; c < classes; c += warps)
    {
        int placed = starts[c];
        for (int base = 0; base < n; base += 32)
        {
            const int i = base + lane;
            const bool member = i < n && labels[i] == c;
            const unsigned mask = __ballot_sync(DICC_FULL_MASK, member);
            if (member) order[placed + __popc(mask & below)] = i;
            placed += __popc(mask);
        }
    }
    __syncthreads();
}

// The class sum of feature j over the class's members (order [start, start + count)), in batch order.
__device__ __forceinline__ double dicc_cluster_sum(const float* features, int dim, const int* order, int start, int count, int j)
{
    double sum = 0.0;
    for (int k = start; k < start + count; k++) sum = __dadd_rn(sum, (double)features[(i64)order[k] * dim + j]);
    return sum;
}

// The EMA step of one centre value from its class sum; returns the new centre.
__device__ __forceinline__ float dicc_cluster_ema(double sum, int count, bool seen, float centre, double keep, double blend)
{
    const double y = __ddiv_rn(sum, (double)count);
    return seen ? __double2float_rn(fma(keep, (double)centre, __dmul_rn(blend, y))) : __double2float_rn(y);
}

// The distance of sample i to its class's centre (wide [M], double), computed by one whole warp; the result is
// returned to every lane (lane 0's tree sum, broadcast).
__device__ __forceinline__ double dicc_cluster_distance(const float* features, int dim, int i, const double* wide)
{
    const int lane = threadIdx.x & 31;
    const float* f = features + (i64)i * dim;
    double s = 0.0;
    for (int j = lane; j < dim; j += 32)
    {
        const double e = __dsub_rn((double)f[j], wide[j]);
        s = fma(e, e, s);
    }
    #pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) s = __dadd_rn(s, __shfl_down_sync(DICC_FULL_MASK, s, offset));
    return __dsqrt_rn(__shfl_sync(DICC_FULL_MASK, s, 0));
}

// The sub-interval index of a distance in interval mode, given the bits of its class's largest distance.
__device__ __forceinline__ int dicc_cluster_interval(double d, unsigned long long max_bits, int subclasses)
{
    const double delta = __ddiv_rn(__longlong_as_double((long long)max_bits), (double)subclasses);
    if (delta == 0.0) return 0;
    return (int)fmin(floor(__ddiv_rn(d, delta)), (double)(subclasses - 1));
}

// The rank of sample i among its class's members (order [start, start + count)) by (distance bits, position),
// and its sub-interval index rank * Ns / count.
__device__ __forceinline__ int dicc_cluster_rank(const double* distances, const int* order, int start, int count, int i,
                                                 int subclasses)
{
    const unsigned long long key = (unsigned long long)__double_as_longlong(__dadd_rn(distances[i], 0.0));
    int rank = 0;
    for (int k = start; k < start + count; k++)
    {
        const int other = order[k];
        const unsigned long long other_key = (unsigned long long)__double_as_longlong(__dadd_rn(distances[other], 0.0));
        rank += other_key < key || (other_key == key && other < i);
    }
    return (int)((long long)rank * subclasses / count);
}

// The first non-finite feature of the first class whose sums are not finite, recorded as the reference throws
// it (scanning that class's samples and each sample's features in order). One thread.
__device__ void dicc_cluster_report_non_finite(const float* features, const int* labels, int n, int dim, int c,
                                               DiccStatus* status)
{
    for (int i = 0; i < n; i++)
    {
        if (labels[i] != c) continue;
        for (int j = 0; j < dim; j++)
        {
            const float v = features[(i64)i * dim + j];
            if (v != v || v - v != 0.0f)
            {
                dicc_report(status, DICC_STATUS_CLUSTER_NON_FINITE, i, j, c, __float_as_int(v));
                return;
            }
        }
    }
    dicc_report(status, DICC_STATUS_CLUSTER_NON_FINITE, -1, c, c, 0); // sums overflowed without a non-finite input
}

// ---- one block: the whole step ----------------------------------------------------------------------------

// Bytes of dynamic shared memory cluster_fused_f32 needs: sums [C*M] and distances [n] (double), class maxima
// [C] (u64), counts and starts [C], order [n] and 4 flags (int). DeviceClustering.FusedSharedBytes agrees.
// features [n, M] (float), labels [n] (int32), pseudo [n] (int32). One block, blockDim.x a multiple of 32.
DICC_KERNEL void cluster_fused_f32(const float* features, const int* labels, int* pseudo, DiccClusterShape s,
                                   DiccClusterState st, DiccStatus* status)
{
    extern __shared__ double shared[];
    const int n = s.n, classes = s.classes, dim = s.dim;
    double* sums = shared;                                                         // [C*M]
    double* distances = sums + (i64)classes * dim;                                 // [n]
    unsigned long long* class_max = (unsigned long long*)(distances + n);          // [C]
    int* counts = (int*)(class_max + classes);                                     // [C]
    int* starts = counts + classes;                                                // [C]
    int* order = starts + classes;                                                 // [n]
    int* flags = order + n;                                                        // [4]: scratch of the reductions uses its own array
    __shared__ int scratch[32];

    for (int c = threadIdx.x; c < classes; c += blockDim.x)
    {
        counts[c] = 0;
        class_max[c] = 0ull;
    }
    if (threadIdx.x == 0) flags[0] = DICC_INT_MAX;
    __syncthreads();

    // 1. Labels: count them, or stop at the first one out of range.
    const int bad = dicc_cluster_count(labels, n, classes, counts, scratch);
    if (bad != DICC_INT_MAX)
    {
        if (threadIdx.x == 0) dicc_report(status, DICC_STATUS_CLUSTER_LABEL, bad, labels[bad], classes, 0);
        return;
    }
    dicc_cluster_order(labels, n, classes, counts, starts, order);

    // 2. Class sums in batch order; note the first class whose sums are not finite.
    for (int p = threadIdx.x; p < classes * dim; p += blockDim.x)
    {
        const int c = p / dim, j = p - c * dim;
        if (counts[c] == 0) continue;
        const double sum = dicc_cluster_sum(features, dim, order, starts[c], counts[c], j);
        sums[p] = sum;
        if (sum - sum != 0.0) atomicMin(&flags[0], c);
    }
    __syncthreads();
    if (flags[0] != DICC_INT_MAX)
    {
        if (threadIdx.x == 0) dicc_cluster_report_non_finite(features, labels, n, dim, flags[0], status);
        return;
    }

    // 3. EMA: present classes move their centres; sums become the new centres widened to double.
    for (int p = threadIdx.x; p < classes * dim; p += blockDim.x)
    {
        const int c = p / dim;
        if (counts[c] == 0) continue;
        const float centre = dicc_cluster_ema(sums[p], counts[c], st.seen[c] != 0, st.centers[p], s.keep, s.blend);
        st.centers[p] = centre;
        sums[p] = (double)centre;
    }
    __syncthreads();
    for (int c = threadIdx.x; c < classes; c += blockDim.x)
        if (counts[c] > 0) st.seen[c] = 1;

    // 4. Distances, one warp per sample; the class maxima for interval mode.
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int i = warp; i < n; i += warps)
    {
        const int c = labels[i];
        const double d = dicc_cluster_distance(features, dim, i, sums + (i64)c * dim);
        if (lane == 0)
        {
            distances[i] = d;
            atomicMax(&class_max[c], (unsigned long long)__double_as_longlong(d));
        }
    }
    __syncthreads();

    // 5. Pseudo-labels.
    for (int i = threadIdx.x; i < n; i += blockDim.x)
    {
        const int c = labels[i], subclasses = st.sub_counts[c];
        const int index = s.partition == 0
            ? dicc_cluster_interval(distances[i], class_max[c], subclasses)
            : dicc_cluster_rank(distances, order, starts[c], counts[c], i, subclasses);
        pseudo[i] = st.sub_offsets[c] + index;
    }
    if (threadIdx.x == 0) st.step[0] += 1;
}

// ---- many blocks: five steps ------------------------------------------------------------------------------

// Step 1 of 5, one block: checks and counts labels [n], groups the batch by class (w.counts, w.starts, w.order),
// clears w.class_max, w.non_finite and w.abort. A label out of range is recorded and sets w.abort.
DICC_KERNEL void cluster_prepare_f32(const int* labels, DiccClusterShape s, DiccClusterWork w, DiccStatus* status)
{
    __shared__ int scratch[32];
    for (int c = threadIdx.x; c < s.classes; c += blockDim.x)
    {
        w.counts[c] = 0;
        w.class_max[c] = 0ull;
        w.non_finite[c] = 0;
    }
    if (threadIdx.x == 0) w.abort[0] = 0;
    __syncthreads();
    const int bad = dicc_cluster_count(labels, s.n, s.classes, w.counts, scratch);
    if (bad != DICC_INT_MAX)
    {
        if (threadIdx.x == 0)
        {
            dicc_report(status, DICC_STATUS_CLUSTER_LABEL, bad, labels[bad], s.classes, 0);
            w.abort[0] = 1;
        }
        return;
    }
    dicc_cluster_order(labels, s.n, s.classes, w.counts, w.starts, w.order);
}

// Step 2 of 5: w.sums [C, M] = class sums of features [n, M] in batch order; w.non_finite flags classes whose
// sums are not finite. Grid (ceil(M / blockDim.x), C).
DICC_KERNEL void cluster_sums_f32(const float* features, DiccClusterShape s, DiccClusterWork w)
{
    if (w.abort[0] != 0) return;
    const int c = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
    const int count = w.counts[c];
    if (j >= s.dim || count == 0) return;
    const double sum = dicc_cluster_sum(features, s.dim, w.order, w.starts[c], count, j);
    w.sums[(i64)c * s.dim + j] = sum;
    if (sum - sum != 0.0) w.non_finite[c] = 1;
}

// Step 3 of 5: the EMA of every present class's centre (st.centers [C, M]); w.sums becomes the new centres
// widened to double. When a class's sums are not finite nothing changes: the first such class's first
// non-finite feature (features [n, M], labels [n]) is recorded and w.abort set. Grid over C * M values.
DICC_KERNEL void cluster_update_f32(const float* features, const int* labels, DiccClusterShape s, DiccClusterState st,
                                    DiccClusterWork w, DiccStatus* status)
{
    if (w.abort[0] != 0) return;
    int first_bad = -1;
    for (int c = 0; c < s.classes; c++)
        if (w.non_finite[c] != 0) { first_bad = c; break; }
    if (first_bad >= 0)
    {
        if (blockIdx.x == 0 && threadIdx.x == 0)
        {
            dicc_cluster_report_non_finite(features, labels, s.n, s.dim, first_bad, status);
            w.abort[0] = 1;
        }
        return;
    }
    DICC_GRID_STRIDE(p, (i64)s.classes * s.dim)
    {
        const int c = (int)(p / s.dim);
        const int count = w.counts[c];
        if (count == 0) continue;
        const float centre = dicc_cluster_ema(w.sums[p], count, st.seen[c] != 0, st.centers[p], s.keep, s.blend);
        st.centers[p] = centre;
        w.sums[p] = (double)centre;
    }
}

// Step 4 of 5: w.distances [n], one warp per sample, and the class maxima w.class_max; block 0 marks the present
// classes seen and counts the step. Grid of enough warps for n samples (blockDim.x a multiple of 32).
DICC_KERNEL void cluster_distances_f32(const float* features, const int* labels, DiccClusterShape s, DiccClusterState st,
                                       DiccClusterWork w)
{
    if (w.abort[0] != 0) return;
    if (blockIdx.x == 0)
    {
        for (int c = threadIdx.x; c < s.classes; c += blockDim.x)
            if (w.counts[c] > 0) st.seen[c] = 1;
        if (threadIdx.x == 0) st.step[0] += 1;
    }
    const int lane = threadIdx.x & 31;
    const i64 warp = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5, warps = ((i64)gridDim.x * blockDim.x) >> 5;
    for (i64 i = warp; i < s.n; i += warps)
    {
        const int c = labels[i];
        const double d = dicc_cluster_distance(features, s.dim, (int)i, w.sums + (i64)c * s.dim);
        if (lane == 0)
        {
            w.distances[i] = d;
            atomicMax(&w.class_max[c], (unsigned long long)__double_as_longlong(d));
        }
    }
}

// Step 5 of 5: pseudo [n] = offset of the sample's class + its sub-interval index. labels [n]. Grid over n.
DICC_KERNEL void cluster_assign_f32(const int* labels, int* pseudo, DiccClusterShape s, DiccClusterState st, DiccClusterWork w)
{
    if (w.abort[0] != 0) return;
    DICC_GRID_STRIDE(i, s.n)
    {
        const int c = labels[i], subclasses = st.sub_counts[c];
        const int index = s.partition == 0
            ? dicc_cluster_interval(w.distances[i], w.class_max[c], subclasses)
            : dicc_cluster_rank(w.distances, w.order, w.starts[c], w.counts[c], (int)i, subclasses);
        pseudo[i] = st.sub_offsets[c] + index;
    }
}
