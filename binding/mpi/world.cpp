#include "world.h"

#include <string>

namespace mbvr::mpi {

const char* thread_level_name(int level) {
  if (level == MPI_THREAD_SINGLE) return "single";
  if (level == MPI_THREAD_FUNNELED) return "funneled";
  if (level == MPI_THREAD_SERIALIZED) return "serialized";
  if (level == MPI_THREAD_MULTIPLE) return "multiple";
  return "unknown";
}

void init_world(World& world) {
  int already = 0;
  MPI_Initialized(&already);
  if (already)
    throw CommError("mbvr/mpi: MPI was already initialized in this process by other code; "
                    "mbvr/mpi must make MPI's calls itself, on its own thread");
  int provided = MPI_THREAD_SINGLE;
  // Errors in MPI_Init_thread are fatal by default (MPI_ERRORS_ARE_FATAL): MPI prints
  // its own explanation and ends the process; a return code is checked all the same.
  const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  if (rc != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int length = 0;
    MPI_Error_string(rc, text, &length);
    throw CommError(std::string("mbvr/mpi: MPI_Init_thread failed: ") + text);
  }
  world.initialized = true;
  world.comm = MPI_COMM_WORLD;
  world.thread_level = provided;
  check(MPI_Comm_set_errhandler(world.comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", world);
  check(MPI_Comm_rank(world.comm, &world.rank), "MPI_Comm_rank", world);
  check(MPI_Comm_size(world.comm, &world.size), "MPI_Comm_size", world);

  char version[MPI_MAX_LIBRARY_VERSION_STRING] = "";
  int length = 0;
  check(MPI_Get_library_version(version, &length), "MPI_Get_library_version", world);
  world.library.assign(version, static_cast<size_t>(length > 0 ? length : 0));
  const size_t eol = world.library.find_first_of("\r\n");
  if (eol != std::string::npos) world.library.resize(eol);
  while (!world.library.empty() && (world.library.back() == ' ' || world.library.back() == '\0'))
    world.library.pop_back();
}

void finalize_world(World& world) {
  if (!world.initialized || world.finalized) return;
  // The agreement exchange first: it returns once every rank finalizes too, and ends the
  // job if another rank is in a collective instead (collective.cpp, agree()). MPI_Finalize
  // alone would wait for such a rank forever, and it for this one.
  Collective leave;
  leave.kind = Kind::Finalize;
  run_collective(leave, world);
  world.finalized = true;  // even if it fails: MPI may not be called again either way
  check(MPI_Finalize(), "MPI_Finalize", world);
}

}  // namespace mbvr::mpi
