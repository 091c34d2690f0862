// Public types (the API of README.md; the math of docs/math.md).
import type { Communicator } from './communicator';

/** A tensor from another library: tfjs / ndarray ({ data, shape }) or onnxruntime /
 * transformers.js ({ data, dims }). Row-major and contiguous, float32. */
export type TensorLike = {
  shape?: readonly number[];
  dims?: readonly number[];
  /** ndarray's strides: must be those of a contiguous row-major array */
  stride?: readonly number[];
  offset?: number;
} & (
  | { data: Float32Array }
  /** a tf.Tensor: data() is async, so the values are read with dataSync() */
  | { data: () => unknown; dataSync: () => unknown }
);

export type Matrix = Float32Array | TensorLike;

export interface MbvrInputs {
  /** B; optional when `query` is a tensor-like with a shape. */
  batch?: number;
  /** D; optional when `query` is a tensor-like with a shape. */
  dim?: number;
  query: Matrix;
  fused: Matrix;
  visual?: Matrix;
  text?: Matrix;
  /** B x K x D; K = shuffled.length / (B * D). */
  shuffled?: Matrix;
}

export type Backend = 'auto' | 'cpu' | 'cuda';
export type Precision = 'fp32' | 'tf32' | 'bf16';

export interface MbvrOptions {
  /** tau [0.05, DEFAULT_TEMPERATURE] */
  temperature?: number;
  /** weight of L_v [1] */
  alpha?: number;
  /** weight of L_t [1] */
  beta?: number;
  /** weight of L_ms [1] */
  gamma?: number;
  /** delta: lowers the positive's cosine, one number or one per row [0] */
  margin?: number | Float32Array;
  /** video ids: rows with the same id are duplicates, left out of each other's softmax */
  labels?: Int32Array;
  /** L2-normalise every row first [true] */
  normalize?: boolean;
  /** compute gradients [true] */
  grads?: boolean;
  /** auto: cuda when a GPU is usable, else cpu ['auto'] */
  backend?: Backend;
  /** ['fp32']; 'bf16' on the CPU and CUDA, 'tf32' on CUDA only (see the README's "Precision") */
  precision?: Precision;
  /** CPU worker threads [MBVR_THREADS, else all cores] */
  threads?: number;
  /** CPU: bytes the fused logits (B^2 * 4) may occupy to skip their recomputation in
   * the backward pass [MBVR_LOGIT_CACHE_BYTES, else 80 MiB]; 0 never caches. */
  logitCacheBytes?: number;
  /** Data parallel: this process holds its rows of a global batch split over `comm`'s
   * ranks; the loss is the global batch's (README "Data-parallel training"). */
  comm?: Communicator;
}

export interface MbvrTerms {
  qm: number;
  mq: number;
  v: number;
  t: number;
  ms: number;
}

export interface MbvrGrads {
  query: Float32Array;
  fused: Float32Array;
  visual?: Float32Array;
  text?: Float32Array;
  shuffled?: Float32Array;
  temperature: number;
}

/** The loss without gradients (options `grads: false`). */
export interface MbvrForwardResult {
  loss: number;
  terms: MbvrTerms;
  backend: 'cpu' | 'cuda';
  /** The precision the products ran at: `precision`, or a more exact one where that could
   * not meet its error bound (see the README's "Precision"). */
  precision: Precision;
}

/** The loss and every gradient (the default). */
export interface MbvrResult extends MbvrForwardResult {
  grads: MbvrGrads;
}

/** What mbvrLoss returns for options of type O: no `grads` when O says `grads: false`. */
export type LossResultOf<O> = O extends { grads: false } ? MbvrForwardResult : MbvrResult;

export interface SimilarityOptions {
  rows?: number;
  cols?: number;
  dim?: number;
  /** [0.05, DEFAULT_TEMPERATURE, as the loss's] */
  temperature?: number;
  /** [true] */
  normalize?: boolean;
  threads?: number;
}

export interface ShuffledLogitsOptions {
  batch?: number;
  dim?: number;
  /** [0.05, DEFAULT_TEMPERATURE, as the loss's] */
  temperature?: number;
  /** [true] */
  normalize?: boolean;
  threads?: number;
}

export interface ModalityShuffleOptions {
  /** negatives per row, 1 <= k < batch [1] */
  k?: number;
  /** any integer; the same seed gives the same result [a fresh random seed each call] */
  seed?: number;
  labels?: Int32Array;
}

export interface CudaDevice {
  index: number;
  name: string;
  computeCapability: string;
  totalMemory: number;
}

export interface BackendsInfo {
  cpu: {
    available: true;
    threads: number;
    /** widest vector instruction set in use: 'avx512' | 'avx2' | 'baseline' | 'portable' */
    simd: string;
    /** the fp32 matrix-product kernel in use, e.g. 'avx512 12x32' */
    gemm: string;
    /** precision 'bf16' on the CPU: native (AVX512-BF16), else bf16 requests run in fp32
     * (as they do, native or not, where bf16 would miss its bound: docs/math.md §5) */
    bf16: { native: boolean; kernel: string };
  };
  cuda: {
    compiled: boolean;
    available: boolean;
    devices: CudaDevice[];
    reason?: string;
    runtimeVersion?: number;
    driverVersion?: number;
    /** The self-check run on the first CUDA use (a small fixed problem, GPU against CPU). */
    selfCheck?: { passed: boolean; worst: string; ms: number };
  };
}

// ---- Evaluation and diagnostics (src/evaluation.ts) ---------------------------------

/** mean and percentiles (linear interpolation between closest ranks, as numpy's default)
 * over the `count` values that are defined. */
export interface DistributionSummary {
  mean: number;
  median: number;
  p10: number;
  p90: number;
  /** how many values the summary covers (rows with a defined ratio) */
  count: number;
}

export interface ModalityBalanceInputs {
  /** B; optional when `fused` is a tensor-like with a shape. */
  batch?: number;
  /** D; optional when `fused` is a tensor-like with a shape. */
  dim?: number;
  visual: Matrix;
  text: Matrix;
  fused: Matrix;
}

export interface ModalityBalanceResult {
  /** cos(v_i, m_i) / cos(t_i, m_i); NaN where cos(t_i, m_i) is exactly 0 */
  rvt: Float32Array;
  cosVisual: Float32Array;
  cosText: Float32Array;
  /** over the rows whose ratio is defined; all 0 (count 0) when none is */
  summary: DistributionSummary;
}

export interface ScoreSeparationInputs {
  /** B; optional when `query` is a tensor-like with a shape. */
  batch?: number;
  /** D; optional when `query` is a tensor-like with a shape. */
  dim?: number;
  query: Matrix;
  fused: Matrix;
  /** B x K x D */
  shuffled: Matrix;
}

export interface ScoreSeparationResult {
  /** B: cos(q_i, m_i) */
  positive: Float32Array;
  /** B x K: cos(q_i, s_ik) */
  shuffled: Float32Array;
  /** P(positive_i > shuffled_ik) over all B * K pairs, ties counting 1/2 */
  auc: number;
}

export interface TopKOptions {
  /** queries; optional when `queries` is a tensor-like with a shape */
  rows?: number;
  /** gallery rows; optional when `gallery` is a tensor-like with a shape */
  cols?: number;
  dim?: number;
  /** results per query, 1 <= k <= cols */
  k: number;
  /** cosine (true, the default) or raw dot product */
  normalize?: boolean;
  threads?: number;
}

export interface TopKResult {
  /** rows x k gallery rows, best first, ties to the lower index */
  indices: Int32Array;
  /** rows x k scores matching `indices` */
  scores: Float32Array;
}

export interface RetrievalMetricsOptions {
  rows?: number;
  cols?: number;
  dim?: number;
  /** rows: the gallery row that answers each query */
  targets: Int32Array;
  /** cut-offs for recall [[1, 5, 10]] */
  ks?: readonly number[];
  /** cosine (true, the default) or raw dot product */
  normalize?: boolean;
  threads?: number;
}

export interface RetrievalMetricsResult {
  /** recall[k]: the share of queries whose target ranks <= k */
  recall: Record<number, number>;
  /** the median of the ranks (mean of the two middle ones for an even count) */
  medianRank: number;
  meanRank: number;
  /** rows: each query's target rank, 1 = first */
  ranks: Int32Array;
}
