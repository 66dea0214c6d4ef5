/**
 * Dispatch round trip as gpucolo measures it (engine, JS-visible arrays) vs the plain C++ floor
 * (native/tests/floor.cc: launch -> poll on one stream, no engine, no Node), on the same backend
 * and kernels, in one run. Backends: cpu always; cuda/hip when their plugin has a device.
 *
 * Then the native engine vs the pure-TS engine (src/dispatch/ts-engine) on the cpu backend,
 * interleaved (native, TS, native, TS, ... over ROUNDS rounds, as DESIGN.md asks of any
 * comparison): an empty kernel's closed-loop round trip and a 1 ms spin kernel's latency (closed
 * loop, one in flight: complete - intended), p50 and p99 per run; the TS / native ratio per round,
 * reported as the median over rounds with the range (min-max) as its spread.
 *
 *   npm run bench:dispatch       (builds build-cc/gpucolo_floor with plain cmake if needed)
 *   npm run bench:dispatch -- --engines-only [--rounds N] [--seconds S]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listBackends, probeLatency, runDispatch, type DispatchRun } from '../src/dispatch/index.js';
import { loadNative, type DispatchEngine } from '../src/native.js';
import { quantileOf, quantiles } from '../src/stats/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FLOOR = path.join(ROOT, 'build-cc', 'gpucolo_floor');

function ensureFloor(): void {
  if (fs.existsSync(FLOOR)) return;
  execFileSync('cmake', ['-S', ROOT, '-B', path.join(ROOT, 'build-cc'), '-DCMAKE_BUILD_TYPE=Release'], { stdio: 'ignore' });
  execFileSync('cmake', ['--build', path.join(ROOT, 'build-cc'), '-j2', '--target', 'gpucolo_floor'], { stdio: 'ignore' });
}

function floor(backend: string, spinNs: number): { p50: number; p99: number } {
  const target = backend === 'cpu' ? 'cpu' : path.join(ROOT, 'build', 'Release', `gpucolo_${backend}.so`);
  const out = execFileSync(FLOOR, [target, '--n', '20000', '--spin', String(spinNs)], { encoding: 'utf8' });
  const j = JSON.parse(out.trim().split('\n').pop()!);
  return { p50: j.p50_ns, p99: j.p99_ns };
}

const us = (ns: number): string => `${(ns / 1e3).toFixed(2)} µs`;

const ms = (ns: number): string => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : us(ns));

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

async function floorTable(): Promise<void> {
  ensureFloor();
  const rows: string[] = [];
  for (const b of listBackends({ engine: 'native' })) {
    if (!b.available) {
      rows.push(`| ${b.name} | - | - | - | unavailable: ${b.reason} |`);
      continue;
    }
    for (const spinNs of [0, 100e3]) {
      const f = floor(b.name, spinNs);
      const g = await probeLatency({ backend: b.name, spinNs, durationNs: 3e9, warmupNs: 300e6, engine: 'native' });
      const p50 = quantileOf(g.roundTrip, 50)!;
      const p99 = quantileOf(g.roundTrip, 99)!;
      rows.push(`| ${b.name}, ${spinNs ? `${spinNs / 1e3} µs spin` : 'empty'} kernel | ${us(f.p50)} / ${us(f.p99)} | ${us(p50)} / ${us(p99)} | ${(p50 / f.p50).toFixed(2)}x / ${(p99 / f.p99).toFixed(2)}x | ${g.launches} launches |`);
    }
  }
  console.log('\n| backend, kernel | C++ floor p50 / p99 | gpucolo p50 / p99 | gpucolo / floor | |\n|---|---|---|---|---|');
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
  const rounds = Math.max(5, arg('--rounds', 5));
  const seconds = arg('--seconds', 1);
  console.log(`\n${new Date().toISOString().slice(0, 10)}, ${os.hostname()} (${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores), Node ${process.version}; \`npm run bench:dispatch${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\``);
  if (!enginesOnly) await floorTable();
  await enginesTable(rounds, seconds);
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exit(1);
});
