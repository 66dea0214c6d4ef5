/**
 * `gpucolo top` refresh cost: how long one frame takes to build and draw from the example host
 * tree (examples/kfd-mi300x), next to what the sampler spends reading that tree for one sample.
 * Interleaved (bench/interleave.ts interleaveRuns): each round runs every variant once, in an
 * order that alternates between rounds; per round one median per variant, and the ratio of the
 * frame to the sampler's read within the round.
 *
 *  - frame, plain text: buildFrame + frameText (what --once prints)
 *  - frame, ink: buildFrame + layoutFrame + an ink rerender of the frame element, as the
 *    full-screen view does each refresh: one ink instance kept across frames, in debug mode so
 *    that every rerender lays out and writes the whole frame at once (unthrottled), to a sink
 *  - frame, ink renderToString: the same through a fresh ink instance per frame (the upper bound:
 *    reconciler, Yoga tree and all built anew)
 *  - sampler read: the sampler's own read_ns (src/trace/sampler.ts startSampler, default
 *    implementation) over samples of the same tree at 10 ms
 *
 * npm run bench:top [-- --rounds N]
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { render, renderToString } from 'ink';
import { frameElement } from '../src/top/app.js';
import { buildFrame, frameText, layoutFrame } from '../src/top/frame.js';
import { initialView } from '../src/top/keys.js';
import { LiveSource } from '../src/top/live.js';
import type { TopSnapshot } from '../src/top/state.js';
import { startSampler } from '../src/trace/sampler.js';
import { formatLoad, formatSpread, interleaveRuns, metricRatio, metricSpread, type Spread } from './interleave.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TREE = path.join(ROOT, 'examples/kfd-mi300x');
const ROUNDS = Math.max(5, Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 7);
/** frames per run: enough for a stable median, few enough for a round of seconds */
const FRAMES = 400;
const SAMPLES = 60;
const COLUMNS = 120;
const ROWS = 50;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median ns of `n` calls of fn. */
function timeCalls(n: number, fn: () => unknown): number {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0));
  }
  return median(t);
}

/** The sampler's median read_ns over SAMPLES samples of the tree (the first, which parses everything, dropped). */
async function samplerRead(): Promise<{ ns: number; parseNs: number }> {
  const read: number[] = [];
  const parse: number[] = [];
  const s = startSampler(
    { sysfsRoot: path.join(TREE, 'sys'), debugfsRoot: path.join(TREE, 'sys/kernel/debug'), intervalNs: 10e6, debugfsEvery: 1, maxSamples: SAMPLES + 1 },
    (raw) => {
      if (raw.seq === 0) return;
      read.push(raw.readNs);
      parse.push(raw.parseNs);
    },
  );
  // the sampler stops itself after maxSamples
  await s.done;
  return { ns: median(read), parseNs: median(parse) };
}

/** A terminal that takes every write and shows nothing. */
function sink(): NodeJS.WriteStream {
  const w = new Writable({ write: (_chunk, _enc, done) => done() });
  return Object.assign(w, { columns: COLUMNS, rows: ROWS + 1, isTTY: false }) as unknown as NodeJS.WriteStream;
}

async function exampleSnapshot(): Promise<TopSnapshot> {
  const live = new LiveSource({ sysfsRoot: path.join(TREE, 'sys'), debugfsRoot: path.join(TREE, 'sys/kernel/debug'), procRoot: path.join(TREE, 'proc'), intervalNs: 100e6, label: 'tree examples/kfd-mi300x', recorded: true });
  return live.once();
}

const us = (ns: number): string => `${(ns / 1e3).toFixed(ns < 1e5 ? 1 : 0)} µs`;
const ratio = (s: Spread | null): string => (s ? `${s.median.toFixed(2)}x (${s.min.toFixed(2)}-${s.max.toFixed(2)}x)` : '-');

async function main(): Promise<void> {
  const snap = await exampleSnapshot();
  const view = initialView({ columns: COLUMNS, rows: ROWS });
  const text = (): string => frameText(buildFrame(snap, view, { interactive: false }), null);
  const lines = (frameNs: number) => layoutFrame(buildFrame(snap, view, { interactive: true, frameNs }), COLUMNS, ROWS);
  const fresh = (): string => renderToString(frameElement(lines(1e5)), { columns: COLUMNS });
  const app = render(frameElement(lines(0)), { stdout: sink(), debug: true, patchConsole: false, exitOnCtrlC: false });
  let n = 0;
  // a changed cost line each frame: a real update, as each refresh of the live view is
  const ink = (): void => app.rerender(frameElement(lines(++n)));
  const sampler = await samplerRead();
  console.log(`gpucolo top refresh cost, example tree (4 XCC, 2 processes, 4 queues); sampler ${process.env.GPUCOLO_NATIVE === '0' ? 'ts-timer' : 'default implementation'}; ${ROUNDS} rounds`);
  const run = await interleaveRuns(
    [
      { name: 'frame text', run: () => ({ ns: timeCalls(FRAMES, text) }) },
      { name: 'frame ink', run: () => ({ ns: timeCalls(FRAMES, ink) }) },
      { name: 'frame ink fresh', run: () => ({ ns: timeCalls(FRAMES / 4, fresh) }) },
      { name: 'sampler read', run: () => samplerRead() },
    ],
    { rounds: ROUNDS, warmupRuns: 1 },
  );
  app.unmount();
  const fmt = (name: string, metric: 'ns' | 'parseNs' = 'ns'): string => {
    const s = metricSpread(run, name, metric);
    return s ? formatSpread(s, us) : '-';
  };
  console.log(`${formatLoad(run.load)} (1-min load average at the end of each round); host ${os.cpus().length} CPUs, Node ${process.version}; first sampler read ${us(sampler.ns)}`);
  console.log(`| what | median (min-max) over rounds |`);
  console.log(`|---|---|`);
  console.log(`| frame, build + plain text (--once) | ${fmt('frame text')} |`);
  console.log(`| frame, build + ink render (full-screen view) | ${fmt('frame ink')} |`);
  console.log(`| frame, build + fresh ink renderToString (upper bound) | ${fmt('frame ink fresh')} |`);
  console.log(`| sampler read of one sample (read_ns) | ${fmt('sampler read')} |`);
  console.log(`| sampler parse of one sample (parse_ns; 0 when the files did not change) | ${fmt('sampler read', 'parseNs')} |`);
  console.log(`| frame text / sampler read, per round | ${ratio(metricRatio(run, 'ns', 'frame text', 'sampler read'))} |`);
  console.log(`| frame ink / sampler read, per round | ${ratio(metricRatio(run, 'ns', 'frame ink', 'sampler read'))} |`);
}

await main();
