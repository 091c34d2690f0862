// `npm install` hook: use a prebuilt or already-built addon when one loads, otherwise
// build from source with cmake-js. npm 11 runs this only for the root project or when
// the consumer approved mbvr's scripts; the package works from prebuilds/ regardless.
// The build tools (cmake-js, node-addon-api, node-api-headers) are not dependencies of
// the package: a consumer who needs a build adds them, as the message below says.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const fs = require('node:fs');

const root = path.join(__dirname, '..');
// mbvr/mpi is never prebuilt (an MPI binary is tied to the MPI it was built against):
// where an MPI is installed and its addon is missing, build.
const onPath = (name) =>
  (process.env.PATH || '').split(path.delimiter).some((dir) => dir && fs.existsSync(path.join(dir, name)));
const wantsMpi = onPath('mpicc') && !fs.existsSync(path.join(root, 'build', 'Release', 'mpi', 'mbvr_mpi.node'));
const force = process.env.MBVR_BUILD_FROM_SOURCE === '1' || wantsMpi;
if (!force) {
  try {
    require('node-gyp-build')(root);
    process.exit(0);
  } catch {
    // nothing loadable: build below
  }
}
let cmakeJs;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  require.resolve('node-addon-api', { paths: [root] });
  require.resolve('node-api-headers', { paths: [root] });
} catch {
  // Not fatal: installing goes on, and loading mbvr (or mbvr/mpi's init()) repeats what to do.
  let prebuilt = false;
  try {
    require('node-gyp-build')(root);
    prebuilt = true;
  } catch {}
  console.warn(
    [
      prebuilt
        ? 'mbvr: an MPI is installed, but mbvr/mpi (data-parallel training) is built from source and the tools to build it are not installed.'
        : `mbvr: no prebuilt binary fits ${process.platform}-${process.arch} (Node.js ${process.version}), and the tools to build one are not installed.`,
      'To build it (needs CMake >= 3.18 and a C++17 compiler, GCC or Clang):',
      '    npm install --save-dev cmake-js node-addon-api node-api-headers',
      '    npm rebuild mbvr',
    ].join('\n'),
  );
  process.exit(0);
}
const result = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
