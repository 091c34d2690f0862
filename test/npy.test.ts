// saveNpy / loadNpy: round trips of every dtype and shape, the header variants numpy and
// others write, every refusal with its exact message, and (where Python has numpy) files
// exchanged with numpy itself.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadNpy, saveNpy } from '../src/npy';
import { rng, suiteSeed } from './helpers';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mbvr-npy-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));
const file = (name: string) => path.join(work, name);
const random = rng(suiteSeed + 900);

/** A .npy file from parts: magic, version, header text (padded as given), data bytes. */
function rawNpy(name: string, { major = 1, header, data = Buffer.alloc(0), pad = 64 }: { major?: number; header: string; data?: Uint8Array; pad?: number }): string {
  const prefix = 8 + (major === 1 ? 2 : 4);
  const text = header + ' '.repeat((pad - ((prefix + header.length + 1) % pad)) % pad) + '\n';
  const head = Buffer.alloc(prefix);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]).copy(head);
  if (major === 1) head.writeUInt16LE(Buffer.byteLength(text), 8);
  else head.writeUInt32LE(Buffer.byteLength(text), 8);
  fs.writeFileSync(file(name), Buffer.concat([head, Buffer.from(text, major === 3 ? 'utf8' : 'latin1'), data]));
  return file(name);
}

const bytesOf = (a: Float32Array | Int32Array | BigInt64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function throwsMessage(fn: () => unknown, message: string, Kind: typeof Error = Error): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Kind, `${Kind.name} expected, got ${(e as Error)?.constructor?.name}`);
    assert.equal((e as Error).message, message);
    return true;
  });
}

describe('saveNpy / loadNpy', () => {
  it('round-trips float32, int32 and int64 in every shape', () => {
    const shapes = [[], [0], [1], [7], [3, 4], [2, 3, 5], [1, 1, 2, 3], [4, 0, 2]];
    for (const shape of shapes) {
      const n = shape.reduce((a, b) => a * b, 1);
      const f = Float32Array.from({ length: n }, () => (random() - 0.5) * 1e3);
      const i32 = Int32Array.from({ length: n }, () => Math.floor((random() - 0.5) * 2 ** 32));
      const i64 = BigInt64Array.from({ length: n }, () => BigInt(Math.floor((random() - 0.5) * 2 ** 62)));
      const small64 = BigInt64Array.from(i32, (v) => BigInt(v));
      for (const [array, dtype] of [[f, 'float32'], [i32, 'int32'], [i64, 'int64']] as const) {
        saveNpy(file('a.npy'), array, shape);
        const back = loadNpy(file('a.npy'));
        assert.deepEqual(back.shape, shape);
        assert.equal(back.dtype, dtype);
        // (an empty int64 array fits int32 too: it loads as an empty Int32Array)
        assert.deepEqual(back.data, dtype === 'int64' && n === 0 ? new Int32Array(0) : array, `${dtype} [${shape}]`);
        // numpy's layout: the header block is a multiple of 64 bytes and ends in '\n'.
        const bytes = fs.readFileSync(file('a.npy'));
        const headerEnd = 10 + bytes.readUInt16LE(8);
        assert.equal(headerEnd % 64, 0);
        assert.equal(bytes[headerEnd - 1], 0x0a);
        assert.equal(bytes.length, headerEnd + array.byteLength);
      }
      // int64 whose values all fit in int32 loads as an Int32Array.
      saveNpy(file('b.npy'), small64, shape);
      const narrow = loadNpy(file('b.npy'));
      assert.equal(narrow.dtype, 'int64');
      assert.ok(narrow.data instanceof Int32Array);
      assert.deepEqual(narrow.data, i32);
    }
    // The int32 limits still fit; one past them keeps the BigInt64Array.
    saveNpy(file('edge.npy'), BigInt64Array.from([-(2n ** 31n), 2n ** 31n - 1n]));
    assert.deepEqual(loadNpy(file('edge.npy')).data, Int32Array.from([-(2 ** 31), 2 ** 31 - 1]));
    for (const beyond of [2n ** 31n, -(2n ** 31n) - 1n]) {
      saveNpy(file('edge.npy'), BigInt64Array.from([0n, beyond]));
      assert.deepEqual(loadNpy(file('edge.npy')).data, BigInt64Array.from([0n, beyond]));
    }
    // Without a shape: one dimension. A subarray writes only its own elements.
    const base = Float32Array.from([1, 2, 3, 4, 5]);
    saveNpy(file('c.npy'), base.subarray(1, 4));
    assert.deepEqual(loadNpy(file('c.npy')), { data: Float32Array.from([2, 3, 4]), shape: [3], dtype: 'float32' });
  });

  it('writes a 2.0 header when 1.0 cannot hold it, and reads 1.0, 2.0 and 3.0 headers in their variants', () => {
    const shape = new Array(23000).fill(1).concat([3]);
    saveNpy(file('wide.npy'), Int32Array.from([7, 8, 9]), shape);
    const bytes = fs.readFileSync(file('wide.npy'));
    assert.equal(bytes[6], 2);
    assert.equal((12 + bytes.readUInt32LE(8)) % 64, 0);
    assert.deepEqual(loadNpy(file('wide.npy')).data, Int32Array.from([7, 8, 9]));

    const data = Float32Array.from([1.5, -2, 3.25, 4, 5, 6]);
    const variants: [string, Parameters<typeof rawNpy>[1]][] = [
      ['2.0', { major: 2, header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data: bytesOf(data) }],
      ['3.0 (utf-8)', { major: 3, header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data: bytesOf(data) }],
      ['16-byte padding, no trailing comma', { header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", data: bytesOf(data), pad: 16 }],
      ['keys in another order, double quotes', { header: '{"shape": (2, 3), "fortran_order": False, "descr": "<f4"}', data: bytesOf(data) }],
      ['Python 2 long sizes', { header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", data: bytesOf(data) }],
      ["native byte order '=f4' (a little-endian writer's)", { header: "{'descr': '=f4', 'fortran_order': False, 'shape': (2, 3), }", data: bytesOf(data) }],
    ];
    for (const [what, parts] of variants) {
      const back = loadNpy(rawNpy('v.npy', parts));
      assert.deepEqual(back, { data, shape: [2, 3], dtype: 'float32' }, what);
    }
    // Fortran order is harmless when at most one size exceeds 1.
    const column = loadNpy(rawNpy('f1.npy', { header: "{'descr': '<i4', 'fortran_order': True, 'shape': (3, 1), }", data: bytesOf(Int32Array.from([1, 2, 3])) }));
    assert.deepEqual(column.data, Int32Array.from([1, 2, 3]));
  });

  it('refuses what it cannot read, naming the file and saying what to do', () => {
    const six = bytesOf(new Float32Array(6));
    const header = (descr: string, extra = "'fortran_order': False, 'shape': (2, 3)") => `{'descr': '${descr}', ${extra}, }`;
    fs.writeFileSync(file('text.npy'), 'not an array at all');
    throwsMessage(() => loadNpy(file('text.npy')), `${file('text.npy')}: not a .npy file (it does not start with \\x93NUMPY)`);
    fs.writeFileSync(file('short.npy'), Buffer.from([0x93, 0x4e, 0x55]));
    throwsMessage(() => loadNpy(file('short.npy')), `${file('short.npy')}: not a .npy file (it does not start with \\x93NUMPY)`);
    const v4 = rawNpy('v4.npy', { major: 2, header: header('<f4'), data: six });
    fs.writeFileSync(v4, Buffer.concat([fs.readFileSync(v4).subarray(0, 6), Buffer.from([4, 0]), fs.readFileSync(v4).subarray(8)]));
    throwsMessage(() => loadNpy(v4), `${v4}: unsupported .npy format version 4.0 (1.0, 2.0 and 3.0 are read)`);
    const cut = rawNpy('cut.npy', { header: header('<f4'), data: six });
    fs.writeFileSync(cut, fs.readFileSync(cut).subarray(0, 40));
    throwsMessage(() => loadNpy(cut), `${cut}: truncated header: expected 118 bytes of header, found 30`);
    const truncated = rawNpy('trunc.npy', { header: header('<f4'), data: six.subarray(0, 20) });
    throwsMessage(() => loadNpy(truncated), `${truncated}: truncated data: expected 24 bytes of data (shape [2, 3], float32), found 20`);
    const long = rawNpy('long.npy', { header: header('<f4'), data: Buffer.concat([six, six]) });
    throwsMessage(() => loadNpy(long), `${long}: expected 24 bytes of data (shape [2, 3], float32), found 48`);
    const fortran = rawNpy('fortran.npy', { header: header('<f4', "'fortran_order': True, 'shape': (2, 3)"), data: six });
    throwsMessage(() => loadNpy(fortran), `${fortran}: stored in Fortran order; save it in C order: numpy.save(path, numpy.ascontiguousarray(a))`);
    const f64 = rawNpy('f64.npy', { header: header('<f8'), data: Buffer.concat([six, six]) });
    throwsMessage(() => loadNpy(f64), `${f64}: unsupported dtype '<f8' (float64); convert it with a.astype('float32') before saving`);
    const f16 = rawNpy('f16.npy', { header: header('<f2'), data: six.subarray(0, 12) });
    throwsMessage(() => loadNpy(f16), `${f16}: unsupported dtype '<f2' (float16); convert it with a.astype('float32') before saving`);
    const big = rawNpy('big.npy', { header: header('>f4'), data: six });
    throwsMessage(() => loadNpy(big), `${big}: big-endian data (dtype '>f4'); save it little-endian: a.astype('<f4')`);
    const u8 = rawNpy('u8.npy', { header: header('|u1'), data: six.subarray(0, 6) });
    throwsMessage(() => loadNpy(u8), `${u8}: unsupported dtype '|u1'; convert it with a.astype('int32') (or 'int64') before saving`);
    const obj = rawNpy('obj.npy', { header: header('|O'), data: six });
    throwsMessage(() => loadNpy(obj), `${obj}: unsupported dtype '|O'; mbvr reads float32 ('<f4'), int32 ('<i4') and int64 ('<i8')`);
    const fields = rawNpy('fields.npy', { header: "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (3,), }", data: six });
    throwsMessage(() => loadNpy(fields), `${fields}: a structured array (a dtype of named fields); save one plain float32 or integer array`);
    const oneField = rawNpy('onefield.npy', { header: "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", data: six });
    throwsMessage(() => loadNpy(oneField), `${oneField}: a structured array (a dtype of named fields); save one plain float32 or integer array`);
    const twice = rawNpy('twice.npy', { header: "{'descr': '<f4', 'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", data: six });
    throwsMessage(() => loadNpy(twice), `${twice}: unreadable .npy header ('descr' appears 2 times): {'descr': '<f4', 'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }`);
    const noShape = rawNpy('noshape.npy', { header: "{'descr': '<f4', 'fortran_order': False, }", data: six });
    throwsMessage(() => loadNpy(noShape), `${noShape}: unreadable .npy header (no 'shape'): {'descr': '<f4', 'fortran_order': False, }`);
    throwsMessage(() => loadNpy(file('absent.npy')), `${file('absent.npy')}: cannot read it: no such file`);
    fs.mkdirSync(file('folder.npy'), { recursive: true });
    throwsMessage(() => loadNpy(file('folder.npy')), `${file('folder.npy')}: cannot read it: a directory, not a .npy file`);
  });

  it('refuses bad arguments to saveNpy with a TypeError or RangeError naming them', () => {
    throwsMessage(() => saveNpy(file('x.npy'), Float64Array.from([1]) as never), 'Expected a Float32Array, Int32Array or BigInt64Array for array but received Float64Array', TypeError);
    throwsMessage(() => saveNpy(file('x.npy'), [1, 2] as never), 'Expected a Float32Array, Int32Array or BigInt64Array for array but received Array', TypeError);
    throwsMessage(() => saveNpy(file('x.npy'), new Float32Array(6), [4, 2]), "Expected sizes whose product is 6 (the array's length) for shape but received [4, 2]", RangeError);
    throwsMessage(() => saveNpy(file('x.npy'), new Float32Array(6), [2, -3]), 'Expected an array of whole numbers >= 0 for shape but received [2, -3]', RangeError);
    throwsMessage(() => saveNpy(file('x.npy'), new Float32Array(6), '6' as never), "Expected an array of sizes for shape but received '6' of type string", TypeError);
    throwsMessage(() => saveNpy(file('x.npy'), new Float32Array(2), ['2'] as never), "Expected an array of whole numbers >= 0 for shape but received ['2' of type string]", TypeError);
    const moved = new Float32Array(4);
    structuredClone(moved.buffer, { transfer: [moved.buffer] });
    throwsMessage(() => saveNpy(file('x.npy'), moved), 'Expected an array whose buffer is usable for array but received one whose ArrayBuffer is detached (transferred)', TypeError);
    throwsMessage(() => saveNpy(7 as never, new Float32Array(6)), 'Expected a string for path but received 7 of type number', TypeError);
    throwsMessage(() => loadNpy(undefined as never), 'Expected a string for path but received undefined', TypeError);
  });

  const numpy = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
  it('exchanges files with numpy', { skip: !numpy && 'python3 with numpy not found' }, () => {
    const f = Float32Array.from({ length: 12 }, () => random() - 0.5);
    saveNpy(file('to-numpy.npy'), f, [3, 4]);
    saveNpy(file('to-numpy-i8.npy'), BigInt64Array.from([-(2n ** 40n), 5n, 2n ** 62n]));
    const script = `
import numpy as np, sys
a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
assert a.dtype == np.float32 and a.shape == (3, 4), (a.dtype, a.shape)
assert b.dtype == np.int64 and b.tolist() == [-(2**40), 5, 2**62], b
print(' '.join(repr(float(x)) for x in a.ravel()))
np.save(sys.argv[3], (a * 2).astype(np.float32))
np.save(sys.argv[4], np.arange(6).reshape(2, 3))            # int64, numpy's default
np.save(sys.argv[5], np.asfortranarray(np.ones((2, 3), np.float32)))
np.save(sys.argv[6], np.ones(3))                             # float64
`;
    const outs = ['from-numpy.npy', 'from-numpy-i8.npy', 'from-numpy-f.npy', 'from-numpy-f8.npy'].map(file);
    const run = spawnSync('python3', ['-c', script, file('to-numpy.npy'), file('to-numpy-i8.npy'), ...outs], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(run.stdout.trim().split(' ').map(Number), Array.from(f));
    assert.deepEqual(loadNpy(outs[0]), { data: f.map((x) => 2 * x), shape: [3, 4], dtype: 'float32' });
    assert.deepEqual(loadNpy(outs[1]), { data: Int32Array.from([0, 1, 2, 3, 4, 5]), shape: [2, 3], dtype: 'int64' });
    assert.throws(() => loadNpy(outs[2]), /stored in Fortran order/);
    assert.throws(() => loadNpy(outs[3]), /unsupported dtype '<f8' \(float64\); convert it with a.astype\('float32'\)/);
  });
});
