import { native } from './native';
import type { BackendsInfo } from './types';

/** What this build can run on: the CPU always; CUDA as facts plus the reason it is unusable. */
export function backends(): BackendsInfo {
  return native().backends();
}
