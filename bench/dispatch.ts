/**
 * Dispatch round trip as gpucolo measures it (engine, JS-visible arrays) vs the plain C++ floor
 * (native/tests/floor.cc, no Node, no engine bookkeeping), on the same backend and kernels. The
 * floor runs in two shapes: "hand-off" does the engine's work (a submitter thread and a completion
 * thread that polls with the engine's back-off and wakes the submitter), "loop" is the old single
 * thread launch -> busy-poll loop (the backend alone). Floor hand-off, engine and floor loop run
 * interleaved (bench/interleave.ts: A B C, then C B A, ... over ROUNDS rounds of --floor-seconds
 * each), and every round gives one engine / floor ratio per percentile; the rows show the median
 * over rounds with the range (min-max). Backends: cpu always; cuda/hip when their plugin has a
 * device.
 *
 * Then the native engine vs the pure-TS engine (src/dispatch/ts-engine) on the cpu backend,
 * interleaved (native, TS, native, TS, ... over ROUNDS rounds, as docs/measurement.md#interleaved-benches asks of any
 * comparison): an empty kernel's closed-loop round trip and a 1 ms spin kernel's latency (closed
 * loop, one in flight: complete - intended), p50 and p99 per run; the TS / native ratio per round,
 * reported as the median over rounds with the range (min-max) as its spread.
 *
 *   npm run bench:dispatch       (builds build-cc/gpucolo_floor with plain cmake when it is missing or older than floor.cc)
 *   npm run bench:dispatch -- [--rounds N] [--floor-seconds S] [--seconds S] [--floor-only | --engines-only]
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { listBackends, probeLatency, runDispatch, type DispatchRun } from '../src/dispatch/index.js';
import { loadNative, type DispatchEngine } from '../src/native.js';
import { quantileOf, quantiles } from '../src/stats/index.js';
import { formatLoad, formatSpread, interleaveRuns, metricRatio, metricSpread } from './interleave.js';
import { ROOT, ensureBuildCc } from './build-cc.js';

const FLOOR = path.join(ROOT, 'build-cc', 'gpucolo_floor');
const ensureFloor = (): string => ensureBuildCc('gpucolo_floor', 'floor.cc');

type FloorMode = 'handoff' | 'loop';

function floor(backend: string, spinNs: number, mode: FloorMode, seconds: number): { p50: number; p99: number; n: number } {
  const target = backend === 'cpu' ? 'cpu' : path.join(ROOT, 'build', 'Release', `gpucolo_${backend}.so`);
  const out = execFileSync(FLOOR, [target, '--mode', mode, '--seconds', String(seconds), '--spin', String(spinNs)], { encoding: 'utf8' });
  const j = JSON.parse(out.trim().split('\n').pop()!);
  if (j.error) throw new Error(`gpucolo_floor ${target}: ${j.error}`);
  return { p50: j.p50_ns, p99: j.p99_ns, n: j.n };
}

const us = (ns: number): string => `${(ns / 1e3).toFixed(2)} µs`;

const ms = (ns: number): string => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : us(ns));

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

type RoundTrip = { p50: number; p99: number; n: number };

/** Floor (hand-off), engine, floor (loop), interleaved; per round engine / floor per percentile. */
async function floorTable(rounds: number, seconds: number): Promise<void> {
  ensureFloor();
  const rows: string[] = [];
  const loads: number[] = [];
  for (const b of listBackends({ engine: 'native' })) {
    if (!b.available) {
      rows.push(`| ${b.name} | – | – | – | – | – | – | unavailable: ${b.reason} |`);
      continue;
    }
    for (const spinNs of [0, 100e3]) {
      const label = `${b.name}, ${spinNs ? `${spinNs / 1e3} µs spin` : 'empty'} kernel`;
      const run = await interleaveRuns<RoundTrip>(
        [
          { name: 'floor-handoff', run: () => floor(b.name, spinNs, 'handoff', seconds) },
          {
            name: 'engine',
            run: async () => {
              const g = await probeLatency({ backend: b.name, spinNs, durationNs: seconds * 1e9 + 300e6, warmupNs: 300e6, engine: 'native' });
              return { p50: quantileOf(g.roundTrip, 50)!, p99: quantileOf(g.roundTrip, 99)!, n: g.launches };
            },
          },
          { name: 'floor-loop', run: () => floor(b.name, spinNs, 'loop', seconds) },
        ],
        { rounds, onRun: (r, name, m) => process.stderr.write(`${label} round ${r + 1}/${rounds} ${name}: p50 ${us(m.p50!)} p99 ${us(m.p99!)}\n`) },
      );
      loads.push(...run.load);
      const v = (name: string, k: 'p50' | 'p99') => formatSpread(metricSpread(run, name, k)!, us);
      const x = (name: string, k: 'p50' | 'p99') => formatSpread(metricRatio(run, k, 'engine', name)!, (r) => `${r.toFixed(2)}x`);
      rows.push(
        `| ${label} | ${v('floor-handoff', 'p50')} / ${v('floor-handoff', 'p99')} | ${v('engine', 'p50')} / ${v('engine', 'p99')} | ${x('floor-handoff', 'p50')} | ${x('floor-handoff', 'p99')} | ${v('floor-loop', 'p50')} / ${v('floor-loop', 'p99')} | ${x('floor-loop', 'p50')} / ${x('floor-loop', 'p99')} | ${formatLoad(run.load)} |`,
      );
    }
  }
  console.log(
    `\nengine vs C++ floor, closed loop, one kernel in flight; floor hand-off, engine, floor loop interleaved over ${rounds} rounds of ${seconds} s each (${formatLoad(loads)}); median over rounds (min-max)`,
  );
  console.log(
    '\n| backend, kernel | floor, submitter + completion thread: p50 / p99 | gpucolo engine p50 / p99 | engine / hand-off floor, p50 per round | same, p99 | floor, one-thread loop (old row): p50 / p99 | engine / loop floor, p50 / p99 | host |\n|---|---|---|---|---|---|---|---|',
  );
  for (const r of rows) console.log(r);
}

interface Case {
  label: string;
  spinNs: number;
  /** the per-launch value compared: round trip for the empty kernel, latency for the spin kernel */
  value: (s: DispatchRun['streams'][number]) => Float64Array;
}

const CASES: Case[] = [
  { label: 'empty kernel, closed-loop round trip (complete - submit)', spinNs: 0, value: (s) => s.roundTripNs },
  { label: '1 ms spin kernel, latency (complete - intended), closed loop', spinNs: 1e6, value: (s) => s.latencyNs },
];

async function measure(engine: DispatchEngine, c: Case, seconds: number): Promise<{ p50: number; p99: number; n: number }> {
  const run = await runDispatch(
    {
      backend: 'cpu',
      durationNs: seconds * 1e9,
      warmupNs: Math.min(300e6, (seconds * 1e9) / 5),
      streams: [{ name: 'probe', highPriority: true, kernel: { spinNs: c.spinNs, blocks: 1, threadsPerBlock: 64 }, arrival: 'closed-loop', inflight: 1 }],
    },
    { engine },
  );
  const q = quantiles(c.value(run.streams[0]));
  return { p50: quantileOf(q, 50)!, p99: quantileOf(q, 99)!, n: q.n };
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (v: number[], f: (x: number) => string): string => `${f(median(v))} (${f(Math.min(...v))}–${f(Math.max(...v))})`;

/** native, TS, native, TS, ...: each round gives one ratio per case and percentile. */
async function enginesTable(rounds: number, seconds: number): Promise<void> {
  if (!loadNative()) {
    console.log('\nnative vs pure-TS engine: the native core is not loaded, only the TS engine can run (no comparison)');
    return;
  }
  console.log(`\nnative vs pure-TS engine, cpu backend (${os.availableParallelism()} compute units each), ${rounds} interleaved rounds of ${seconds} s per run; median over rounds (min–max)`);
  console.log('\n| kernel | native p50 | TS p50 | TS / native p50 | native p99 | TS p99 | TS / native p99 |\n|---|---|---|---|---|---|---|');
  for (const c of CASES) {
    const nat = { p50: [] as number[], p99: [] as number[] };
    const ts = { p50: [] as number[], p99: [] as number[] };
    const r50: number[] = [];
    const r99: number[] = [];
    for (let r = 0; r < rounds; r++) {
      // alternate which engine goes first, so a drift in host load does not favour one
      const order: DispatchEngine[] = r % 2 === 0 ? ['native', 'ts'] : ['ts', 'native'];
      const got: Partial<Record<DispatchEngine, { p50: number; p99: number }>> = {};
      for (const e of order) got[e] = await measure(e, c, seconds);
      nat.p50.push(got.native!.p50);
      nat.p99.push(got.native!.p99);
      ts.p50.push(got.ts!.p50);
      ts.p99.push(got.ts!.p99);
      r50.push(got.ts!.p50 / got.native!.p50);
      r99.push(got.ts!.p99 / got.native!.p99);
    }
    const x = (v: number): string => `${v.toFixed(2)}x`;
    console.log(`| ${c.label} | ${spread(nat.p50, ms)} | ${spread(ts.p50, ms)} | ${spread(r50, x)} | ${spread(nat.p99, ms)} | ${spread(ts.p99, ms)} | ${spread(r99, x)} |`);
  }
}

async function main(): Promise<void> {
  const enginesOnly = process.argv.includes('--engines-only');
  const floorOnly = process.argv.includes('--floor-only');
  const rounds = Math.max(5, arg('--rounds', 5));
  const seconds = arg('--seconds', 1);
  const floorSeconds = arg('--floor-seconds', 1);
  console.log(
    `\n${new Date().toISOString().slice(0, 10)}, ${os.hostname()} (${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} at the start), Node ${process.version}; \`npm run bench:dispatch${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\``,
  );
  if (!enginesOnly) await floorTable(rounds, floorSeconds);
  if (!floorOnly) await enginesTable(rounds, seconds);
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exit(1);
});
