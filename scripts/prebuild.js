// `npm run prebuild`: writes prebuilds/<platform>-<arch>/ in prebuildify's layout, a
// Node-API binary that node-gyp-build finds without a compiler on the user's machine.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const prebuildify = require.resolve('prebuildify/bin.js');
const args = [prebuildify, '--napi', '--strip', '--node-gyp', path.join(__dirname, 'prebuild-node-gyp.js')];
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
// prebuildify moves build/Release/mbvr.node into prebuilds/: put a copy back, so the
// local build keeps loading (and stays what node-gyp-build prefers).
const built = path.join(root, 'build', 'Release', 'mbvr.node');
const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'mbvr.node');
if (result.status === 0 && !fs.existsSync(built) && fs.existsSync(prebuilt)) fs.copyFileSync(prebuilt, built);
process.exit(result.status ?? 1);
