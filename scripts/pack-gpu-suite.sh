#!/usr/bin/env bash
# Prepares what scripts/gpu-check.sh needs on the GPU machine, which has no Node.js,
# no npm and no registry: our Node binary (shared/gpu/pack-node.sh) and the test suite
# compiled to plain JavaScript in .device/suite/ (tests that need npm packages beyond
# the addon - fast-check, tfjs, vega, npm itself - are left out). Run from the root after
# building the addon with CUDA (npm install), then call the device with
#   carry: [".device", "build/Release/mbvr.node", "dist"]
#   command: source .device/remote-env.sh && bash scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${MBVR_SHARED:-../shared}
bash "$shared/gpu/pack-node.sh"
npm run build:ts >/dev/null
rm -rf .device/suite
npx tsc -p tsconfig.gpu.json
# `require('mbvr')` from the suite's folder (the tests' child processes) finds this
# package.json and the compiled dist/ beside it.
cp package.json .device/suite/package.json
cp -r dist .device/suite/dist
du -sh .device build/Release/mbvr.node dist | sed 's/^/carry: /'
