// The package as a user gets it: `npm pack`, install the tarball into a fresh folder
// (npm 11 skips our install script there), and load it from the shipped prebuilds.
// Without a fitting binary, the error names the command that builds one.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';

const root = path.join(__dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mbvr-package-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('the packed package', { timeout: 300_000 }, () => {
  const consumer = path.join(work, 'consumer');
  const probe = `const m = require('mbvr');
    const out = m.mbvrLossSync({ batch: 2, dim: 2, query: new Float32Array([1, 0, 0, 1]), fused: new Float32Array([1, 0, 0, 1]) },
                               { alpha: 0, beta: 0, gamma: 0, backend: 'cpu' });
    console.log(out.loss.toFixed(6));`;

  it('installs from its tarball and loads from prebuilds/ with no compiler step', () => {
    run(process.execPath, [path.join(root, 'scripts', 'prebuild.js')], root);
    const tarball = run(npm, ['pack', '--silent', '--pack-destination', work], root).trim().split('\n').pop()!;
    fs.mkdirSync(consumer);
    fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    run(npm, ['install', path.join(work, tarball), '--no-audit', '--no-fund', '--prefer-offline'], consumer);
    const installed = path.join(consumer, 'node_modules', 'mbvr');
    assert.ok(!fs.existsSync(path.join(installed, 'build')), 'no build/ folder: the binary must come from prebuilds/');
    assert.ok(fs.readdirSync(path.join(installed, 'prebuilds', `${process.platform}-${process.arch}`)).length > 0);
    // Two unit rows, tau = 0.05: z = [[20, 0], [0, 20]] -> each softmax term log(1 + e^-20).
    const expected = (2 * Math.log1p(Math.exp(-20))).toFixed(6);
    assert.equal(run(process.execPath, ['-e', probe], consumer).trim(), expected);
    assert.equal(
      run(process.execPath, ['--input-type=module', '-e', "import { backends } from 'mbvr'; console.log(backends().cpu.available)"], consumer).trim(),
      'true',
    );
  });

  it('without a fitting binary, fails with the command that builds one', () => {
    const installed = path.join(consumer, 'node_modules', 'mbvr');
    fs.rmSync(path.join(installed, 'prebuilds'), { recursive: true, force: true });
    assert.throws(
      () => run(process.execPath, ['-e', probe], consumer),
      (error: { stderr?: string }) =>
        /could not load its native addon/.test(error.stderr ?? '') &&
        (error.stderr ?? '').includes('npm install-scripts approve mbvr && npm rebuild mbvr'),
    );
  });
});
