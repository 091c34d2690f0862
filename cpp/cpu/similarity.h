// Logit tiles: the one way the CPU backend computes c(q_i, x_j) / tau, shared by the loss
// and by similarity(), so what a user inspects is exactly what the loss saw.
//
// Layout: a tile is documents x queries ("transposed"): row j holds document j against
// every query of a strip. Documents are read raw, in place, as the broadcast operand;
// queries come normalised and transposed in a small per-strip buffer (pack_queries).
#pragma once

#include <cstdint>

#include "gemm_bf16.h"
#include "normalize.h"

namespace mbvr::cpu {

// The nq normalised rows q_i * inv_i as gemm operands (gemm.h pack_b layout):
// qt = the rows transposed (dim x nq), the B of logit_tile; qn, when not null, the rows
// themselves (nq x dim), the B of the document gradients. Each holds
// packed_b_floats(dim, nq) / packed_b_floats(nq, dim) floats.
void pack_queries(float* qt, float* qn, const float* q, const float* inv, int64_t nq, int64_t dim);

// z (nd x nq, row stride ldz) = (x_j . q^_i) * doc_factor[j], qt from pack_queries: with
// doc_factor = inv_norm / tau, the logits c(q_i, x_j) / tau.
void logit_tile(float* z, int64_t ldz, const float* x, const float* qt, const float* doc_factor,
                int64_t nd, int64_t nq, int64_t dim);

// The same from bf16 operands (strip_products.h): x16 as bf16 rows (row stride dim),
// qt16 the queries transposed and packed by pack_bt_bf16.
void logit_tile_bf16(float* z, int64_t ldz, const bf16* x16, const bf16* qt16, const float* doc_factor,
                     int64_t nd, int64_t nq, int64_t dim);

// The MS logit c(q, s) / tau of two operand rows with their factors (normalize.h),
// accumulated in double (K per query: too few for a tile).
double ms_logit(const float* q, float q_inv, const float* s, float s_inv, int64_t dim,
                 double inv_tau);
// The same from the operands a bf16 tile would use (q^ and the raw s rounded to bf16),
// so that a softmax mixing tile logits and these (L_ms) sees one rounding.
double ms_logit_bf16(const float* q, float q_inv, const float* s, float s_inv, int64_t dim,
                      double inv_tau);

}  // namespace mbvr::cpu
