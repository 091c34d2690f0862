// Prints how init() fails when the addon cannot be loaded (MBVR_MPI_ADDON_PATH points at
// a missing or broken file): test/mpi-comm.test.ts checks the message. Importing
// mbvr/mpi itself must not throw, so the import comes first and is reported.
import * as mpi from '../../src/mpi';

process.stdout.write(`imported: ${typeof mpi.init}\n`);
mpi.init().then(
  () => process.stdout.write('init() resolved\n'),
  (error: Error) => process.stdout.write(`init() rejected: ${error.constructor.name}: ${error.message}\n`),
);
