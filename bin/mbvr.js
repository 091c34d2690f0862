#!/usr/bin/env node
// `mbvr report ...`: the command line of the package (src/report/cli.ts, built to dist/).
'use strict';
const { main } = require('../dist/report/cli.js');

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(`mbvr: ${error && error.stack ? error.stack : error}`);
    process.exitCode = 1;
  },
);
