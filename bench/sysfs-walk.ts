/**
 * The sysfs proc walk: incremental (read what can have changed) vs full (every file, every sample),
 * native and TS, all interleaved (bench/interleave.ts; one ratio per round, median (min-max)):
 *
 *  1. read: one read of a proc tree of 64 processes x 8 queues on tmpfs, while one queue is
 *     recreated (a new directory under the same id) before every read, round-robin over the
 *     processes: the path of a live host where queues come and go. "change only" times that
 *     change alone (two renames), which every other variant's time includes;
 *  2. growth: the native incremental and full reads on 8, 64 and 512 processes x 8 queues, with 0,
 *     1 and 8 queues recreated before each read: the incremental read should follow the changed
 *     queues (and one directory listing per process), the full walk the number of queues;
 *  3. tracer: `gpucolo trace --sources sysfs` (runTrace) at 10 ms on N x 8 trees (--sizes, default
 *     64) while another process recreates one queue every 10 ms, incremental vs full, native
 *     thread: missed intervals (% of the intervals of the run), the sampler's own cost per sample
 *     (read_cpu_ns: its thread's CPU for the read; io_ns: wall time inside the file-system calls)
 *     and gpucolo's whole CPU per sample (sampling thread + JS thread, thread clocks).
 *
 *   npm run bench:sysfs-walk -- [--rounds N, default 5] [--seconds S per tracer run, default 5]
 *                               [--only read|growth|tracer] [--sizes 8,64,512]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadNative, type NativeProcsWalker } from '../src/native.js';
import { ProcsWalkerTs } from '../src/kfd/sysfs-procs.js';
import { runTrace } from '../src/trace/tracer.js';
import { jsThreadCpuNs, samplerThreadsCpuNs } from '../src/trace/sampler.js';
import type { TraceSample } from '../src/trace/schema.js';
import { formatLoad, formatRatio, formatSpread, interleave, interleaveRuns, medianNs, metricRatio, metricSpread, ratioSpread, type Spread } from './interleave.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const ROUNDS = Math.max(5, Number(arg('--rounds') ?? 5));
const SECONDS = Number(arg('--seconds') ?? 5);
const ONLY = arg('--only');
const SIZES = (arg('--sizes') ?? '64').split(',').map(Number);

const us = (ns: number): string => (ns >= 10e3 ? `${(ns / 1e3).toFixed(0)} µs` : `${(ns / 1e3).toFixed(1)} µs`);
const pc = (x: number): string => `${x.toFixed(2)}%`;

/** A proc tree of `procs` x `queues` on tmpfs, the files as KFD writes them, with spare queue directories to swap in. */
class BigTree {
  readonly root: string;
  private next = 0;
  constructor(
    readonly procs: number,
    readonly queues = 8,
  ) {
    const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
    this.root = fs.mkdtempSync(path.join(base, 'gpucolo-walk-'));
    for (let p = 0; p < procs; p++) {
      const d = this.proc(p);
      for (let q = 0; q < queues; q++) this.queueDir(path.join(d, 'queues', String(q)), q === queues - 1 ? 1 : 0);
      // a spare directory per process: recreate() swaps it with queue 0 (a new inode under id 0)
      this.queueDir(path.join(this.root, 'spare', String(p)), 0);
      fs.writeFileSync(path.join(d, 'pasid'), `${0x8000 + p}\n`);
      fs.writeFileSync(path.join(d, 'vram_31774'), '2151677952\n');
      fs.writeFileSync(path.join(d, 'sdma_31774'), '0\n');
      fs.mkdirSync(path.join(d, 'stats_31774'));
      fs.writeFileSync(path.join(d, 'stats_31774/evicted_ms'), '0\n');
      fs.writeFileSync(path.join(d, 'stats_31774/cu_occupancy'), '12\n');
    }
  }
  private proc(p: number): string {
    return path.join(this.root, 'class/kfd/kfd/proc', String(10000 + p));
  }
  private queueDir(d: string, type: number): void {
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'type'), String(type));
    fs.writeFileSync(path.join(d, 'size'), '1048576');
    fs.writeFileSync(path.join(d, 'gpuid'), '31774');
  }
  /** Queue 0 of the next n processes (round-robin) becomes a new directory: two renames each. */
  recreate(n: number): void {
    for (let i = 0; i < n; i++) {
      const p = this.next++ % this.procs;
      const q = path.join(this.proc(p), 'queues', '0');
      const spare = path.join(this.root, 'spare', String(p));
      const aside = `${spare}.x`;
      fs.renameSync(q, aside);
      fs.renameSync(spare, q);
      fs.renameSync(aside, spare);
    }
  }
  dispose(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

function nativeWalker(root: string, walk: 'incremental' | 'full'): NativeProcsWalker {
  // counters at their default pace of a trace at 10 ms (1 s): once per 100 reads
  return loadNative()!.createProcsWalker({ sysfsRoot: root, sysfsWalk: walk, countersEvery: 100 });
}

function read(): void {
  const tree = new BigTree(64);
  try {
    const nInc = nativeWalker(tree.root, 'incremental');
    const nFull = nativeWalker(tree.root, 'full');
    const tInc = new ProcsWalkerTs(tree.root, { walk: 'incremental', countersEvery: 100 });
    const tFull = new ProcsWalkerTs(tree.root, { walk: 'full' });
    const run = interleave(
      [
        { name: 'native incremental', fn: () => (tree.recreate(1), nInc.read()) },
        { name: 'native full', fn: () => (tree.recreate(1), nFull.read()) },
        { name: 'TS incremental', fn: () => (tree.recreate(1), tInc.read()) },
        { name: 'TS full', fn: () => (tree.recreate(1), tFull.read()) },
        { name: 'change only', fn: () => tree.recreate(1) },
      ],
      { rounds: ROUNDS, timePerRoundMs: 400, warmupCalls: 20 },
    );
    console.log(`\nread: 64 processes x 8 queues (tmpfs), one queue recreated before every read; ${run.rounds} interleaved rounds of 400 ms per variant, ${formatLoad(run.load)}`);
    console.log('\n| variant | one read (incl. the change): median of round medians (min-max) |\n|---|---|');
    for (const v of run.variants) console.log(`| ${v.name} | ${formatSpread(medianNs(run, v.name), us)} |`);
    console.log('\n| ratio per round | median (min-max) |\n|---|---|');
    console.log(`| native: full / incremental | ${formatRatio(ratioSpread(run, 'native full', 'native incremental'), 1)} |`);
    console.log(`| TS: full / incremental | ${formatRatio(ratioSpread(run, 'TS full', 'TS incremental'), 1)} |`);
    console.log(`| incremental: TS / native | ${formatRatio(ratioSpread(run, 'TS incremental', 'native incremental'), 1)} |`);
    console.log(`| full: TS / native | ${formatRatio(ratioSpread(run, 'TS full', 'native full'), 1)} |`);
  } finally {
    tree.dispose();
  }
}

function growth(): void {
  console.log('\ngrowth: native reads, N processes x 8 queues (tmpfs), k queues recreated before every read (k = 0, 1, 8); interleaved per size');
  console.log('\n| processes (queues) | incremental, k=0 | k=1 | k=8 | full, k=1 | full / incremental (k=1) per round | host |\n|---|---|---|---|---|---|---|');
  for (const procs of [8, 64, 512]) {
    const tree = new BigTree(procs);
    try {
      const w = [nativeWalker(tree.root, 'incremental'), nativeWalker(tree.root, 'incremental'), nativeWalker(tree.root, 'incremental')];
      const full = nativeWalker(tree.root, 'full');
      const run = interleave(
        [
          { name: 'inc0', fn: () => w[0].read() },
          { name: 'inc1', fn: () => (tree.recreate(1), w[1].read()) },
          { name: 'inc8', fn: () => (tree.recreate(8), w[2].read()) },
          { name: 'full1', fn: () => (tree.recreate(1), full.read()) },
        ],
        { rounds: ROUNDS, timePerRoundMs: procs >= 512 ? 1000 : 300, warmupCalls: 5, minCalls: 5 },
      );
      const m = (n: string): string => formatSpread(medianNs(run, n), us);
      console.log(`| ${procs} (${procs * 8}) | ${m('inc0')} | ${m('inc1')} | ${m('inc8')} | ${m('full1')} | ${formatRatio(ratioSpread(run, 'full1', 'inc1'), 1)} | ${formatLoad(run.load)} |`);
    } finally {
      tree.dispose();
    }
  }
}

type TracerRun = {
  missedPct: number;
  samples: number;
  readCpuP50: number | null;
  ioP50: number | null;
  readP50: number | null;
  cpuPerSamplePct: number | null;
  /** gpucolo's whole CPU (sampling thread + JS thread: assembly, events, the record) per sample, thread clocks */
  gpucoloPerSample: number | null;
};

/**
 * A process of its own (its CPU is not gpucolo's) that recreates queue 0 of one process after the
 * other every periodMs, as BigTree.recreate does: two renames each.
 */
function startChurn(tree: BigTree, periodMs: number): ChildProcess {
  const script = `
    const fs = require('fs'), path = require('path');
    const [root, n, period] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
    let i = 0;
    setInterval(() => {
      const p = i++ % n;
      const q = path.join(root, 'class/kfd/kfd/proc', String(10000 + p), 'queues', '0');
      const spare = path.join(root, 'spare', String(p));
      fs.renameSync(q, spare + '.x'); fs.renameSync(spare, q); fs.renameSync(spare + '.x', spare);
    }, period);`;
  return spawn(process.execPath, ['-e', script, tree.root, String(tree.procs), String(periodMs)], { stdio: 'ignore' });
}

const p50 = (xs: number[]): number | null => (xs.length ? [...xs].sort((a, b) => a - b)[xs.length >> 1] : null);

async function tracerRun(root: string, walk: 'incremental' | 'full', intervalNs: number): Promise<TracerRun> {
  const out = path.join(root, `trace-${walk}.jsonl`);
  // steady state: thread clocks at the tracer's status lines (once a second), the first at ~1 s
  // and the last near the end, so start-up and JIT warm-up are left out
  const marks: { js: number; samp: number; samples: number }[] = [];
  const res = await runTrace({
    status: (line) => void marks.push({ js: jsThreadCpuNs() ?? NaN, samp: samplerThreadsCpuNs(), samples: Number(/ (\d+) samples/.exec(line)?.[1] ?? NaN) }),
    intervalNs,
    durationNs: SECONDS * 1e9,
    debugfsIntervalNs: null,
    sources: ['sysfs'],
    sysfsWalk: walk,
    countersIntervalNs: null,
    sysfsRoot: root,
    debugfsRoot: path.join(root, 'none'),
    procRoot: path.join(root, 'none'),
    impl: 'native',
    baselineNs: 0,
    tailNs: 0,
    stopAfterNs: null,
    out,
  });
  const samples = fs
    .readFileSync(out, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { kind: string })
    .filter((r): r is TraceSample => r.kind === 'sample');
  fs.rmSync(out);
  const [a, b] = [marks[0], marks[marks.length - 1]];
  const steadySamples = marks.length >= 2 ? b.samples - a.samples : 0;
  const intervals = res.samples + res.missedIntervals;
  const readCpu = samples.map((s) => s.read_cpu_ns).filter((x): x is number => x !== undefined);
  return {
    missedPct: intervals ? (100 * res.missedIntervals) / intervals : NaN,
    samples: res.samples,
    readCpuP50: p50(readCpu),
    ioP50: p50(samples.map((s) => s.io_ns).filter((x): x is number => x !== undefined)),
    readP50: p50(samples.map((s) => s.read_ns)),
    // the sampling thread's CPU for reads, as a share of the interval
    cpuPerSamplePct: readCpu.length ? (100 * readCpu.reduce((a, b) => a + b, 0)) / readCpu.length / intervalNs : null,
    gpucoloPerSample: steadySamples > 0 ? (b.js - a.js + b.samp - a.samp) / steadySamples : null,
  };
}

async function tracer(): Promise<void> {
  const cell = (s: Spread | null, f: (x: number) => string): string => (s ? formatSpread(s, f) : '–');
  for (const procs of SIZES) {
    const tree = new BigTree(procs);
    // a queue recreated every interval (by another process), so every sample has one new queue
    const churn = startChurn(tree, 10);
    try {
      const run = await interleaveRuns<TracerRun>(
        (['incremental', 'full'] as const).map((walk) => ({ name: walk, run: () => tracerRun(tree.root, walk, 10e6) })),
        { rounds: ROUNDS, onRun: (r, name, m) => process.stderr.write(`tracer ${procs} processes round ${r + 1}/${ROUNDS} ${name}: missed ${pc(m.missedPct as number)}\n`) },
      );
      console.log(
        `\ntracer: trace --sources sysfs --interval 10ms, native thread, ${procs} processes x 8 queues, one queue recreated every 10 ms by another process, ${SECONDS} s per run, ${ROUNDS} interleaved rounds, ${formatLoad(run.load)}; median (min-max) over rounds`,
      );
      console.log('\n| walk | missed intervals | samples | read p50 | of it in fs calls (io p50) | sampler thread CPU per sample p50 | sampler thread, % of one core | gpucolo CPU per sample (sampler + JS) |\n|---|---|---|---|---|---|---|---|');
      for (const walk of ['incremental', 'full']) {
        const m = (k: keyof TracerRun) => metricSpread(run, walk, k);
        console.log(`| ${walk} | ${cell(m('missedPct'), pc)} | ${cell(m('samples'), (x) => x.toFixed(0))} | ${cell(m('readP50'), us)} | ${cell(m('ioP50'), us)} | ${cell(m('readCpuP50'), us)} | ${cell(m('cpuPerSamplePct'), pc)} | ${cell(m('gpucoloPerSample'), us)} |`);
      }
      const r = metricRatio(run, 'gpucoloPerSample', 'full', 'incremental');
      if (r) console.log(`\ngpucolo CPU per sample, full / incremental per round: ${formatRatio(r, 1)}`);
    } finally {
      churn.kill();
      tree.dispose();
    }
  }
}

async function main(): Promise<void> {
  if (!loadNative()) {
    console.error('bench: the native core is not loaded (npm run build:native)');
    process.exit(1);
  }
  console.log(
    `\n${new Date().toISOString().slice(0, 10)}, ${os.hostname()} (${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} at the start), Node ${process.version}; \`npm run bench:sysfs-walk${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\``,
  );
  if (!ONLY || ONLY === 'read') read();
  if (!ONLY || ONLY === 'growth') growth();
  if (!ONLY || ONLY === 'tracer') await tracer();
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
