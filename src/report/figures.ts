// The report's figures: Vega-Lite specs, compiled by vega-lite and rendered headless to
// SVG by vega (no browser, no canvas); PNG from that SVG by @resvg/resvg-js. All three are
// optional peer dependencies, loaded here on first use only (never by require('mbvr')):
// when one is missing, the functions below say so, naming what to install.
import { pathToFileURL } from 'node:url';
import type { ModelReport, ModelValues } from './diagnostics';

type Spec = Record<string, unknown>;

/** A renderer is not installed; the message says what to install. */
export class RendererMissing extends Error {}

// vega and vega-lite are ES modules (with top-level await): load them with a real
// import(), which TypeScript's CommonJS output would otherwise turn into require().
const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

interface VegaLite {
  compile(spec: Spec): { spec: Spec };
}
interface Vega {
  parse(spec: Spec): unknown;
  View: new (runtime: unknown, options: { renderer: 'none' }) => { toSVG(): Promise<string>; finalize(): void };
}

/** Where a package resolves from here, or undefined when it is not installed. */
function locate(name: string): string | undefined {
  try {
    return require.resolve(name);
  } catch (error) {
    if ((error as { code?: string }).code === 'MODULE_NOT_FOUND') return undefined;
    throw error;
  }
}

let modules: Promise<{ vl: VegaLite; vega: Vega }> | undefined;

function loadVega(): Promise<{ vl: VegaLite; vega: Vega }> {
  modules ??= (async () => {
    const found = ['vega', 'vega-lite'].map((name) => [name, locate(name)] as const);
    const missing = found.filter(([, at]) => !at).map(([name]) => name);
    if (missing.length)
      throw new RendererMissing(`${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not installed (npm install vega vega-lite)`);
    const [vega, vl] = await Promise.all(found.map(([, at]) => importModule(pathToFileURL(at!).href)));
    return { vl: vl as VegaLite, vega: vega as Vega };
  })();
  return modules;
}

/** Compiles a Vega-Lite spec and renders it to an SVG document (RendererMissing without vega). */
export async function renderSvg(spec: Spec): Promise<string> {
  const { vl, vega } = await loadVega();
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

interface Resvg {
  new (svg: string, options: Record<string, unknown>): { render(): { asPng(): Uint8Array } };
}

/** PNG bytes of an SVG document at 2x (RendererMissing without @resvg/resvg-js). */
export function svgToPng(svg: string): Uint8Array {
  const at = locate('@resvg/resvg-js');
  if (!at) throw new RendererMissing('@resvg/resvg-js is not installed (npm install @resvg/resvg-js)');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Resvg } = require(at) as { Resvg: Resvg };
  // The SVG asks for the generic 'sans-serif'; name a family that the platform has.
  const family = { darwin: 'Helvetica', win32: 'Arial' }[process.platform as string] ?? 'DejaVu Sans';
  const renderer = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: 2 },
    background: 'white',
    logLevel: 'off',
    font: { loadSystemFonts: true, defaultFontFamily: family, sansSerifFamily: family },
  });
  return renderer.render().asPng();
}

// ---------------------------------------------------------------------------
// Data: histograms as shares, so models with different row counts compare.

interface Bin {
  model: string;
  kind?: string;
  start: number;
  end: number;
  share: number;
}

function histogram(values: ArrayLike<number>, lo: number, hi: number, bins: number, labels: Omit<Bin, 'start' | 'end' | 'share'>): Bin[] {
  const counts = new Array<number>(bins).fill(0);
  let defined = 0;
  const width = (hi - lo) / bins;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isNaN(v)) continue;
    defined++;
    if (v < lo || v > hi) continue;
    counts[Math.min(bins - 1, Math.floor((v - lo) / width))]++;
  }
  return counts.map((c, b) => ({ ...labels, start: lo + b * width, end: lo + (b + 1) * width, share: defined ? c / defined : 0 }));
}

function quantile(sorted: number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  return lo + 1 >= sorted.length ? sorted[lo] : sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]);
}

const config = {
  background: 'white',
  font: 'sans-serif',
  padding: 12,
  title: { fontSize: 15, anchor: 'start', subtitleFontSize: 12, subtitleColor: '#555', offset: 10 },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', grid: true, gridColor: '#eee' },
  legend: { labelFontSize: 12, titleFontSize: 12, titleFontWeight: 'normal', orient: 'top-right' },
  header: { labelFontSize: 13, titleFontSize: 13 },
  view: { stroke: '#ccc' },
};

const schema = 'https://vega.github.io/schema/vega-lite/v6.json';
const palette = ['#4c78a8', '#f58518', '#54a24b', '#e45756'];

/** R_vt per row, one translucent histogram per model, with R_vt = 1 and each median marked. */
export function rvtSpec(models: { report: ModelReport; values: ModelValues }[], bins = 40): Spec | undefined {
  const withRvt = models.filter((m) => m.values.rvt);
  if (withRvt.length === 0) return undefined;
  // The range: the 1st to 99th percentile over all models (ratios explode where cos(t, m) ~ 0).
  const all = withRvt.flatMap((m) => Array.from(m.values.rvt!).filter((v) => !Number.isNaN(v))).sort((a, b) => a - b);
  let lo = all.length ? quantile(all, 0.01) : 0;
  let hi = all.length ? quantile(all, 0.99) : 2;
  lo = Math.min(lo, 1);
  hi = Math.max(hi, 1);
  if (hi - lo < 1e-6) [lo, hi] = [lo - 0.5, hi + 0.5];
  const names = withRvt.map((m) => m.report.name);
  const data = withRvt.flatMap((m) => histogram(m.values.rvt!, lo, hi, bins, { model: m.report.name }));
  const medians = withRvt.map((m) => ({ model: m.report.name, median: m.report.modalityBalance!.summary.median }));
  const outside = withRvt
    .map((m) => {
      const v = Array.from(m.values.rvt!).filter((x) => !Number.isNaN(x));
      const n = v.filter((x) => x < lo || x > hi).length;
      const undefinedRows = m.values.rvt!.length - v.length;
      return `${m.report.name}: ${n} of ${v.length} rows outside it${undefinedRows ? `, ${undefinedRows} with cos(t, m) = 0 left out` : ''}`;
    });
  const color = { field: 'model', type: 'nominal', title: 'model', scale: { domain: names, range: palette } };
  return {
    $schema: schema,
    config,
    width: 620,
    height: 300,
    title: {
      text: 'Modality balance: R_vt = cos(v, m) / cos(t, m) per row',
      // Short lines: without a canvas, vega sizes the figure by estimated text widths.
      subtitle: [
        'R_vt < 1: the fused embedding leans on text; R_vt > 1: on vision.',
        'Dashed: each model\'s median. Grey: R_vt = 1.',
        `Range shown: 1st to 99th percentile of all rows, ${bins} bins.`,
        ...outside,
      ],
    },
    layer: [
      {
        data: { values: data },
        mark: { type: 'bar', opacity: 0.55, binSpacing: 0 },
        encoding: {
          x: { field: 'start', type: 'quantitative', bin: { binned: true }, title: 'R_vt = cos(v, m) / cos(t, m)', scale: { domain: [lo, hi] } },
          x2: { field: 'end' },
          y: { field: 'share', type: 'quantitative', stack: null, title: 'share of rows', axis: { format: '.0%' } },
          color: { ...color, legend: { labelLimit: 300 } },
        },
      },
      {
        data: { values: [{ x: 1 }] },
        mark: { type: 'rule', color: '#888', strokeWidth: 1.5 },
        encoding: { x: { field: 'x', type: 'quantitative' } },
      },
      {
        data: { values: medians },
        mark: { type: 'rule', strokeDash: [6, 4], strokeWidth: 2 },
        encoding: { x: { field: 'median', type: 'quantitative' }, color },
      },
    ],
  };
}

/** Positive vs MS-negative cosine histograms, one panel per model titled with its AUC. */
export function scoresSpec(models: { report: ModelReport; values: ModelValues }[], bins = 40): Spec | undefined {
  const withScores = models.filter((m) => m.values.positive && m.values.shuffled);
  if (withScores.length === 0) return undefined;
  let lo = Infinity;
  let hi = -Infinity;
  for (const m of withScores)
    for (const a of [m.values.positive!, m.values.shuffled!])
      for (const v of a) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
  if (hi - lo < 1e-6) [lo, hi] = [lo - 0.05, hi + 0.05];
  const panel = (m: { report: ModelReport }) =>
    `${m.report.name}: AUC ${m.report.scoreSeparation!.auc.toFixed(3)} (B = ${m.report.batch}, K = ${m.report.scoreSeparation!.k})`;
  const kinds = ['positive cos(q, m)', 'MS negative cos(q, s)'];
  const data = withScores.flatMap((m) => [
    ...histogram(m.values.positive!, lo, hi, bins, { model: panel(m), kind: kinds[0] }),
    ...histogram(m.values.shuffled!, lo, hi, bins, { model: panel(m), kind: kinds[1] }),
  ]);
  return {
    $schema: schema,
    config,
    title: {
      text: 'Score separation: positives vs modality-shuffled negatives',
      subtitle: [
        'AUC: P(a positive outscores an MS negative of its row), ties 1/2.',
        'MS negative s = H(t_i, v_j): own text, another video\'s visuals.',
      ],
    },
    data: { values: data },
    columns: 1,
    facet: { field: 'model', type: 'nominal', sort: withScores.map(panel), header: { title: null, labelAnchor: 'start', labelFontWeight: 'bold' } },
    spec: {
      width: 620,
      height: 200,
      mark: { type: 'bar', opacity: 0.55, binSpacing: 0 },
      encoding: {
        x: { field: 'start', type: 'quantitative', bin: { binned: true }, title: 'cosine score', scale: { domain: [lo, hi] } },
        x2: { field: 'end' },
        y: { field: 'share', type: 'quantitative', stack: null, title: 'share of scores', axis: { format: '.0%' } },
        color: {
          field: 'kind',
          type: 'nominal',
          title: null,
          scale: { domain: kinds, range: ['#54a24b', '#e45756'] },
          legend: { orient: 'top', direction: 'horizontal', labelLimit: 400 },
        },
      },
    },
  };
}

/** recall@K, median and mean rank per model, as a table (recall cells shaded). */
export function recallSpec(models: { report: ModelReport }[], ks: number[]): Spec {
  const columns = [...ks.map((k) => `R@${k}`), 'median rank', 'mean rank'];
  const data = models.flatMap((m) => {
    const r = m.report.retrieval;
    return [
      ...ks.map((k) => ({ model: m.report.name, metric: `R@${k}`, recall: r.recall[String(k)], text: `${(100 * r.recall[String(k)]).toFixed(1)}%` })),
      { model: m.report.name, metric: 'median rank', text: r.medianRank.toFixed(1) },
      { model: m.report.name, metric: 'mean rank', text: r.meanRank.toFixed(1) },
    ];
  });
  const galleries = models.map((m) => `${m.report.name}: ${m.report.batch} queries, ${m.report.retrieval.cols} gallery rows (${m.report.retrieval.gallery})`);
  const x = { field: 'metric', type: 'nominal', sort: columns, title: null, axis: { orient: 'top', labelAngle: 0, labelFontSize: 12, domain: false, ticks: false } };
  const y = { field: 'model', type: 'nominal', sort: models.map((m) => m.report.name), title: null, axis: { labelFontSize: 12, domain: false, ticks: false } };
  return {
    $schema: schema,
    config: { ...config, axis: { ...config.axis, grid: false } },
    title: { text: 'Retrieval: recall@K and target rank', subtitle: ['Rank of the target: 1 + rows scoring higher (ties: lower index first).', ...galleries] },
    data: { values: data },
    width: { step: 96 },
    height: { step: 40 },
    encoding: { x, y },
    layer: [
      { mark: { type: 'rect', color: '#f3f3f3', stroke: 'white', strokeWidth: 2 } },
      {
        transform: [{ filter: 'isValid(datum.recall)' }],
        mark: { type: 'rect', stroke: 'white', strokeWidth: 2 },
        encoding: { color: { field: 'recall', type: 'quantitative', title: 'recall', scale: { domain: [0, 1], scheme: 'blues' }, legend: { format: '.0%', orient: 'right', gradientLength: 80 } } },
      },
      {
        mark: { type: 'text', fontSize: 13 },
        encoding: {
          text: { field: 'text' },
          color: { condition: { test: 'isValid(datum.recall) && datum.recall > 0.6', value: 'white' }, value: 'black' },
        },
      },
    ],
  };
}
