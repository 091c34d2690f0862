// Run under mpirun by test/mpi-loss.test.ts. A rank that leaves, or tries to finalize,
// in the middle of a data-parallel loss:
//   exit-pending  rank 1 calls process.exit(0) right after starting the loss (its first
//                 collective is pending): the job must end, non-zero, not hang;
//   exit-between  rank 1 exits between two of the loss's collectives (none pending): the same;
//   finalize      rank 1 calls comm.finalize() while its loss is pending: the finalize
//                 rejects, and the loss completes on both ranks;
//   finalize-early  rank 1 finalizes, rank 0 starts a loss: the job must end, naming both;
//   exit-idle     rank 1 ends normally with nothing in flight while rank 0 computes a
//                 loss: the same.
import type { Communicator } from '../../src/communicator';
import { mbvrLoss } from '../../src/index';
import { init } from '../../src/mpi';
import { randomCase, rng } from '../helpers';

(async () => {
  const mode = process.argv[2];
  const comm = await init();
  const c = randomCase(rng(11), 600, 64, 1);
  if (mode === 'exit-pending') {
    const pending = mbvrLoss(c, { comm });
    if (comm.rank === 1) process.exit(0);
    await pending;
    console.log(`UNEXPECTED: rank ${comm.rank} finished`);
  } else if (mode === 'exit-between') {
    const leaving: Communicator = {
      rank: comm.rank,
      size: comm.size,
      allGather: (data, counts) => comm.allGather(data, counts),
      allReduce: (data, op) => {
        if (comm.rank === 1) process.exit(0); // after the gathers and the statistics, before the first allReduce
        return comm.allReduce(data, op);
      },
      reduceScatter: (data, counts) => comm.reduceScatter(data, counts),
      broadcast: (data, root) => comm.broadcast(data, root),
      barrier: () => comm.barrier(),
      hold: () => comm.hold(),
    };
    await mbvrLoss(c, { comm: leaving });
    console.log(`UNEXPECTED: rank ${comm.rank} finished`);
  } else if (mode === 'finalize-early' || mode === 'exit-idle') {
    if (comm.rank === 1) {
      if (mode === 'finalize-early') await comm.finalize();
      return; // and the process ends normally
    }
    await mbvrLoss(c, { comm });
    console.log(`UNEXPECTED: rank ${comm.rank} finished`);
  } else {
    const pending = mbvrLoss(c, { comm });
    if (comm.rank === 1) {
      const refused = await comm.finalize().then(() => 'finalized', (e: Error) => e.message);
      console.log(`rank 1 finalize: ${refused}`);
    }
    console.log(`rank ${comm.rank} loss ${(await pending).loss}`);
  }
})();
