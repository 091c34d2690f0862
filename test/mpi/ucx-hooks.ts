// Run under mpirun by test/mpi-comm.test.ts with UCX_MEM_LOG_LEVEL=debug: starts MPI and
// meets the other ranks once. UCX, where the MPI uses it, logs each libc function it
// patches; mbvr/mpi's init() must have turned that off (docs/mpi.md, MPI quirks).
import { init } from '../../src/mpi';

void init().then(async (comm) => {
  await comm.barrier();
  console.log(`rank ${comm.rank} started; UCX_MEM_EVENTS=${process.env.UCX_MEM_EVENTS}`);
});
