// MPI's start and end for this process, on the communication thread.
#pragma once

#include "collective.h"

namespace mbvr::mpi {

// MPI_Init_thread asking for MPI_THREAD_FUNNELED (one thread makes every call), then
// MPI_ERRORS_RETURN on MPI_COMM_WORLD so that errors come back as codes, and the
// world's rank, size, thread level and library version. Throws CommError.
void init_world(World& world);

// The agreement exchange (every rank finalizes, or the job ends), then MPI_Finalize.
// Throws CommError.
void finalize_world(World& world);

// "single", "funneled", "serialized" or "multiple".
const char* thread_level_name(int level);

}  // namespace mbvr::mpi
