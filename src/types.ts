// Public types (SPEC section 3).

/** A tensor from another library: tfjs / ndarray ({ data, shape }) or onnxruntime /
 * transformers.js ({ data, dims }). Row-major and contiguous. */
export interface TensorLike {
  data: Float32Array | (() => unknown);
  shape?: readonly number[];
  dims?: readonly number[];
  dataSync?: () => unknown;
  stride?: readonly number[];
  offset?: number;
}

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
  /** tau [0.05] */
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
  /** cuda only; the cpu computes in fp32 ['fp32'] */
  precision?: Precision;
  /** CPU worker threads [MBVR_THREADS, else all cores] */
  threads?: number;
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

export interface MbvrResult {
  loss: number;
  terms: MbvrTerms;
  grads?: MbvrGrads;
  backend: 'cpu' | 'cuda';
}

export interface SimilarityOptions {
  rows?: number;
  cols?: number;
  dim?: number;
  /** [1] */
  temperature?: number;
  /** [true] */
  normalize?: boolean;
  threads?: number;
}

export interface ShuffledLogitsOptions {
  batch?: number;
  dim?: number;
  /** [0.05] */
  temperature?: number;
  /** [true] */
  normalize?: boolean;
  threads?: number;
}

export interface ModalityShuffleOptions {
  /** negatives per row [1] */
  k?: number;
  /** [0] */
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
  cpu: { available: true; threads: number; simd: string };
  cuda: {
    compiled: boolean;
    available: boolean;
    devices: CudaDevice[];
    reason?: string;
    runtimeVersion?: number;
    driverVersion?: number;
  };
}
