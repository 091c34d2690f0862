#!/usr/bin/env node
// `mbvr report ...`: the command line of the package (src/report/cli.ts, built to dist/).
// Exit codes: 0 done, 1 failed, 2 bad usage.
'use strict';
const path = require('node:path');

let cli;
try {
  cli = require('../dist/report/cli.js');
} catch (error) {
  // A git checkout that was never built: say how to build it rather than print a stack.
  if (error && error.code === 'MODULE_NOT_FOUND' && /dist[\\/]report[\\/]cli\.js/.test(String(error.message))) {
    console.error(`mbvr: ${path.join(__dirname, '..', 'dist')} is missing: build the package first (npm run build:ts)`);
    process.exit(1);
  }
  throw error;
}

cli.main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(`mbvr: ${error && error.stack ? error.stack : error}`);
    process.exitCode = 1;
  },
);
