// The collectives themselves: plain MPI on owned buffers, no Node-API. Everything here
// runs on the communication thread (comm_thread.h), one collective at a time.
//
// Every collective starts with the same small MPI_Allgather of a descriptor of the call
// (which collective, element type, length, op or root, a hash of counts), so that all
// ranks see every rank's call before any data moves (Horovod's negotiation). Calls that
// do not match fail on every rank with the same message naming the odd rank(s), instead
// of hanging or truncating; allGather reads its counts from the same exchange. A rank
// whose call had invalid arguments (its caller got a TypeError/RangeError) still takes
// part in the exchange with its error message, so the call fails on every rank, naming
// that rank, and the ranks' sequences of calls stay aligned.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "owned_buffer.h"

namespace mbvr::mpi {

// Finalize is not a collective of the Communicator: it is the agreement exchange alone,
// made before MPI_Finalize (world.cpp), so that a rank that leaves while another still
// waits in a collective ends the job instead of leaving it hung.
enum class Kind : int64_t { AllGather = 1, AllReduce, ReduceScatter, Broadcast, Barrier, Finalize };
enum class Dtype : int64_t { None = 0, Float32, Float64, Int32, Uint8 };
enum class ReduceOp : int64_t { Sum = 0, Max, Min };

const char* kind_name(Kind kind);     // "allGather"
const char* dtype_name(Dtype dtype);  // "Float32Array"
size_t element_size(Dtype dtype);

// The process's view of MPI_COMM_WORLD, filled by init_world (world.h).
struct World {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  int thread_level = 0;  // what MPI_Init_thread provided
  std::string library;   // MPI_Get_library_version, first line
  bool initialized = false;
  bool finalized = false;
};

// One call, as the JS thread described it. Sizes are in elements.
struct Collective {
  Kind kind = Kind::Barrier;
  Dtype dtype = Dtype::None;
  int64_t length = 0;             // this rank's data length
  int64_t param = 0;              // allReduce: a ReduceOp; broadcast: the root
  bool has_counts = false;        // allGather: counts given; reduceScatter: always
  std::vector<int64_t> counts;    // per rank, when has_counts
  std::string invalid;            // non-empty: this rank's arguments were rejected, so
                                  // the call only fails everywhere, with this message
  OwnedBuffer input;              // a copy of this rank's data (broadcast: root only)
  OwnedBuffer output;             // the result, written here
  int64_t output_length = 0;
  bool in_place = false;          // allGather with counts: the input was copied to its
                                  // place in `output` instead of to `input`
};

// A failure to report to the caller as a JS Error: an MPI error on this rank (with MPI's
// error string and the rank), or calls that do not match (the same text on every rank).
struct CommError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Runs c on every rank of world. Throws CommError. A local failure after the ranks have
// agreed to move data (out of memory for the result) aborts the job instead: the other
// ranks are then committed to the exchange and would otherwise wait forever.
void run_collective(Collective& c, const World& world);

// Throws CommError("<call> failed on rank r of n: <MPI's error string>") unless rc is
// MPI_SUCCESS.
void check(int rc, const char* call, const World& world);

}  // namespace mbvr::mpi
