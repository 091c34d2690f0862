// The data-parallel loss (docs/math.md §6): this rank's rows of a global batch split by
// rows over a Communicator's ranks, and the exact global-batch loss and gradients.
//
//   agree       one small allGather of every rank's header (sizes, options, the facts of
//               its values, or the error its input raised): every rank takes the same
//               decision from it - all go on, or all reject - before any data moves
//   documents   allGather fused, visual, text (B x D each, as the weights need) and labels
//   statistics  native phase 1: this rank's queries against all B documents; L_mq's
//               column statistics are partial: merged with allReduce max, then the
//               rescaled sums with allReduce sum (2 B doubles), and every positive
//               gathered (B floats)
//   gradients   native phase 2: this rank's dQ and dS are final; the document gradients
//               (B x D partial sums) are reduce-scattered to their owners; the per-term
//               sums are summed over ranks
//   finish      native phase 3: / tau and the normalisation backward of the owned rows
//
// The steps are written once, as a generator of collective and native steps, and driven
// either with promises (mbvrLoss) or blocking (mbvrLossSync, through comm.sync).
import type { CommData, Communicator, ReduceOp } from './communicator';
import { DEFAULT_TEMPERATURE } from './defaults';
import { Described, describe, invalidParameterError } from './errors';
import { checkLoss, scalesOf, type CheckedLoss } from './loss-check';
import {
  native,
  type NativeColumnStats,
  type NativeDocuments,
  type NativeLossResult,
  type NativeLossShard,
  type NativeShardGradients,
} from './native';
import type { MbvrForwardResult, MbvrInputs, MbvrOptions, MbvrResult, Precision } from './types';
import { requireRepresentable } from './values';

type Result = MbvrResult | MbvrForwardResult;

// ---- the header every rank contributes --------------------------------------------

const HEADER_BYTES = 1024;
const HEADER_NUMBERS = 24;
const MESSAGE_BYTES = HEADER_BYTES - 8 * HEADER_NUMBERS;
const ERROR_CLASSES = [undefined, TypeError, RangeError, Error] as const;
const PRECISION_CODES: readonly Precision[] = ['fp32', 'tf32', 'bf16'];
const DOCUMENT_NAMES = ['fused', 'visual', 'text', 'shuffled'];

const enum H {
  Status, Rows, Dim, K, Visual, Text, Shuffled, Labels, Normalize, Grads, Temperature, Alpha, Beta, Gamma,
  Precision, QueryNorm, QueryFourth, DocumentNorm, DocumentFourth, DocumentName, MinNorm, Margin,
  Rank, // the rank the sender says it is: each must sit at its own place in the gathered headers
}

interface Header {
  numbers: Float64Array;
  message: string;
}

function encodeHeader(checked: CheckedLoss | undefined, error: unknown, rank: number): Uint8Array {
  const bytes = new Uint8Array(HEADER_BYTES);
  const h = new Float64Array(bytes.buffer, 0, HEADER_NUMBERS);
  h[H.Rank] = rank;
  if (!checked) {
    const e = error instanceof Error ? error : new Error(String(error));
    h[H.Status] = e instanceof TypeError ? 1 : e instanceof RangeError ? 2 : 3;
    new TextEncoder().encodeInto(e.message.slice(0, MESSAGE_BYTES / 3), bytes.subarray(8 * HEADER_NUMBERS));
    return bytes;
  }
  const { inputs, options: o, facts } = checked;
  const s = scalesOf(checked);
  h[H.Rows] = inputs.batch;
  h[H.Dim] = inputs.dim;
  h[H.K] = checked.k;
  h[H.Visual] = inputs.visual ? 1 : 0;
  h[H.Text] = inputs.text ? 1 : 0;
  h[H.Shuffled] = inputs.shuffled ? 1 : 0;
  h[H.Labels] = o.labels ? 1 : 0;
  h[H.Normalize] = s.normalize ? 1 : 0;
  h[H.Grads] = o.grads === false ? 0 : 1;
  h[H.Temperature] = s.temperature;
  h[H.Alpha] = o.alpha ?? 1;
  h[H.Beta] = o.beta ?? 1;
  h[H.Gamma] = o.gamma ?? 1;
  h[H.Precision] = PRECISION_CODES.indexOf((o.precision ?? 'fp32') as Precision);
  // The facts the global checks and the bf16 rule read: maxima (and a minimum) over rows.
  h[H.QueryNorm] = s.queryNorm;
  h[H.QueryFourth] = facts.query?.maxFourth ?? 0;
  h[H.DocumentNorm] = s.documentNorm;
  h[H.DocumentName] = DOCUMENT_NAMES.indexOf(s.documentName);
  let fourth = facts.fused?.maxFourth ?? 0;
  for (const [name, w] of [['visual', h[H.Alpha]], ['text', h[H.Beta]], ['shuffled', h[H.Gamma]]] as const)
    if (w > 0) fourth = Math.max(fourth, facts[name]?.maxFourth ?? 0);
  h[H.DocumentFourth] = fourth;
  h[H.MinNorm] = inputs.batch > 0 ? s.minNorm : Infinity;
  h[H.Margin] = s.margin;
  return bytes;
}

function decodeHeaders(all: Uint8Array, size: number): Header[] {
  const headers: Header[] = [];
  for (let r = 0; r < size; r++) {
    const bytes = all.slice(r * HEADER_BYTES, (r + 1) * HEADER_BYTES);
    const text = bytes.subarray(8 * HEADER_NUMBERS);
    const end = text.indexOf(0);
    headers.push({
      numbers: new Float64Array(bytes.buffer, 0, HEADER_NUMBERS),
      message: new TextDecoder().decode(end < 0 ? text : text.subarray(0, end)),
    });
  }
  return headers;
}

/** The same verdict on every rank: an error to throw, or nothing. */
function agree(headers: Header[], rank: number, ownError: unknown): void {
  // A transport that gives two processes one rank (or numbers them out of allGather's
  // order) would silently mix up rows: refuse, on every rank alike.
  const misplaced = headers.findIndex((h, r) => h.numbers[H.Rank] !== r);
  if (misplaced >= 0)
    throw new Error(
      `mbvr: the communicator's ranks are inconsistent: place ${misplaced} of allGather's result came from a process ` +
        `that says it is rank ${headers[misplaced].numbers[H.Rank]} (comm.rank must be distinct, 0 to comm.size - 1, in allGather's order)`,
    );
  const failed = headers.map((h, r) => (h.numbers[H.Status] !== 0 ? r : -1)).filter((r) => r >= 0);
  if (failed.length > 0) {
    if (failed.includes(rank)) throw ownError;
    const r = failed[0];
    const others = failed.length > 1 ? ` (and ${failed.length - 1} more rank${failed.length > 2 ? 's' : ''})` : '';
    const kind = ERROR_CLASSES[headers[r].numbers[H.Status]]?.name ?? 'Error';
    throw new Error(`mbvr: rank ${r}${others} rejected its input of the data-parallel loss: ${kind}: ${headers[r].message}`);
  }
  const same = (what: string, field: H, applies: (h: Float64Array) => boolean = () => true, show = (v: number) => String(v)) => {
    const ranks = headers.map((h, r) => [r, h.numbers] as const).filter(([, h]) => applies(h));
    if (ranks.length === 0) return;
    const [r0, first] = ranks[0];
    for (const [r, h] of ranks)
      if (h[field] !== first[field]) // (0 and -0 agree)
        throw new Error(
          `mbvr: the ranks disagree on ${what}: rank ${r0} has ${show(first[field])}, rank ${r} has ${show(h[field])} ` +
            '(every rank of a data-parallel loss passes the same options and sizes)',
        );
  };
  same('dim', H.Dim);
  same('temperature', H.Temperature);
  same('alpha', H.Alpha);
  same('beta', H.Beta);
  same('gamma', H.Gamma);
  same('normalize', H.Normalize, undefined, (v) => String(v === 1));
  same('grads', H.Grads, undefined, (v) => String(v === 1));
  same('precision', H.Precision, undefined, (v) => `'${PRECISION_CODES[v]}'`);
  same('labels (given or not)', H.Labels, undefined, (v) => (v ? 'labels' : 'none'));
  same('k (shuffled rows per row)', H.K, (h) => h[H.Rows] > 0 && h[H.Shuffled] === 1);
  const total = headers.reduce((sum, h) => sum + h.numbers[H.Rows], 0);
  if (total < 1)
    throw invalidParameterError('batch', 'at least one row on some rank (the global batch)', new Described('0 rows on every rank'), RangeError);
}

// ---- the steps ------------------------------------------------------------------------

type Step =
  | { kind: 'allGather'; data: CommData; counts?: number[] }
  | { kind: 'allReduce'; data: CommData; op: ReduceOp }
  | { kind: 'reduceScatter'; data: Float32Array; counts: number[] }
  | { kind: 'statistics'; shard: NativeLossShard }
  | { kind: 'gradients'; shard: NativeLossShard; merged: NativeColumnStats }
  | { kind: 'finish'; shard: NativeLossShard; documents: NativeDocuments };

/** This rank's call, checked (or why not: every rank must still hear of it). */
interface Prepared {
  checked?: CheckedLoss;
  ownError?: unknown;
}

/**
 * The checks of this rank's call, made when the call is made. `copy`: the arrays the
 * steps read after an await are copied, so that the caller may change or reuse its own
 * at once, as with the single-process async call.
 */
function prepare(inputs: MbvrInputs, options: MbvrOptions, copy: boolean): Prepared {
  try {
    const local = checkLoss(inputs, options, true);
    // This rank's own scales first, so that a value out of range on one rank is that
    // rank's RangeError (the others name it); the global check below catches the rest.
    requireRepresentable(scalesOf(local));
    if (local.options.backend === 'cuda')
      throw invalidParameterError('backend', "'cpu' or 'auto' with comm (data-parallel runs on the CPU backend)", new Described("'cuda'"), RangeError);
    if (!copy) return { checked: local };
    const i = local.inputs, o = local.options;
    return {
      checked: {
        ...local,
        inputs: { ...i, query: i.query.slice(), fused: i.fused.slice(), visual: i.visual?.slice(), text: i.text?.slice(), shuffled: i.shuffled?.slice() },
        options: { ...o, margin: o.margin instanceof Float32Array ? o.margin.slice() : o.margin, labels: o.labels?.slice() },
      },
    };
  } catch (ownError) {
    return { ownError };
  }
}

function* steps({ checked, ownError }: Prepared, { rank, size }: Place): Generator<Step, Result, unknown> {
  const header = encodeHeader(checked, ownError, rank);
  const gathered = (yield { kind: 'allGather', data: header, counts: new Array<number>(size).fill(HEADER_BYTES) }) as Uint8Array;
  const headers = decodeHeaders(gathered, size);
  agree(headers, rank, ownError);
  const c = checked as CheckedLoss;
  const h0 = headers.find((h) => h.numbers[H.Rows] > 0 && h.numbers[H.Shuffled] === 1)?.numbers ?? headers[0].numbers;
  const rows = headers.map((h) => h.numbers[H.Rows]);
  const B = rows.reduce((a, b) => a + b, 0);
  const row0 = rows.slice(0, rank).reduce((a, b) => a + b, 0);
  const b = rows[rank];
  const D = c.inputs.dim;
  const K = h0[H.K];
  const o = c.options;
  const alpha = o.alpha ?? 1, beta = o.beta ?? 1, gamma = o.gamma ?? 1;

  // The global batch's scales: the same check, and the same verdict, on every rank.
  const max = (field: H) => Math.max(...headers.map((h) => h.numbers[field]));
  const argMax = (field: H) => headers.reduce((best, h, r) => (h.numbers[field] > headers[best].numbers[field] ? r : best), 0);
  const documentRank = argMax(H.DocumentNorm);
  const weights: Record<string, number> = {};
  if (alpha > 0) weights.alpha = alpha;
  if (beta > 0) weights.beta = beta;
  if (gamma > 0) weights.gamma = gamma;
  const documentName = DOCUMENT_NAMES[headers[documentRank].numbers[H.DocumentName]] ?? 'fused';
  try {
    requireRepresentable({
      normalize: o.normalize ?? true,
      temperature: o.temperature ?? DEFAULT_TEMPERATURE,
      queryNorm: max(H.QueryNorm),
      documentNorm: max(H.DocumentNorm),
      documentName,
      margin: max(H.Margin),
      minNorm: Math.min(...headers.map((h) => h.numbers[H.MinNorm])),
      weights,
      softmax: true,
    });
  } catch (error) {
    // Every rank passed its own check (prepare): only values from different ranks
    // together go over a limit. Say whose.
    if (!(error instanceof RangeError)) throw error;
    const whose = [`the largest query row is on rank ${argMax(H.QueryNorm)}`, `the largest ${documentName} row on rank ${documentRank}`];
    if (max(H.Margin) > 0) whose.push(`the largest |margin| on rank ${argMax(H.Margin)}`);
    throw new RangeError(`${error.message} (values of the global batch: ${whose.join(', ')})`);
  }

  // The documents and labels of the whole batch.
  const counts = rows.map((n) => n * D);
  const gather = function* (data: Float32Array): Generator<Step, Float32Array, unknown> {
    return (yield { kind: 'allGather', data, counts }) as Float32Array;
  };
  const fused = yield* gather(c.inputs.fused);
  const visual = alpha > 0 ? yield* gather(c.inputs.visual!) : undefined;
  const text = beta > 0 ? yield* gather(c.inputs.text!) : undefined;
  const labels = o.labels ? ((yield { kind: 'allGather', data: o.labels, counts: rows }) as Int32Array) : undefined;

  const shapes = Float64Array.of(max(H.QueryNorm), max(H.QueryFourth), max(H.DocumentNorm), max(H.DocumentFourth));
  const shuffled = c.inputs.shuffled && K > 0 ? c.inputs.shuffled : undefined;
  const shard = new (native().LossShard)(
    { batch: B, dim: D, k: shuffled ? K : 0, row0, rows: b, query: c.inputs.query, shuffled, fused, visual, text },
    { ...o, backend: undefined, labels, rowShapes: shapes },
  );

  // L_mq's columns over every rank's queries: the maxima, then the sums at those maxima.
  const partial = (yield { kind: 'statistics', shard }) as NativeColumnStats;
  const globalMax = (yield { kind: 'allReduce', data: partial.max, op: 'max' }) as Float64Array;
  const rescaled = new Float64Array(B);
  for (let j = 0; j < B; j++)
    rescaled[j] = partial.max[j] === -Infinity ? 0 : partial.sum[j] * Math.exp(partial.max[j] - globalMax[j]);
  const sum = (yield { kind: 'allReduce', data: rescaled, op: 'sum' }) as Float64Array;
  const positive = (yield { kind: 'allGather', data: partial.positive, counts: rows }) as Float32Array;

  const g = (yield { kind: 'gradients', shard, merged: { max: globalMax, sum, positive } }) as NativeShardGradients;
  const totals = (yield { kind: 'allReduce', data: g.sums, op: 'sum' }) as Float64Array;
  const result = shard.scalars(totals) as NativeLossResult;
  if (!g.grads) return { loss: result.loss, terms: result.terms, backend: 'cpu', precision: g.precision };

  // The document gradients: summed over ranks onto their owners, then finished there.
  const owned: NativeDocuments = {};
  for (const name of ['fused', 'visual', 'text'] as const) {
    const partialGrad = g.grads[name];
    if (partialGrad) owned[name] = (yield { kind: 'reduceScatter', data: partialGrad, counts }) as Float32Array;
  }
  const finished = (yield { kind: 'finish', shard, documents: owned }) as NativeDocuments;
  const grads: MbvrResult['grads'] = {
    query: g.grads.query,
    fused: finished.fused!,
    temperature: result.grads!.temperature,
  };
  // An input given with weight 0 gets a zero gradient, as in one process.
  if (c.inputs.visual) grads.visual = finished.visual ?? new Float32Array(b * D);
  if (c.inputs.text) grads.text = finished.text ?? new Float32Array(b * D);
  if (c.inputs.shuffled) grads.shuffled = g.grads.shuffled ?? new Float32Array(c.inputs.shuffled.length);
  return { loss: result.loss, terms: result.terms, grads, backend: 'cpu', precision: g.precision };
}

// ---- the two drivers ------------------------------------------------------------------

/** Where this process sits in the communicator: read once, so that it cannot change mid-call. */
interface Place {
  rank: number;
  size: number;
}

const COLLECTIVES = ['allGather', 'allReduce', 'reduceScatter'] as const;

/** A communicator, checked (its collectives too: `sync`'s for a blocking call): a user's
 * transport is not trusted blindly. Returns its rank and size as read here. */
function requireCommunicator(comm: unknown, blocking: boolean): Place {
  if (typeof comm !== 'object' || comm === null) throw invalidParameterError('comm', 'a Communicator (mbvr/mpi init(), or an object implementing it)', comm);
  const c = comm as Communicator;
  const { rank, size } = c;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1 || size > 2 ** 24)
    throw invalidParameterError('comm.size', 'a whole number from 1 to 2^24', size, typeof size === 'number' ? RangeError : TypeError);
  if (typeof rank !== 'number' || !Number.isSafeInteger(rank) || rank < 0 || rank >= size)
    throw invalidParameterError('comm.rank', `a whole number from 0 to ${size - 1} (comm.size - 1)`, rank, typeof rank === 'number' ? RangeError : TypeError);
  const owner = blocking ? (c.sync as unknown as Record<string, unknown>) : (c as unknown as Record<string, unknown>);
  for (const name of COLLECTIVES)
    if (typeof owner[name] !== 'function')
      throw invalidParameterError(`comm.${blocking ? 'sync.' : ''}${name}`, 'a function (the data-parallel loss needs it)', owner[name]);
  if (c.hold !== undefined && typeof c.hold !== 'function') throw invalidParameterError('comm.hold', 'a function, or absent', c.hold);
  return { rank, size };
}

/** comm.hold(), where there is one: what to call when the loss is done. */
function holdOf(comm: Communicator): (() => void) | undefined {
  if (!comm.hold) return undefined;
  const release: unknown = comm.hold();
  if (typeof release !== 'function')
    throw new Error(`mbvr: comm.hold() returned ${describe(release)}, not a function that releases the hold (see the Communicator contract)`);
  return release as () => void;
}

/** A collective's result, checked: the right kind and, where it is known, length. */
function checked<T extends CommData>(result: unknown, like: T, length: number | undefined, what: string): T {
  if (!(result instanceof (like.constructor as new () => T)) || (length !== undefined && (result as T).length !== length))
    throw new Error(
      `mbvr: comm.${what} returned ${describe(result)}${ArrayBuffer.isView(result) ? ` of length ${(result as T).length}` : ''}, ` +
        `not a ${like.constructor.name}${length !== undefined ? ` of length ${length}` : ''} (see the Communicator contract)`,
    );
  return result as T;
}

/** The length of an allGather's result, where the counts are known. */
function gatheredLength(counts: readonly number[] | undefined): number | undefined {
  return counts ? counts.reduce((a, b) => a + b, 0) : undefined;
}

// Data-parallel calls on one communicator run one after another: each is a sequence of
// collectives that the ranks must issue in the same order, and two calls' collectives
// interleaved would meet different ones on different ranks.
const inFlight = new WeakMap<Communicator, Promise<unknown>>();

/** The data-parallel loss, with promises (collectives and native phases off the event loop). */
export async function distributedLoss(inputs: MbvrInputs, options: MbvrOptions): Promise<Result> {
  const comm = options.comm as Communicator;
  const place = requireCommunicator(comm, false);
  const prepared = prepare(inputs, options, true);
  const previous = inFlight.get(comm);
  const mine = (async () => {
    if (previous) await previous.catch(() => undefined);
    const release = holdOf(comm);
    try {
      const run = steps(prepared, place);
      let next = run.next();
      while (!next.done) {
        const step = next.value;
        let value: unknown;
        switch (step.kind) {
          case 'allGather': value = checked(await comm.allGather(step.data, step.counts), step.data, gatheredLength(step.counts), 'allGather'); break;
          case 'allReduce': value = checked(await comm.allReduce(step.data, step.op), step.data, step.data.length, 'allReduce'); break;
          case 'reduceScatter': value = checked(await comm.reduceScatter(step.data, step.counts), step.data, step.counts[place.rank], 'reduceScatter'); break;
          case 'statistics': value = await step.shard.statistics(); break;
          case 'gradients': value = await step.shard.gradients(step.merged); break;
          case 'finish': value = await step.shard.finish(step.documents); break;
        }
        next = run.next(value);
      }
      return next.value;
    } finally {
      release?.();
    }
  })();
  inFlight.set(comm, mine);
  try {
    return await mine;
  } finally {
    if (inFlight.get(comm) === mine) inFlight.delete(comm);
  }
}

/**
 * The data-parallel loss on the calling thread: the communicator's blocking collectives
 * (comm.sync) and the native phases' synchronous forms. For mbvr/tfjs, whose
 * tf.customGrad runs synchronously.
 */
export function distributedLossSync(inputs: MbvrInputs, options: MbvrOptions): Result {
  const comm = options.comm as Communicator;
  const sync = comm?.sync;
  if (!sync)
    throw invalidParameterError(
      'comm',
      'a Communicator with blocking collectives (comm.sync, as mbvr/mpi has) in mbvrLossSync; or call mbvrLoss',
      comm,
    );
  const place = requireCommunicator(comm, true);
  if (inFlight.has(comm))
    throw new Error('mbvr: a data-parallel mbvrLoss is still in progress on this communicator: await it before mbvrLossSync');
  const release = holdOf(comm);
  try {
    const run = steps(prepare(inputs, options, false), place);
    let next = run.next();
    while (!next.done) {
      const step = next.value;
      let value: unknown;
      switch (step.kind) {
        case 'allGather': value = checked(sync.allGather(step.data, step.counts), step.data, gatheredLength(step.counts), 'sync.allGather'); break;
        case 'allReduce': value = checked(sync.allReduce(step.data, step.op), step.data, step.data.length, 'sync.allReduce'); break;
        case 'reduceScatter': value = checked(sync.reduceScatter(step.data, step.counts), step.data, step.counts[place.rank], 'sync.reduceScatter'); break;
        case 'statistics': value = step.shard.statisticsSync(); break;
        case 'gradients': value = step.shard.gradientsSync(step.merged); break;
        case 'finish': value = step.shard.finishSync(step.documents); break;
      }
      next = run.next(value);
    }
    return next.value;
  } finally {
    release?.();
  }
}
