/**
 * Renders the charts of a run to SVG (vega, headless) and PNG (resvg). Vega, vega-lite and resvg
 * are loaded on first use, so `compare` and the Markdown report do not pay for them, and a host
 * where resvg's native binary is missing still gets its SVGs.
 *
 * Only the SVG path of vega is used (`renderer: 'none'` + `toSVG()`): it needs no canvas. (Vega's
 * vega-canvas still tries an optional `import('canvas')` when vega loads; without that package it
 * fails quietly and vega estimates text widths instead of measuring them.)
 *
 * PNG text needs a system font. With no fonts at all resvg leaves the text out and still renders
 * the marks, so a font-less container gets PNGs without labels (the SVGs keep their text).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { Results } from '../scenario/types.js';
import { GpucoloError, oneLine } from '../errors.js';
import { chartSpecs, sloBounds, type ChartSpec, type LatencySlos } from './chart-specs.js';
import { writeFileAtomic } from '../write.js';
import { makeDirs } from '../fs-dirs.js';

/** One rendered chart. */
export interface ChartFile {
  name: string;
  /** path of the written SVG; '' when the SVG could not be made (then `error` says why) */
  svg: string;
  /** path of the written PNG, when asked for and made */
  png?: string;
  /** one line; set when the SVG or the PNG failed ("png: ..." when only the PNG did) */
  error?: string;
}

export interface RenderOptions {
  /** also write PNGs (default true) */
  png?: boolean;
  /** PNG width in pixels (default: twice the SVG's width) */
  pngWidth?: number;
  /** latency SLO bounds per task (default: from results.scenario.config, see sloBounds) */
  slos?: LatencySlos;
}

/** The three libraries behind two functions, narrowed to what is used here. */
interface Renderers {
  toSvg(spec: TopLevelSpec): Promise<string>;
  /** a renderer, or why there is none (resvg's native binary could not be loaded) */
  toPng: ((svg: string, width: number) => Uint8Array) | string;
}

let renderers: Promise<Renderers> | undefined;

interface ResvgModule {
  Resvg: new (
    svg: string,
    opts: { font: { loadSystemFonts: boolean }; fitTo: { mode: 'width'; value: number }; logLevel: 'off' },
  ) => { render(): { asPng(): Uint8Array } };
}

async function loadRenderers(): Promise<Renderers> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const toSvg = async (spec: TopLevelSpec): Promise<string> => {
    let compiled: ReturnType<typeof vl.compile>['spec'];
    try {
      compiled = vl.compile(spec, { logger: vega.logger(vega.None) }).spec;
    } catch (err) {
      throw new GpucoloError(`vega-lite compile: ${oneLine(err)}`, { code: 'ECHART' });
    }
    // vega catches errors inside its dataflow and only logs them: collect and rethrow
    const errors: unknown[] = [];
    const logger = vega.logger(vega.Error, 'error', (_method, _level, args) => {
      errors.push(args.length === 1 ? args[0] : args.map(String).join(' '));
    });
    let view: InstanceType<typeof vega.View> | undefined;
    try {
      view = new vega.View(vega.parse(compiled), { renderer: 'none', logger });
      const svg = await view.toSVG();
      if (errors.length) throw errors[0];
      return svg;
    } catch (err) {
      throw new GpucoloError(`vega render: ${oneLine(err)}`, { code: 'ECHART' });
    } finally {
      view?.finalize();
    }
  };
  let toPng: Renderers['toPng'];
  try {
    // CommonJS with a native binding: require keeps its named export without interop guessing
    const { Resvg } = createRequire(import.meta.url)('@resvg/resvg-js') as ResvgModule;
    toPng = (svg, width) =>
      new Resvg(svg, { font: { loadSystemFonts: true }, fitTo: { mode: 'width', value: width }, logLevel: 'off' }).render().asPng();
  } catch (err) {
    toPng = `cannot load @resvg/resvg-js: ${oneLine(err)}`;
  }
  return { toSvg, toPng };
}

function getRenderers(): Promise<Renderers> {
  renderers ??= loadRenderers().catch((err: unknown) => {
    renderers = undefined; // let a later call retry
    throw err;
  });
  return renderers;
}

/** The root element's width, for a PNG at twice the SVG's size. */
function svgWidth(svg: string): number | undefined {
  const m = /<svg[^>]*\swidth="(\d+(?:\.\d+)?)"/.exec(svg);
  return m ? Number(m[1]) : undefined;
}

/**
 * Renders arbitrary specs into `<outDir>/charts/<name>.svg|.png` (atomically). A chart that
 * fails is reported in its entry; the others are still written. Runners with their own charts
 * use this directly.
 */
export async function renderSpecs(specs: ChartSpec[], outDir: string, opts: RenderOptions = {}): Promise<ChartFile[]> {
  const dir = path.join(outDir, 'charts');
  makeDirs(dir);
  let r: Renderers;
  try {
    r = await getRenderers();
  } catch (err) {
    const error = `cannot load vega: ${oneLine(err)}`;
    return specs.map((s) => ({ name: s.name, svg: '', error }));
  }
  const out: ChartFile[] = [];
  for (const s of specs) {
    if (!s.spec) {
      out.push({ name: s.name, svg: '', error: s.empty ?? 'nothing to draw' });
      continue;
    }
    const entry: ChartFile = { name: s.name, svg: '' };
    out.push(entry);
    let svg: string;
    try {
      svg = await r.toSvg(s.spec);
      const file = path.join(dir, `${s.name}.svg`);
      writeFileAtomic(file, svg);
      entry.svg = file;
    } catch (err) {
      entry.error = oneLine(err);
      continue;
    }
    if (opts.png === false) continue;
    if (typeof r.toPng === 'string') {
      entry.error = `png: ${r.toPng}`;
      continue;
    }
    try {
      const file = path.join(dir, `${s.name}.png`);
      writeFileAtomic(file, r.toPng(svg, opts.pngWidth ?? 2 * (svgWidth(svg) ?? 600)));
      entry.png = file;
    } catch (err) {
      entry.error = `png: ${oneLine(err)}`;
    }
  }
  return out;
}

/**
 * The standard charts of a run (latency CDF per task, P99 by phase, throughput share), written
 * to `<outDir>/charts/`. Never throws for one bad chart; see ChartFile.error.
 */
export function renderCharts(results: Results, outDir: string, opts: RenderOptions = {}): Promise<ChartFile[]> {
  return renderSpecs(chartSpecs(results, opts.slos ?? sloBounds(results)), outDir, opts);
}
