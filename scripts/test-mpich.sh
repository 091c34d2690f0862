#!/usr/bin/env bash
# The MPI tests (test/mpi-*.test.ts) once more, against MPICH rather than the MPI that
# `npm test` finds first (Open MPI, on Debian, when both are installed): builds the MPI
# addon with MPICH's compiler wrapper into build-mpich/, then runs the tests with MPICH's
# launcher first on PATH and mbvr/mpi pointed at that addon (MBVR_MPI_ADDON_PATH).
# Debian/Ubuntu: apt-get install mpich libmpich-dev (beside openmpi-bin libopenmpi-dev).
set -euo pipefail
cd "$(dirname "$0")/.."

mpicc=${MPICH_MPICC:-/usr/bin/mpicc.mpich}
launcher=${MPICH_MPIRUN:-/usr/bin/mpirun.mpich}
if [ ! -x "$mpicc" ] || [ ! -x "$launcher" ]; then
  echo "test:mpich: MPICH not found ($mpicc, $launcher); Debian/Ubuntu: apt-get install mpich libmpich-dev" >&2
  exit 1
fi

npx cmake-js configure -O build-mpich --CDMPI_C_COMPILER="$mpicc" --CDMBVR_CUDA=OFF >/dev/null
cmake --build build-mpich --target mbvr_mpi
addon="$PWD/build-mpich/Release/mpi/mbvr_mpi.node"
ldd "$addon" | grep -q libmpich || { echo "test:mpich: $addon is not linked against MPICH" >&2; exit 1; }

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
ln -s "$launcher" "$bin/mpirun"
# Hydra (MPICH's launcher) starts its proxy from the folder it was started from.
ln -s "$(dirname "$launcher")/hydra_pmi_proxy" "$bin/hydra_pmi_proxy"
PATH="$bin:$PATH" MBVR_MPI_ADDON_PATH="$addon" \
  node --import tsx --test --test-concurrency=1 test/mpi-*.test.ts
