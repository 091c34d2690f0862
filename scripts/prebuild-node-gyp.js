#!/usr/bin/env node
// Stands in for node-gyp when prebuildify calls it (prebuildify has no cmake-js
// backend): whatever the arguments, build build/Release/mbvr.node with cmake-js.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
