// `npm run prebuild`: writes prebuilds/<platform>-<arch>/ in prebuildify's layout, a
// Node-API binary that node-gyp-build finds without a compiler on the user's machine.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const prebuildify = require.resolve('prebuildify/bin.js');
const args = [prebuildify, '--napi', '--strip', '--node-gyp', path.join(__dirname, 'prebuild-node-gyp.js')];
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
