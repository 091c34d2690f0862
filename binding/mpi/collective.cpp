#include "collective.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <string>
#include <tuple>

#include "comm_thread.h"

namespace mbvr::mpi {

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::AllGather: return "allGather";
    case Kind::AllReduce: return "allReduce";
    case Kind::ReduceScatter: return "reduceScatter";
    case Kind::Broadcast: return "broadcast";
    case Kind::Barrier: return "barrier";
    case Kind::Finalize: return "finalize";
  }
  return "an unknown collective";
}

const char* dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::Float32: return "Float32Array";
    case Dtype::Float64: return "Float64Array";
    case Dtype::Int32: return "Int32Array";
    case Dtype::Uint8: return "Uint8Array";
    case Dtype::None: break;
  }
  return "no array";
}

size_t element_size(Dtype dtype) {
  switch (dtype) {
    case Dtype::Float32: return 4;
    case Dtype::Float64: return 8;
    case Dtype::Int32: return 4;
    case Dtype::Uint8: return 1;
    case Dtype::None: break;
  }
  return 1;
}

void check(int rc, const char* call, const World& world) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = "";
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) std::snprintf(text, sizeof text, "MPI error code %d", rc);
  throw CommError(std::string("mbvr/mpi: ") + call + " failed on rank " + std::to_string(world.rank) + " of " +
                  std::to_string(world.size) + ": " + text);
}

namespace {

// MPI_Iallreduce and MPI_Ibcast take int counts: longer arrays go in pieces.
constexpr int64_t kChunk = int64_t{1} << 30;

// step(data, n) over `length` elements of `size` bytes from `base`, kChunk at a time: MPI
// counts are ints.
template <class Step>
void in_chunks(void* base, int64_t length, size_t size, Step step) {
  for (int64_t at = 0; at < length; at += kChunk)
    step(static_cast<char*>(base) + at * static_cast<int64_t>(size), static_cast<int>(std::min(kChunk, length - at)));
}

// Runs start(request) and waits for the request.
template <class Start>
void run_request(const char* call, const World& world, Start start) {
  MPI_Request request;
  check(start(&request), call, world);
  check(progress(&request), call, world);
}

// ---- the descriptor exchange -------------------------------------------------------

// One rank's call: what every rank learns about every other before data moves.
enum Field { kKind, kDtype, kLength, kParam, kCountsHash, kInvalid, kFields };
using Descriptor = int64_t[kFields];

// FNV-1a over the counts; 0 is kept for "no counts given".
int64_t hash_counts(const std::vector<int64_t>& counts) {
  uint64_t h = 1469598103934665603ull;
  for (int64_t c : counts)
    for (int byte = 0; byte < 8; ++byte) {
      h ^= (static_cast<uint64_t>(c) >> (8 * byte)) & 0xffu;
      h *= 1099511628211ull;
    }
  return h == 0 ? 1 : static_cast<int64_t>(h);
}

const char* op_name(int64_t op) {
  switch (static_cast<ReduceOp>(op)) {
    case ReduceOp::Sum: return "'sum'";
    case ReduceOp::Max: return "'max'";
    case ReduceOp::Min: return "'min'";
  }
  return "an unknown op";
}

// "allReduce(Float32Array of 10, 'sum')", as a rank's descriptor says it called.
std::string describe_call(const int64_t* d) {
  const Kind kind = static_cast<Kind>(d[kKind]);
  std::string s = kind_name(kind);
  if (kind == Kind::Barrier || kind == Kind::Finalize) return s + "()";
  s += "(" + std::string(dtype_name(static_cast<Dtype>(d[kDtype]))) + " of " + std::to_string(d[kLength]);
  if (kind == Kind::AllReduce) s += std::string(", ") + op_name(d[kParam]);
  if (kind == Kind::Broadcast) s += ", root " + std::to_string(d[kParam]);
  if (kind == Kind::ReduceScatter || (kind == Kind::AllGather && d[kCountsHash] != 0)) s += ", counts";
  return s + ")";
}

// What must be equal on every rank for a call of this kind. allGather's lengths differ by
// design, and its counts are checked against the lengths instead (see agree()).
std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t> call_key(const int64_t* d) {
  const Kind kind = static_cast<Kind>(d[kKind]);
  if (kind == Kind::Barrier || kind == Kind::Finalize) return {d[kKind], 0, 0, 0, 0};
  if (kind == Kind::AllGather) return {d[kKind], d[kDtype], 0, 0, 0};
  return {d[kKind], d[kDtype], d[kLength], d[kParam], d[kCountsHash]};
}

std::string rank_list_message(const std::vector<int>& ranks, const std::vector<int64_t>& table, int reference) {
  std::string s = "rank " + std::to_string(reference) + " called " + describe_call(&table[reference * kFields]);
  const size_t shown = std::min<size_t>(ranks.size(), 4);
  for (size_t i = 0; i < shown; ++i)
    s += (i == 0 ? " but rank " : ", rank ") + std::to_string(ranks[i]) + " called " +
         describe_call(&table[ranks[i] * kFields]);
  if (ranks.size() > shown) s += ", and " + std::to_string(ranks.size() - shown) + " more ranks differ";
  return s;
}

// Some rank's arguments were rejected: every rank gathers those ranks' messages (a
// second exchange, only on this path) and reports them alike.
std::string invalid_arguments_message(const Collective& c, const World& world, const std::vector<int64_t>& table) {
  constexpr size_t kMaxMessage = 1000;
  const std::string mine = c.invalid.substr(0, kMaxMessage);
  int my_length = static_cast<int>(mine.size());
  std::vector<int> lengths(world.size), offsets(world.size);
  run_request("MPI_Iallgather", world, [&](MPI_Request* request) {
    return MPI_Iallgather(&my_length, 1, MPI_INT, lengths.data(), 1, MPI_INT, world.comm, request);
  });
  int total = 0;
  for (int r = 0; r < world.size; ++r) {
    offsets[r] = total;
    total += lengths[r];
  }
  std::string all(static_cast<size_t>(total) + 1, '\0');
  run_request("MPI_Iallgatherv", world, [&](MPI_Request* request) {
    return MPI_Iallgatherv(mine.data(), my_length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR,
                           world.comm, request);
  });
  std::string message = "mbvr/mpi: ";
  int shown = 0;
  for (int r = 0; r < world.size; ++r) {
    if (table[r * kFields + kInvalid] == 0) continue;
    if (shown++) message += "; ";
    message += "rank " + std::to_string(r) + " passed invalid arguments to " +
               kind_name(static_cast<Kind>(table[r * kFields + kKind])) + ": " + all.substr(offsets[r], lengths[r]);
  }
  return message + " (so the call fails on every rank)";
}

const char* const kMismatch =
    "mbvr/mpi: the ranks' collective calls do not match (every rank must make the same calls in "
    "the same order, with matching arguments): ";

// Exchanges descriptors and throws the same CommError on every rank when the calls do
// not match. Returns the table: kFields values per rank, in rank order.
std::vector<int64_t> agree(const Collective& c, const World& world) {
  Descriptor mine = {static_cast<int64_t>(c.kind), static_cast<int64_t>(c.dtype), c.length, c.param,
                     c.has_counts ? hash_counts(c.counts) : 0, c.invalid.empty() ? 0 : 1};
  std::vector<int64_t> table(static_cast<size_t>(world.size) * kFields);
  run_request("MPI_Iallgather", world, [&](MPI_Request* request) {
    return MPI_Iallgather(mine, kFields, MPI_INT64_T, table.data(), kFields, MPI_INT64_T, world.comm, request);
  });

  bool all_equal = true;
  bool any_finalize = false;
  for (int r = 0; r < world.size; ++r) {
    all_equal &= call_key(&table[r * kFields]) == call_key(&table[0]);
    any_finalize |= static_cast<Kind>(table[r * kFields + kKind]) == Kind::Finalize;
  }
  // A rank that finalizes (comm.finalize() or its exit) while another is in a collective
  // will never take part in that one, nor in any later: an error could only leave the
  // others to wait for it. Every rank sees the same table and ends the job alike.
  if (any_finalize && !all_equal) {
    std::vector<int> leaving, staying;
    for (int r = 0; r < world.size; ++r)
      (static_cast<Kind>(table[r * kFields + kKind]) == Kind::Finalize ? leaving : staying).push_back(r);
    abort_job(std::string("mbvr/mpi: ") + rank_list_message(staying, table, leaving.front()) +
              ": a rank that finalizes (comm.finalize() or a normal exit) cannot take part in later collectives, "
              "so the job ends (every rank must finalize after its last collective)");
  }

  bool any_invalid = false;
  for (int r = 0; r < world.size; ++r) any_invalid |= table[r * kFields + kInvalid] != 0;
  if (any_invalid) throw CommError(invalid_arguments_message(c, world, table));

  // The reference call is the most common one (ties: the lowest rank), so that the
  // message names the odd rank(s) rather than blaming everyone else.
  if (!all_equal) {
    std::map<decltype(call_key(nullptr)), std::pair<int, int>> votes;  // key -> (count, first rank)
    for (int r = 0; r < world.size; ++r) {
      auto [it, inserted] = votes.try_emplace(call_key(&table[r * kFields]), 0, r);
      ++it->second.first;
    }
    int reference = 0, best = 0;
    for (const auto& [key, vote] : votes)
      if (vote.first > best || (vote.first == best && vote.second < reference)) {
        best = vote.first;
        reference = vote.second;
      }
    std::vector<int> odd;
    for (int r = 0; r < world.size; ++r)
      if (call_key(&table[r * kFields]) != call_key(&table[reference * kFields])) odd.push_back(r);
    throw CommError(kMismatch + rank_list_message(odd, table, reference));
  }

  if (c.kind == Kind::AllGather) {
    // Counts, where given, must be the lengths the ranks actually passed.
    std::vector<int64_t> lengths(world.size);
    for (int r = 0; r < world.size; ++r) lengths[r] = table[r * kFields + kLength];
    const int64_t expected = hash_counts(lengths);
    std::vector<int> odd;
    for (int r = 0; r < world.size; ++r) {
      const int64_t h = table[r * kFields + kCountsHash];
      if (h != 0 && h != expected) odd.push_back(r);
    }
    if (!odd.empty()) {
      std::string lens;
      for (int r = 0; r < world.size; ++r) lens += (r ? ", " : "") + std::to_string(lengths[r]);
      std::string who;
      for (size_t i = 0; i < odd.size() && i < 4; ++i) who += (i ? ", " : "") + std::to_string(odd[i]);
      if (odd.size() > 4) who += ", ...";
      throw CommError(std::string(kMismatch) + "allGather: the counts passed on rank" + (odd.size() > 1 ? "s " : " ") +
                      who + " are not the lengths of the ranks' data (" + lens + ")");
    }
  }
  return table;
}

// ---- the collectives -----------------------------------------------------------------

MPI_Datatype mpi_type(Dtype dtype) {
  switch (dtype) {
    case Dtype::Float32: return MPI_FLOAT;
    case Dtype::Float64: return MPI_DOUBLE;
    case Dtype::Int32: return MPI_INT32_T;
    case Dtype::Uint8: return MPI_UINT8_T;
    case Dtype::None: break;
  }
  return MPI_BYTE;
}

MPI_Op mpi_op(int64_t op) {
  switch (static_cast<ReduceOp>(op)) {
    case ReduceOp::Sum: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  return MPI_SUM;
}

// MPI counts and displacements are ints. Every rank decides from the same table, so
// this fails alike on every rank.
int as_count(int64_t n, const Collective& c) {
  if (n > INT_MAX)
    throw CommError(std::string("mbvr/mpi: ") + kind_name(c.kind) + " needs a count or offset of " +
                    std::to_string(n) + " elements, above MPI's limit of " + std::to_string(INT_MAX) +
                    "; split the data into smaller calls");
  return static_cast<int>(n);
}

OwnedBuffer allocate_or_abort(int64_t elements, Dtype dtype, const Collective& c, const World& world) {
  const size_t bytes = static_cast<size_t>(elements) * element_size(dtype);
  try {
    return OwnedBuffer(bytes);
  } catch (const std::bad_alloc&) {
    abort_job("mbvr/mpi: rank " + std::to_string(world.rank) + " could not allocate " + std::to_string(bytes) +
              " bytes for the result of " + kind_name(c.kind) +
              "; aborting the job, since the other ranks are already committed to this exchange");
  }
}

void all_gather(Collective& c, const World& world, const std::vector<int64_t>& table) {
  std::vector<int> counts(world.size), offsets(world.size);
  int64_t total = 0;
  for (int r = 0; r < world.size; ++r) {
    counts[r] = as_count(table[r * kFields + kLength], c);
    offsets[r] = as_count(total, c);
    total += counts[r];
  }
  const MPI_Datatype type = mpi_type(c.dtype);
  if (c.in_place) {
    // Sized from this rank's counts, which agree() found equal to the lengths (by hash:
    // check the sizes themselves before MPI writes).
    if (c.output_length != total)
      abort_job("mbvr/mpi: rank " + std::to_string(world.rank) +
                ": allGather's counts passed the agreement check but do not match the lengths; aborting");
    run_request("MPI_Iallgatherv", world, [&](MPI_Request* request) {
      return MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, c.output.data(), counts.data(), offsets.data(),
                             type, world.comm, request);
    });
    return;
  }
  c.output = allocate_or_abort(total, c.dtype, c, world);
  c.output_length = total;
  run_request("MPI_Iallgatherv", world, [&](MPI_Request* request) {
    return MPI_Iallgatherv(c.input.data(), counts[world.rank], type, c.output.data(), counts.data(),
                           offsets.data(), type, world.comm, request);
  });
}

// Uint8 reductions run in 32 bits and keep the low byte: sums wrap modulo 256, as C's
// unsigned char arithmetic (and MPI_SUM) defines them, and min/max are exact. MPI's own
// 8-bit reductions cannot be trusted for either: Open MPI 4.1's AVX kernels saturate
// 8-bit sums at 255 from 16 elements on (https://github.com/open-mpi/ompi/issues/8045),
// and MPICH 4.0 (Debian 12's) compares unsigned types as signed in MPI_MIN/MPI_MAX
// (https://github.com/pmodels/mpich/issues/6083). Bytes widened to int32 are in
// 0..255, where every library is right, and P bytes cannot overflow a 32-bit sum.
void all_reduce_uint8(Collective& c, const World& world) {
  std::vector<int32_t> wide(static_cast<size_t>(c.length));
  const auto* bytes = static_cast<const uint8_t*>(c.input.data());
  for (int64_t i = 0; i < c.length; ++i) wide[i] = bytes[i];
  in_chunks(wide.data(), c.length, sizeof(int32_t), [&](char* data, int n) {
    run_request("MPI_Iallreduce", world, [&](MPI_Request* request) {
      return MPI_Iallreduce(MPI_IN_PLACE, data, n, MPI_INT32_T, mpi_op(c.param), world.comm, request);
    });
  });
  c.output = std::move(c.input);
  c.output_length = c.length;
  auto* out = static_cast<uint8_t*>(c.output.data());
  for (int64_t i = 0; i < c.length; ++i) out[i] = static_cast<uint8_t>(wide[i] & 0xff);
}

void all_reduce(Collective& c, const World& world) {
  if (c.dtype == Dtype::Uint8) return all_reduce_uint8(c, world);
  // In place: the copy of the input becomes the result.
  c.output = std::move(c.input);
  c.output_length = c.length;
  in_chunks(c.output.data(), c.length, element_size(c.dtype), [&](char* data, int n) {
    run_request("MPI_Iallreduce", world, [&](MPI_Request* request) {
      return MPI_Iallreduce(MPI_IN_PLACE, data, n, mpi_type(c.dtype), mpi_op(c.param), world.comm, request);
    });
  });
}

void broadcast(Collective& c, const World& world) {
  if (world.rank == c.param) {
    c.output = std::move(c.input);
  } else {
    c.output = allocate_or_abort(c.length, c.dtype, c, world);
  }
  c.output_length = c.length;
  in_chunks(c.output.data(), c.length, element_size(c.dtype), [&](char* data, int n) {
    run_request("MPI_Ibcast", world, [&](MPI_Request* request) {
      return MPI_Ibcast(data, n, mpi_type(c.dtype), static_cast<int>(c.param), world.comm, request);
    });
  });
}

// out[i] = ((seg_0[i] + seg_1[i]) + seg_2[i]) + ...: rank order, in the element type.
template <class T>
void sum_in_rank_order(T* out, const T* segments, int64_t n, int ranks) {
  std::memcpy(out, segments, static_cast<size_t>(n) * sizeof(T));
  for (int q = 1; q < ranks; ++q) {
    const T* s = segments + static_cast<int64_t>(q) * n;
    for (int64_t i = 0; i < n; ++i) out[i] += s[i];
  }
}

// Rank r receives segment r of every rank (MPI_Ialltoallv), then sums them in rank
// order: deterministic, unlike MPI_Reduce_scatter, whose summation order is unspecified.
void reduce_scatter(Collective& c, const World& world) {
  const int p = world.size;
  std::vector<int> send_counts(p), send_offsets(p), recv_counts(p), recv_offsets(p);
  int64_t at = 0;
  for (int r = 0; r < p; ++r) {
    send_counts[r] = as_count(c.counts[r], c);
    send_offsets[r] = as_count(at, c);
    at += c.counts[r];
  }
  const int mine = send_counts[world.rank];
  as_count(static_cast<int64_t>(mine) * p, c);
  for (int q = 0; q < p; ++q) {
    recv_counts[q] = mine;
    recv_offsets[q] = q * mine;
  }
  OwnedBuffer segments = allocate_or_abort(static_cast<int64_t>(mine) * p, c.dtype, c, world);
  c.output = allocate_or_abort(mine, c.dtype, c, world);
  c.output_length = mine;
  const MPI_Datatype type = mpi_type(c.dtype);
  run_request("MPI_Ialltoallv", world, [&](MPI_Request* request) {
    return MPI_Ialltoallv(c.input.data(), send_counts.data(), send_offsets.data(), type, segments.data(),
                          recv_counts.data(), recv_offsets.data(), type, world.comm, request);
  });
  if (c.dtype == Dtype::Float32)
    sum_in_rank_order(static_cast<float*>(c.output.data()), static_cast<const float*>(segments.data()), mine, p);
  else
    sum_in_rank_order(static_cast<double*>(c.output.data()), static_cast<const double*>(segments.data()), mine, p);
}

}  // namespace

void run_collective(Collective& c, const World& world) {
  const std::vector<int64_t> table = agree(c, world);
  switch (c.kind) {
    case Kind::AllGather: all_gather(c, world, table); break;
    case Kind::AllReduce: all_reduce(c, world); break;
    case Kind::ReduceScatter: reduce_scatter(c, world); break;
    case Kind::Broadcast: broadcast(c, world); break;
    // The exchange in agree() is itself a barrier: no rank completes an allgather
    // before every rank has entered it.
    case Kind::Barrier:
    case Kind::Finalize: break;
  }
}

}  // namespace mbvr::mpi
