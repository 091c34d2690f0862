// The native module, typed once and kept private. Loaded with node-gyp-build from
// build/Release (a local build) or prebuilds/<platform>-<arch>/ (shipped binaries).
import * as path from 'node:path';
import type { BackendsInfo, MbvrGrads, MbvrResult, MbvrTerms, Precision } from './types';

/** Arguments as the binding takes them: Float32Arrays and plain sizes, already checked. */
export interface NativeInputs {
  batch: number;
  dim: number;
  query: Float32Array;
  fused: Float32Array;
  visual?: Float32Array;
  text?: Float32Array;
  shuffled?: Float32Array;
}

export interface NativeOptions {
  temperature?: number;
  alpha?: number;
  beta?: number;
  gamma?: number;
  margin?: number | Float32Array;
  labels?: Int32Array;
  normalize?: boolean;
  grads?: boolean;
  backend?: string;
  precision?: string;
  threads?: number;
  logitCacheBytes?: number;
}

/** A loss result as the binding builds it (binding/result.cpp). */
export type NativeLossResult = Omit<MbvrResult, 'grads'> & { grads?: MbvrGrads };

/** A native CudaTensor (binding/cuda_session.cpp). */
export interface NativeCudaTensor {
  readonly rows: number;
  readonly dim: number;
  readonly disposed: boolean;
  upload(data: Float32Array): NativeCudaTensor;
  download(): Float32Array;
  dispose(): void;
}

export type RawLossResult = { loss: number; terms: MbvrTerms; grads?: Record<string, unknown>; backend: 'cuda'; precision: Precision };

export interface NativeCudaSession {
  loss(inputs: Record<string, unknown>, options: object): Promise<RawLossResult>;
  lossSync(inputs: Record<string, unknown>, options: object): RawLossResult;
  readonly workspaceBytes: number;
  dispose(): void;
}

/** One rank's shard of a data-parallel loss (binding/shard.h). */
export interface NativeShardInputs {
  batch: number;
  dim: number;
  k: number;
  row0: number;
  rows: number;
  query: Float32Array;
  shuffled?: Float32Array;
  fused: Float32Array;
  visual?: Float32Array;
  text?: Float32Array;
}
export interface NativeColumnStats {
  max: Float64Array;
  sum: Float64Array;
  positive: Float32Array;
}
export interface NativeShardGradients {
  /** [qm, mq, v, t, ms, gz]: this shard's sums (docs/math.md §6) */
  sums: Float64Array;
  precision: Precision;
  grads?: { query: Float32Array; shuffled?: Float32Array; fused: Float32Array; visual?: Float32Array; text?: Float32Array };
}
export type NativeDocuments = { fused?: Float32Array; visual?: Float32Array; text?: Float32Array };
export interface NativeLossShard {
  statistics(): Promise<NativeColumnStats>;
  statisticsSync(): NativeColumnStats;
  gradients(merged: NativeColumnStats): Promise<NativeShardGradients>;
  gradientsSync(merged: NativeColumnStats): NativeShardGradients;
  finish(documents: NativeDocuments): Promise<NativeDocuments>;
  finishSync(documents: NativeDocuments): NativeDocuments;
  /** loss, terms and dL/dtau (grads.temperature) from the sums over every rank */
  scalars(sums: Float64Array): NativeLossResult;
}

export interface NativeModule {
  CudaTensor: new (rows: number, dim: number, data?: Float32Array) => NativeCudaTensor;
  CudaSession: new () => NativeCudaSession;
  LossShard: new (inputs: NativeShardInputs, options: NativeOptions & { rowShapes?: Float64Array }) => NativeLossShard;
  lossSync(inputs: NativeInputs, options: NativeOptions): NativeLossResult;
  loss(inputs: NativeInputs, options: NativeOptions): Promise<NativeLossResult>;
  /** [first non-finite index or -1, its value, max row norm, min row norm, max row sum x^4 / (sum x^2)^2] */
  inspect(data: Float32Array, rows: number, dim: number): Float64Array;
  similarity(
    a: Float32Array,
    b: Float32Array,
    options: { rows: number; cols: number; dim: number; temperature?: number; normalize?: boolean; threads?: number },
  ): Float32Array;
  shuffledLogits(
    query: Float32Array,
    shuffled: Float32Array,
    options: { batch: number; dim: number; temperature?: number; normalize?: boolean; threads?: number },
  ): Float32Array;
  backends(): BackendsInfo;
}

const packageRoot = path.join(__dirname, '..');

function load(): NativeModule {
  // MBVR_ADDON_PATH: an explicit .node file (sanitizer builds, side-by-side benchmarks).
  const explicit = process.env.MBVR_ADDON_PATH;
  if (explicit) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(path.resolve(explicit)) as NativeModule;
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    return nodeGypBuild(packageRoot) as NativeModule;
  } catch (cause) {
    const target = `${process.platform}-${process.arch}`;
    const message = [
      `mbvr: could not load its native addon for ${target} (Node.js ${process.version}, Node-API 8).`,
      `Looked in ${path.join(packageRoot, 'build', 'Release')} and ${path.join(packageRoot, 'prebuilds', target)}.`,
      `Reason: ${(cause as Error).message.split('\n')[0]}`,
      'Possible solutions:',
      '- Build it from source in your project (needs CMake >= 3.18 and a C++17 compiler, GCC or Clang):',
      '    npm install --save-dev cmake-js node-addon-api node-api-headers',
      '    npm install-scripts approve mbvr && npm rebuild mbvr',
      '  (npm 10 and older: npm rebuild mbvr)',
      `- or build it in place: cd ${packageRoot} && npx cmake-js compile`,
    ].join('\n');
    throw new Error(message, { cause });
  }
}

let cached: NativeModule | undefined;

/** The addon, loaded on first use so that `import 'mbvr'` itself never throws. */
export function native(): NativeModule {
  cached ??= load();
  return cached;
}
