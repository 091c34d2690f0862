// Run under `mpirun -np 2` by test/mpi-comm.test.ts: rank 1 fails in some way while
// rank 0 waits in a collective. The job must end, non-zero, within seconds; rank 0 must
// never get past its collective (it would print UNEXPECTED).
//   node --import tsx test/mpi/faults.ts <scenario>
import { init } from '../../src/mpi';

const scenario = process.argv[2];
const FAIL_AFTER_MS = 300;

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function main(): Promise<void> {
  const comm = await init();
  if (comm.size !== 2) throw new Error('faults.ts runs with exactly 2 ranks');
  await comm.barrier(); // both ranks are up

  if (comm.rank === 0) {
    say('rank 0 waiting');
    switch (scenario) {
      case 'busy':
        // Rank 1 starts a collective that rank 0 never joins, then fails: its
        // communication thread is inside that collective when the abort comes.
        setTimeout(() => say('UNEXPECTED: rank 0 outlived rank 1 by a minute'), 60_000);
        return;
      case 'sync-wait':
        comm.sync.barrier(); // blocks this JS thread
        break;
      case 'exit-code':
        await comm.allReduce(new Float64Array(8), 'sum');
        break;
      default:
        await comm.broadcast(new Int32Array(4), 1);
    }
    say('UNEXPECTED: rank 0 got past its collective');
    return;
  }

  if (scenario === 'busy') void comm.allReduce(new Float32Array(16), 'max');
  setTimeout(() => {
    say(`rank 1 fails now (${scenario})`);
    switch (scenario) {
      case 'throw':
      case 'busy':
      case 'sync-wait':
        throw new Error(`planned failure (${scenario})`);
      case 'rejection':
        void Promise.reject(new Error('planned unhandled rejection'));
        break;
      case 'exit-code':
        process.exit(3);
        break;
      case 'abort':
        comm.abort(5);
        break;
      case 'signal':
        // A moment for the launcher to forward the line above (MPICH's drops a killed rank's last output).
        setTimeout(() => process.kill(process.pid, 'SIGKILL'), 200);
        break;
      default:
        throw new Error(`unknown scenario ${scenario}`);
    }
  }, FAIL_AFTER_MS);
}

void main();
