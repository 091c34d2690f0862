// mbvr: the modality-balanced contrastive loss of MBVR (Wang et al., SIGIR 2022).
export { mbvrLoss, mbvrLossSync } from './loss';
export { similarity, shuffledLogits } from './similarity';
export { modalityShuffle } from './shuffle';
export { backends } from './backends';
export { CudaSession, CudaTensor } from './cuda';
export type { CudaLossInputs, CudaLossOptions, CudaLossResult } from './cuda';
export { modalityBalance, scoreSeparation, topK, retrievalMetrics } from './evaluation';
export { referenceLoss } from './reference';
export { DEFAULT_TEMPERATURE } from './defaults';
export type * from './types';
export type { Communicator, CommData, ReduceOp, SyncCollectives } from './communicator';
export type { ModalityShuffleResult } from './shuffle';
export { loadNpy, saveNpy } from './npy';
export type { NpyArray, NpyDtype } from './npy';
export { report } from './report/entry';
export type { ReportOptions, ReportResult, ReportSummary } from './report/report';
export type { ModelReport } from './report/diagnostics';
