# The MPI communicator addon (mbvr_mpi.node, loaded by mbvr/mpi): a separate target so
# that the main addon never depends on libmpi. Built only when CMake finds an MPI.
