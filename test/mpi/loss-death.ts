// Run under mpirun by test/mpi-loss.test.ts: rank 1 is killed (SIGKILL: nothing of its
// own runs) after the ranks have agreed on a data-parallel loss, while rank 0 waits in
// its collectives. The MPI runtime must end the job.
import { init } from '../../src/mpi';
import { mbvrLoss } from '../../src/index';
import { randomCase, rng } from '../helpers';

(async () => {
  const comm = await init();
  const c = randomCase(rng(7), 2000, 256, 1);
  const pending = mbvrLoss(c, { comm, alpha: 0, beta: 0, gamma: 0 });
  if (comm.rank === 1) {
    await comm.barrier().catch(() => undefined);
    console.log('rank 1 dies now');
    // A moment for the launcher to forward that line (MPICH's drops a killed rank's last output).
    await new Promise((resolve) => setTimeout(resolve, 200));
    process.kill(process.pid, 'SIGKILL');
  }
  await pending;
  await comm.barrier();
  console.log('UNEXPECTED: rank 0 finished');
})();
