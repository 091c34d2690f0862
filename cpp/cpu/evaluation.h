// The CPU backend of the evaluation entry points (../evaluation.h): the readable
// reference. A CUDA backend would declare the same functions in cpp/cuda/evaluation.h.
// Inputs reaching these functions have been validated by ../evaluation.cpp.
//   diagnostics.cpp: modality_cosines, score_cosines (per-row cosines, float64)
//   retrieval.cpp:   top_k, target_ranks (streamed tile products, never rows x cols)
#pragma once

#include "../evaluation.h"

namespace mbvr::cpu {

// cos_visual[i] = cos(v_i, m_i), cos_text[i] = cos(t_i, m_i); B each, float64.
void modality_cosines(double* cos_visual, double* cos_text, const ModalityBalanceParams& p);

// positive: B, positive[i] = cos(q_i, m_i); shuffled: B x K, shuffled[i*K + k] = cos(q_i, s_ik).
void score_cosines(float* positive, float* shuffled, const ScoreSeparationParams& p);

// indices, scores: rows x k, each query's k best gallery rows, best first.
void top_k(int32_t* indices, float* scores, const TopKParams& p);

// ranks: rows, the 1-based rank of targets[i] among all gallery rows for query i.
void target_ranks(int32_t* ranks, const RetrievalParams& p);

}  // namespace mbvr::cpu
