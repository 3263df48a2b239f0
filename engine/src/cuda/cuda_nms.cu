/* YOLOv5 NMS on the GPU; see cuda_nms.h. The float arithmetic repeats
 * nms.c's operation by operation with the _rn intrinsics (no fused
 * multiply-adds), so boxes, scores and IoU decisions are the CPU's. */
#include "cuda/cuda_nms.h"
#include "cuda/cuda_device.cuh"

/* YOLOv5's max_wh and max_nms, as in nms.c. */
#define CLASS_OFFSET 4096.0f
#define MAX_NMS_CANDIDATES 30000
/* Candidates sorted in shared memory up to this many (32 KiB of keys);
 * more are sorted in place in global memory by the same block. */
#define SHARED_SORT_KEYS 4096
#define SELECT_THREADS 512
#define NO_KEY (~0ull)

/* A sort key whose ascending order is nms.c's candidate order: score
 * descending, then row ascending. -0 counts as +0, as the comparison
 * there does. */
__device__ __forceinline__ uint64_t
candidate_key (float score, int row)
{
  unsigned bits = __float_as_uint (score + 0.0f);
  unsigned ascending = bits & 0x80000000u ? ~bits : bits | 0x80000000u;

  return ((uint64_t) ~ascending << 32) | (unsigned) row;
}

__global__ void
candidates_kernel (CudaNmsBuffers b)
{
  const CudaNmsParams *p = b.params;
  const unsigned char *wanted = (const unsigned char *) (p + 1);
  const int frame = blockIdx.y;
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  const int columns = 5 + b.nc;
  const float conf = p->conf_threshold;

  if (frame >= p->n_frames || r >= b.rows)
    return;
  const float *row = b.output + ((int64_t) frame * b.rows + r) * columns;
  const float objectness = row[4];
  if (!(objectness > conf))
    return;

  /* torch.max: the first maximum wins; a NaN anywhere wins outright. */
  float best = __fmul_rn (row[5], objectness);
  int best_class = 0;
  for (int c = 1; c < b.nc && !isnan (best); c++) {
    float score = __fmul_rn (row[5 + c], objectness);
    if (score > best || isnan (score)) {
      best = score;
      best_class = c;
    }
  }
  if (!(best > conf) || (p->filter_classes && !wanted[best_class]))
    return;

  const float half_w = row[2] / 2.0f, half_h = row[3] / 2.0f;
  const int64_t at = (int64_t) frame * b.rows + r;
  int slot = atomicAdd (&b.candidate_counts[frame], 1);

  b.keys[(int64_t) frame * b.sort_size + slot] = candidate_key (best, r);
  b.boxes[at] = make_float4 (__fsub_rn (row[0], half_w),
                             __fsub_rn (row[1], half_h),
                             __fadd_rn (row[0], half_w),
                             __fadd_rn (row[1], half_h));
  b.scores[at] = best;
  b.classes[at] = best_class;
}

/* Ascending bitonic sort of @size (a power of two) keys by the whole
 * block; @keys in shared or global memory. */
__device__ void
block_bitonic_sort (uint64_t *keys, int size)
{
  for (int k = 2; k <= size; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = threadIdx.x; i < size; i += blockDim.x) {
        int partner = i ^ j;

        if (partner > i) {
          uint64_t a = keys[i], c = keys[partner];
          bool ascending = (i & k) == 0;

          if ((a > c) == ascending) {
            keys[i] = c;
            keys[partner] = a;
          }
        }
      }
      __syncthreads ();
    }
  }
}

/* std::max and std::min as torchvision's kernel uses them (nms.c). */
__device__ __forceinline__ float
max_like_std (float a, float b)
{
  return a < b ? b : a;
}

__device__ __forceinline__ float
min_like_std (float a, float b)
{
  return b < a ? b : a;
}

struct ShiftedBox {
  float x1, y1, x2, y2, area;
};

__device__ __forceinline__ ShiftedBox
shifted_box (float4 box, int class_id, bool agnostic)
{
  const float shift = agnostic ? 0.0f : __fmul_rn ((float) class_id,
                                                   CLASS_OFFSET);
  ShiftedBox s;

  s.x1 = __fadd_rn (box.x, shift);
  s.y1 = __fadd_rn (box.y, shift);
  s.x2 = __fadd_rn (box.z, shift);
  s.y2 = __fadd_rn (box.w, shift);
  s.area = __fmul_rn (__fsub_rn (s.x2, s.x1), __fsub_rn (s.y2, s.y1));
  return s;
}

__device__ __forceinline__ float
box_iou (const ShiftedBox &a, const ShiftedBox &b)
{
  const float xx1 = max_like_std (a.x1, b.x1);
  const float yy1 = max_like_std (a.y1, b.y1);
  const float xx2 = min_like_std (a.x2, b.x2);
  const float yy2 = min_like_std (a.y2, b.y2);
  const float w = max_like_std (0.0f, __fsub_rn (xx2, xx1));
  const float h = max_like_std (0.0f, __fsub_rn (yy2, yy1));
  const float inter = __fmul_rn (w, h);

  return __fdiv_rn (inter, __fsub_rn (__fadd_rn (a.area, b.area), inter));
}

__global__ void __launch_bounds__ (SELECT_THREADS)
select_kernel (CudaNmsBuffers b)
{
  __shared__ uint64_t shared_keys[SHARED_SORT_KEYS];
  __shared__ unsigned suppressed[(MAX_NMS_CANDIDATES + 31) / 32];
  __shared__ int next_index;
  const CudaNmsParams *p = b.params;
  const int frame = blockIdx.x;
  const int n = frame < p->n_frames ? b.candidate_counts[frame] : 0;
  const int limit = min (p->limit, b.room);
  const bool agnostic = p->agnostic != 0;
  const int64_t by_row = (int64_t) frame * b.rows;
  uint64_t *keys = b.keys + (int64_t) frame * b.sort_size;
  const uint64_t *sorted;
  int size = 1, n_cut, kept = 0, i = 0;

  while (size < n)
    size <<= 1;
  if (size <= SHARED_SORT_KEYS) {
    for (int k = threadIdx.x; k < size; k += blockDim.x)
      shared_keys[k] = k < n ? keys[k] : NO_KEY;
    __syncthreads ();
    block_bitonic_sort (shared_keys, size);
    sorted = shared_keys;
  } else {
    for (int k = n + threadIdx.x; k < size; k += blockDim.x)
      keys[k] = NO_KEY;
    __syncthreads ();
    block_bitonic_sort (keys, size);
    sorted = keys;
  }

  /* YOLOv5 keeps the best max_nms candidates. */
  n_cut = min (n, MAX_NMS_CANDIDATES);
  for (int w = threadIdx.x; w < (n_cut + 31) / 32; w += blockDim.x)
    suppressed[w] = 0;
  __syncthreads ();

  /* Candidate i is never suppressed when reached: it is the first one
   * left after the previous pass. */
  while (i < n_cut && kept < limit) {
    const int row_i = (int) (sorted[i] & 0xffffffffu);
    const float4 box_i = b.boxes[by_row + row_i];
    const int class_i = b.classes[by_row + row_i];
    int local_next = n_cut;

    if (threadIdx.x == 0) {
      CudaDetection *d = &b.results[(int64_t) frame * b.room + kept];

      d->x1 = box_i.x;
      d->y1 = box_i.y;
      d->x2 = box_i.z;
      d->y2 = box_i.w;
      d->confidence = b.scores[by_row + row_i];
      d->class_id = class_i;
      next_index = n_cut;
    }
    kept++;
    if (kept == limit)
      break;
    __syncthreads ();

    const ShiftedBox a = shifted_box (box_i, class_i, agnostic);
    for (int j = i + 1 + threadIdx.x; j < n_cut; j += blockDim.x) {
      if (suppressed[j >> 5] & (1u << (j & 31)))
        continue;
      const int row_j = (int) (sorted[j] & 0xffffffffu);
      const ShiftedBox c = shifted_box (b.boxes[by_row + row_j],
                                        b.classes[by_row + row_j], agnostic);
      if (box_iou (a, c) > p->iou_threshold)
        atomicOr (&suppressed[j >> 5], 1u << (j & 31));
      else
        local_next = min (local_next, j);
    }
    if (local_next < n_cut)
      atomicMin (&next_index, local_next);
    __syncthreads ();
    i = next_index;
    __syncthreads (); /* everyone has read it before thread 0 resets it */
  }
  if (threadIdx.x == 0)
    b.result_counts[frame] = kept;
}

extern "C" cudaError_t
cuda_nms (const CudaNmsBuffers *buffers, cudaStream_t stream)
{
  dim3 rows_grid ((buffers->rows + CUDA_BLOCK_THREADS - 1)
                  / CUDA_BLOCK_THREADS, buffers->batch);
  cudaError_t status;

  if (buffers->rows < 1 || buffers->batch < 1 || buffers->nc < 1
      || buffers->sort_size < buffers->rows || buffers->room < 1)
    return cudaErrorInvalidValue;
  status = cudaMemsetAsync (buffers->candidate_counts, 0,
                            buffers->batch * sizeof (int), stream);
  if (status != cudaSuccess)
    return status;
  candidates_kernel<<<rows_grid, CUDA_BLOCK_THREADS, 0, stream>>> (*buffers);
  select_kernel<<<buffers->batch, SELECT_THREADS, 0, stream>>> (*buffers);
  return cudaGetLastError ();
}
