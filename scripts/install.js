// `npm install` hook: use a prebuilt or already-built addon when one loads, otherwise
// build from source with cmake-js. (npm 11 runs this only for the root project or when
// the consumer approved mbvr's scripts; the package works from prebuilds/ regardless.)
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const force = process.env.MBVR_BUILD_FROM_SOURCE === '1';
if (!force) {
  try {
    require('node-gyp-build')(root);
    process.exit(0);
  } catch {
    // nothing loadable: build below
  }
}
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
