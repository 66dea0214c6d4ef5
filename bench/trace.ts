/**
 * Sampling benchmarks (ratios in one run):
 *  1. enumerate: one read of a sysfs proc tree with 64 processes x 8 queues on tmpfs, native vs TS;
 *  2. end to end: tracer CPU time per second of tracing against the fixture host tree at 100 ms
 *     and 10 ms intervals (sysfs + debugfs every sample), native thread vs TS timers, and the
 *     sampling jitter (actual - intended) p50/p99 from the trace itself.
 *
 *   npm run bench:trace            (= tsx bench/trace.ts [seconds per run, default 5])
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { readKfdProcsRaw } from '../src/kfd/parse.js';
import { loadNative } from '../src/native.js';
import { runTrace } from '../src/trace/tracer.js';
import type { TraceSample } from '../src/trace/schema.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const EXAMPLE = path.join(ROOT, 'examples/kfd-mi300x');
const SECONDS = Number(process.argv[2] ?? 5);

function tmpfsDir(): string {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  return fs.mkdtempSync(path.join(base, 'gpucolo-bench-'));
}

/** 64 processes x 8 queues, the files as KFD writes them (queue files without newline). */
function bigProcTree(): string {
  const root = tmpfsDir();
  for (let p = 0; p < 64; p++) {
    const d = path.join(root, 'class/kfd/kfd/proc', String(10000 + p));
    for (let q = 0; q < 8; q++) {
      fs.mkdirSync(path.join(d, 'queues', String(q)), { recursive: true });
      fs.writeFileSync(path.join(d, 'queues', String(q), 'type'), q === 7 ? '1' : '0');
      fs.writeFileSync(path.join(d, 'queues', String(q), 'size'), '1048576');
      fs.writeFileSync(path.join(d, 'queues', String(q), 'gpuid'), '31774');
    }
    fs.writeFileSync(path.join(d, 'pasid'), '0\n');
    fs.writeFileSync(path.join(d, 'vram_31774'), '2151677952\n');
    fs.writeFileSync(path.join(d, 'sdma_31774'), '0\n');
    fs.mkdirSync(path.join(d, 'stats_31774'));
    fs.writeFileSync(path.join(d, 'stats_31774/evicted_ms'), '0\n');
    fs.writeFileSync(path.join(d, 'stats_31774/cu_occupancy'), '12\n');
  }
  return root;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const us = (ns: number): string => `${(ns / 1e3).toFixed(0)} µs`;

async function endToEnd(impl: 'native' | 'ts', intervalNs: number) {
  const dir = tmpfsDir();
  const out = path.join(dir, 'trace.jsonl');
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  const res = await runTrace({
    intervalNs,
    durationNs: SECONDS * 1e9,
    debugfsIntervalNs: intervalNs,
    sources: ['sysfs', 'debugfs'],
    sysfsRoot: path.join(EXAMPLE, 'sys'),
    debugfsRoot: path.join(EXAMPLE, 'sys/kernel/debug'),
    procRoot: path.join(EXAMPLE, 'proc'),
    impl,
    baselineNs: 0,
    tailNs: 0,
    stopAfterNs: null,
    out,
  });
  const cpu = process.cpuUsage(cpu0);
  const wallNs = Number(process.hrtime.bigint() - wall0);
  const samples = fs
    .readFileSync(out, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r): r is TraceSample => r.kind === 'sample');
  fs.rmSync(dir, { recursive: true });
  const late = samples.map((s) => s.t_ns - s.intended_ns);
  const readNs = samples.reduce((a, s) => a + s.read_ns, 0);
  return {
    cpuPct: ((cpu.user + cpu.system) * 1e3 * 100) / wallNs,
    // the kernel's share (reading sysfs/debugfs) is reported apart from the tracer's own work
    cpuExReadPct: Math.max(0, ((cpu.user + cpu.system) * 1e3 - readNs) * 100) / wallNs,
    samples: res.samples,
    missed: res.missedIntervals,
    jitterP50: pct(late, 50),
    jitterP99: pct(late, 99),
    readP50: pct(samples.map((s) => s.read_ns), 50),
    parseJoinP50: pct(samples.map((s) => s.parse_ns + s.join_ns), 50),
  };
}

async function main(): Promise<void> {
  if (!loadNative()) {
    console.error('bench: the native core is not loaded (npm run build:native)');
    process.exit(1);
  }
  const big = bigProcTree();
  const bench = new Bench({ time: 800, warmupTime: 200 });
  bench.add('native', () => readKfdProcsRaw(big, 'native'));
  bench.add('ts', () => readKfdProcsRaw(big, 'ts'));
  await bench.run();
  const p50 = (name: string) => (bench.tasks.find((t) => t.name === name)!.result as unknown as { latency: { p50: number } }).latency.p50 * 1e6;
  fs.rmSync(big, { recursive: true });

  console.log(`\n${new Date().toISOString().slice(0, 10)}, ${os.hostname()} (${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores), Node ${process.version}; \`npm run bench:trace -- ${SECONDS}\``);
  console.log('\n| sysfs proc tree, 64 processes x 8 queues (tmpfs), one read | native | TS | TS / native |\n|---|---|---|---|');
  console.log(`| median | ${us(p50('native'))} | ${us(p50('ts'))} | ${(p50('ts') / p50('native')).toFixed(1)}x |`);

  console.log('\n| tracer, fixture host tree, sysfs + debugfs every sample | CPU (% of one core) | CPU without the reads | samples | missed | jitter p50 / p99 | read p50 | parse+join p50 |\n|---|---|---|---|---|---|---|---|');
  for (const interval of [100e6, 10e6]) {
    for (const impl of ['native', 'ts'] as const) {
      const r = await endToEnd(impl, interval);
      console.log(
        `| ${interval / 1e6} ms, ${impl === 'native' ? 'native thread' : 'TS timers'} | ${r.cpuPct.toFixed(2)}% | ${r.cpuExReadPct.toFixed(2)}% | ${r.samples} | ${r.missed} | ${us(r.jitterP50)} / ${us(r.jitterP99)} | ${us(r.readP50)} | ${us(r.parseJoinP50)} |`,
      );
    }
  }
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exit(1);
});
