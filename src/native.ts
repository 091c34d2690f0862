// The native module, typed once and kept private. Loaded with node-gyp-build from
// build/Release (a local build) or prebuilds/<platform>-<arch>/ (shipped binaries).
import * as path from 'node:path';
import type { BackendsInfo, MbvrResult, MbvrTerms, Precision } from './types';

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

export interface NativeModule {
  CudaTensor: new (rows: number, dim: number, data?: Float32Array) => NativeCudaTensor;
  CudaSession: new () => NativeCudaSession;
  lossSync(inputs: NativeInputs, options: NativeOptions): MbvrResult;
  loss(inputs: NativeInputs, options: NativeOptions): Promise<MbvrResult>;
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
      '- Build it from source in your project (needs cmake >= 3.18 and a C++17 compiler):',
      '    npm install-scripts approve mbvr && npm rebuild mbvr',
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
