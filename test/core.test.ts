// The C++ tests of the compute core (cpp/tests/*.cpp, see cmake/tests.cmake), from
// `npm test`: a plain CMake build of the core without Node (CUDA off) in
// build/core-tests, then ctest. The build is incremental: when nothing changed it is a
// no-op, after a source change only that file recompiles. Skipped, saying why, where
// cmake or a C++ compiler is missing (an installed package has no need of either).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';

const root = path.join(__dirname, '..');
const buildDir = path.join(root, 'build', 'core-tests');

interface Ran {
  ok: boolean;
  missing: boolean; // the program itself was not found
  output: string;
}

function run(cmd: string, args: string[], cwd = root): Ran {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  return { ok: r.status === 0, missing, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

// Why the tests cannot run here, or undefined when they can. The compiler is the one
// CMake would pick: $CXX if set, else c++, g++ or clang++ on the PATH.
function missingTool(): string | undefined {
  if (run('cmake', ['--version']).missing) return 'cmake is not on the PATH';
  if (run('ctest', ['--version']).missing) return 'ctest is not on the PATH';
  const compilers = process.env.CXX ? [process.env.CXX] : ['c++', 'g++', 'clang++'];
  // $CXX may carry flags ("clang++ -DX"), as CMake allows.
  const runs = (cxx: string) => {
    const [cmd, ...args] = cxx.trim().split(/\s+/);
    return run(cmd, [...args, '--version']).ok;
  };
  if (!compilers.some(runs))
    return `no C++ compiler found (tried ${compilers.join(', ')})`;
  return undefined;
}

const skip = missingTool();

describe('the C++ core tests (ctest)', { timeout: 15 * 60_000 }, () => {
  it('configure, build and pass', { skip }, () => {
    // Configuring an existing tree again is quick and keeps it on these options.
    const configure = run('cmake', ['-S', root, '-B', buildDir, '-DMBVR_TESTS=ON', '-DMBVR_CUDA=OFF',
                                    '-DCMAKE_BUILD_TYPE=Release']);
    assert.ok(configure.ok, `cmake configure failed:\n${configure.output}`);
    const build = run('cmake', ['--build', buildDir, '--parallel', '2']);
    assert.ok(build.ok, `cmake --build failed:\n${build.output}`);
    const ctest = run('ctest', ['--output-on-failure'], buildDir);
    assert.ok(ctest.ok, `ctest failed:\n${ctest.output}`);
    // A configured tree always has at least core_check: "No tests were found" is a failure.
    assert.match(ctest.output, /100% tests passed, 0 tests failed out of [1-9]/, ctest.output);
  });
});
