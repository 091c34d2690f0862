// A worker thread that calls init(): collectives.ts expects the rejection's message.
import { parentPort } from 'node:worker_threads';
import { init } from '../../src/mpi';

init().then(
  () => parentPort?.postMessage('init() resolved in a worker thread'),
  (error: Error) => parentPort?.postMessage(error.message),
);
