/**
 * Sampling benchmarks. Native and TS always run interleaved (bench/interleave.ts: native TS, then
 * TS native, ... one ratio per round, reported as median (min-max) over the rounds):
 *
 * (one read of a big sysfs proc tree, incremental and full: bench/sysfs-walk.ts)
 *
 *  the tracer (runTrace, as `gpucolo trace` runs it) at 100 ms and 10 ms, sysfs + debugfs every
 *     sample, on two trees:
 *      - changing: the path a live GPU takes. bench/kfd-churn.ts rewrites the debugfs kfd files
 *        and the sysfs proc queues from a cycle of 16 variants (ring pointers and active bits
 *        move, queues come and go) in a writer process of its own, every half interval, so that
 *        every sample parses and joins again ("changed" counts the samples that did);
 *      - pointers: the queues and slots of one variant stay, only ring pointers and counters move
 *        (a live GPU whose models keep their queues): the native thread re-decodes the changed
 *        words and the trace keeps its last join (src/trace/relevance.ts);
 *      - unchanged: the same tree held at one variant: after the first sample nothing is parsed
 *        or joined again.
 *     CPU is measured on thread CPU clocks, not wall time, in the steady state (from the tracer's
 *     status line at ~1 s to its last one; the whole run with start-up is a column of its own): the sampling thread's own CPU time
 *     (CLOCK_THREAD_CPUTIME_ID, reported in every native sample; the reads' kernel time is system
 *     time of that thread, so it is in), the JS thread's (the addon's thread clock; Node 20 has no
 *     process.threadCpuUsage), their sum ("gpucolo"), and the whole process (process.cpuUsage:
 *     also V8's GC helper threads and libuv's pool). The TS sampler samples on the JS thread, so
 *     its sampling thread column is empty and its JS thread column holds everything.
 *
 *   npm run bench:trace -- [seconds per run, default 6] [--rounds N, default 5]
 *                          [--trees changing,pointers,unchanged] [--intervals 100,10]
 *                          [--impls native,ts,batched] [--deliver-every ms, default 1000]
 *   (batched: the native thread handing samples to JS in batches, TraceOptions.deliverEveryNs;
 *   batched-tsjoin: the same with the TS join of the sampler's tables instead of the addon's,
 *   TraceOptions.join 'ts'; the ratio table puts the second of --impls, floor aside, against the
 *   first)
 *   NODE_OPTIONS=--expose-gc lets each run start after a full GC of the runs before it.
 *
 *  floor (--impls ...,floor): what bare wake-ups cost on this host, in the same rounds: a C thread
 *     sleeping to deadlines one interval apart and doing nothing (native/tests/wake_floor.cc, built
 *     into build-cc when missing; its thread CPU is the "sampling thread" cell) and a timer in this
 *     process firing every --deliver-every ms doing nothing but read the clocks, as the batched
 *     tracer's JS thread wakes (the "JS thread" cell). On a small VM a wake-up after a long sleep
 *     costs tens to hundreds of µs of refilled caches; the "above the floor" rows take the floor of
 *     each round from the tracer's own work of that round.
 *
 *  verdicts (changing and pointers trees): each sampler's own work against issue 19's budget at
 *     its interval (< 0.5% of one core at 100 ms, < 3% at 10 ms): met in every round, met at the
 *     median, not met, or no verdict where the floor of the same rounds takes a fifth of the
 *     budget or the host is loaded beyond the bench (bench/cpu-verdict.ts).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadNative } from '../src/native.js';
import { runTrace } from '../src/trace/tracer.js';
import { jsThreadCpuNs, samplerThreadsCpuNs } from '../src/trace/sampler.js';
import type { TraceSample } from '../src/trace/schema.js';
import { formatLoad, formatRatio, formatSpread, interleaveRuns, metricDifference, metricRatio, metricSpread, type InterleavedRuns, type Spread } from './interleave.js';
import { ChurnTree, startChurnWriter } from './kfd-churn.js';
import { ROOT, ensureBuildCc } from './build-cc.js';
import { cpuVerdict } from './cpu-verdict.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const positional = process.argv.slice(2).find((a, i, all) => /^\d+(\.\d+)?$/.test(a) && !(i > 0 && all[i - 1].startsWith('--')));
const SECONDS = Number(positional ?? 6);
const ROUNDS = Math.max(1, Number(arg('--rounds') ?? 5));
const TREES = (arg('--trees') ?? 'changing,pointers,unchanged').split(',') as ('changing' | 'pointers' | 'unchanged')[];
const INTERVALS_MS = (arg('--intervals') ?? '100,10').split(',').map(Number);
/**
 * 'batched': the native thread holding samples (all but those with a new process or a reused
 * pid) and handing them over in batches (--deliver-every ms, default 1000:
 * TraceOptions.deliverEveryNs, runTrace's default below 1 s);
 * 'native': each sample at once (deliverEveryNs 0, as before)
 */
type Impl = 'native' | 'ts' | 'batched' | 'batched-tsjoin' | 'floor';
const IMPLS = (arg('--impls') ?? 'native,ts').split(',') as Impl[];
const DELIVER_EVERY_NS = Number(arg('--deliver-every') ?? 1000) * 1e6;
/** the ratio table: the second sampler of --impls (floor aside) against the first */
const COMPARED = IMPLS.filter((i) => i !== 'floor');
const BASE: Impl = COMPARED[0];
const OTHER: Impl | undefined = COMPARED[1];
const IMPL_NAME: Record<Impl, string> = {
  native: 'native thread, each sample at once',
  ts: 'TS timers',
  batched: `native thread, batches of ${DELIVER_EVERY_NS / 1e6} ms`,
  'batched-tsjoin': `native thread, batches of ${DELIVER_EVERY_NS / 1e6} ms, TS join`,
  floor: `floor: bare wake-ups (a C thread every interval, a JS timer every ${DELIVER_EVERY_NS / 1e6} ms)`,
};
/** issue 19's budgets for the tracer's own work (CPU - fs calls) with content changing every sample, % of one core */
const OWN_WORK_BUDGET_PCT: Record<number, number> = { 100: 0.5, 10: 3 };
const WAKE_FLOOR = path.join(ROOT, 'build-cc', 'gpucolo_wake_floor');
const ensureWakeFloor = (): string => ensureBuildCc('gpucolo_wake_floor', 'wake_floor.cc');

function tmpfsDir(): string {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  return fs.mkdtempSync(path.join(base, 'gpucolo-bench-'));
}

/** nearest-rank percentile; null for no values */
export function pct(xs: number[], p: number): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const us = (ns: number): string => `${(ns / 1e3).toFixed(0)} µs`;
const pc = (x: number): string => `${x.toFixed(2)}%`;

type TraceRun = {
  /** % of one core in the steady state (from the status line at ~1 s to the last one): sampling thread + JS thread */
  gpucoloPct: number;
  /** wall time inside file-system calls (the kernel's side of the reads), % of one core over the samples' span */
  ioPct: number;
  /** gpucolo's own work: gpucoloPct - ioPct */
  ownPct: number;
  samplerPct: number | null;
  jsPct: number;
  processPct: number;
  /** % of one core over the whole run: start-up, the first sample and the end included */
  wholeRunPct: number;
  wholeRunProcessPct: number;
  samples: number;
  /** samples that parsed debugfs (some file had changed), % of samples */
  changedPct: number;
  missed: number;
  jitterP50: number | null;
  jitterP99: number | null;
  readP50: number | null;
  parseP50: number | null;
  joinP50: number | null;
  /** samples with an issue (a half-written tree, a read error) */
  issues: number;
  writerSteps: number | null;
  writerCpuPct: number | null;
};

async function traceRun(impl: Impl, intervalNs: number, tree: ChurnTree, changing: boolean, seconds: number): Promise<TraceRun> {
  // the last run's records (parsed below) are garbage now: collected here, not in this run's
  // window (with NODE_OPTIONS=--expose-gc; without it a major GC may land in any run)
  (globalThis as { gc?: () => void }).gc?.();
  const dir = tmpfsDir();
  const out = path.join(dir, 'trace.jsonl');
  // the writer changes the tree on its own schedule, twice per interval: every sample sees a new variant
  const writer = changing ? await startChurnWriter(tree, intervalNs / 2 / 1e6) : null;
  const js0 = jsThreadCpuNs();
  const samp0 = samplerThreadsCpuNs();
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  // steady state: the clocks at the tracer's status line (once a second, from a sample's callback),
  // first at ~1 s and last near the end, so start-up, the first sample and JIT warm-up are left out
  const marks: { wall: bigint; js: number; samp: number; cpu: NodeJS.CpuUsage }[] = [];
  const mark = (): void => void marks.push({ wall: process.hrtime.bigint(), js: jsThreadCpuNs() ?? NaN, samp: samplerThreadsCpuNs(), cpu: process.cpuUsage() });
  let res;
  try {
    res = await runTrace({
      status: mark,
      intervalNs,
      durationNs: seconds * 1e9,
      debugfsIntervalNs: intervalNs,
      sources: ['sysfs', 'debugfs'],
      sysfsRoot: tree.sysfs,
      debugfsRoot: tree.debugfs,
      procRoot: tree.proc,
      impl: impl === 'ts' ? 'ts' : 'native',
      deliverEveryNs: impl === 'batched' || impl === 'batched-tsjoin' ? DELIVER_EVERY_NS : 0,
      join: impl === 'batched-tsjoin' ? 'ts' : 'native',
      baselineNs: 0,
      tailNs: 0,
      stopAfterNs: null,
      out,
    });
  } catch (err) {
    await writer?.stop().catch(() => undefined);
    throw err;
  }
  const wallNs = Number(process.hrtime.bigint() - wall0);
  const cpu = process.cpuUsage(cpu0);
  const jsNs = (jsThreadCpuNs() ?? NaN) - (js0 ?? NaN);
  const samplerNs = impl !== 'ts' ? samplerThreadsCpuNs() - samp0 : null;
  const w = writer ? await writer.stop() : null;
  const samples = fs
    .readFileSync(out, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r): r is TraceSample => r.kind === 'sample');
  fs.rmSync(dir, { recursive: true });
  const late = samples.map((s) => s.t_ns - s.intended_ns);
  const parsed = samples.filter((s) => s.parse_ns > 0);
  const gpucoloNs = jsNs + (samplerNs ?? 0);
  // steady state between the first and the last status mark (needs >= 2 s of tracing)
  const a = marks[0];
  const b = marks[marks.length - 1];
  const steady = marks.length >= 2 ? Number(b.wall - a.wall) : NaN;
  const stJs = b && a ? b.js - a.js : NaN;
  const stSamp = impl !== 'ts' && b && a ? b.samp - a.samp : null;
  const stCpu = b && a ? (b.cpu.user + b.cpu.system - a.cpu.user - a.cpu.system) * 1e3 : NaN;
  // the kernel's side of the reads (wall time in file-system calls) as a share of one core over
  // the samples' span; gpucolo's own work is the rest of its CPU
  const span = samples.length > 1 ? samples[samples.length - 1].t_ns - samples[0].t_ns : NaN;
  const io = samples.slice(1).reduce((x, s) => x + (s.io_ns ?? NaN), 0);
  const ioPct = (io * 100) / span;
  const gpucoloPct = ((stJs + (stSamp ?? 0)) * 100) / steady;
  return {
    gpucoloPct,
    ioPct,
    ownPct: gpucoloPct - ioPct,
    samplerPct: stSamp === null ? null : (stSamp * 100) / steady,
    jsPct: (stJs * 100) / steady,
    processPct: (stCpu * 100) / steady,
    wholeRunPct: (gpucoloNs * 100) / wallNs,
    wholeRunProcessPct: ((cpu.user + cpu.system) * 1e3 * 100) / wallNs,
    samples: res.samples,
    changedPct: samples.length ? (parsed.length * 100) / samples.length : 0,
    missed: res.missedIntervals,
    jitterP50: pct(late, 50),
    jitterP99: pct(late, 99),
    readP50: pct(samples.map((s) => s.read_ns), 50),
    parseP50: pct(parsed.map((s) => s.parse_ns), 50),
    joinP50: pct(samples.map((s) => s.join_ns), 50),
    issues: samples.filter((s) => s.issues.length > 0).length,
    writerSteps: w ? w.steps : null,
    writerCpuPct: w ? (w.cpuNs * 100) / wallNs : null,
  };
}

/**
 * The floor of one round: the C thread (a child process) and a JS timer at the batched tracer's
 * pace run side by side for `seconds`, with the churn writer running as it does for the tracer.
 * Steady state as in traceRun: the C thread counts from its first wake-up after 1 s, the JS timer
 * from its first tick to its last. Only CPU figures; the rest is NaN (no samples, no reads).
 */
async function floorRun(intervalNs: number, tree: ChurnTree, changing: boolean, seconds: number): Promise<TraceRun> {
  (globalThis as { gc?: () => void }).gc?.();
  const writer = changing ? await startChurnWriter(tree, intervalNs / 2 / 1e6) : null;
  const marks: { wall: bigint; js: number }[] = [];
  const timer = setInterval(() => void marks.push({ wall: process.hrtime.bigint(), js: jsThreadCpuNs() ?? NaN }), DELIVER_EVERY_NS / 1e6);
  let out: string;
  try {
    out = await new Promise<string>((resolve, reject) =>
      execFile(WAKE_FLOOR, [String(intervalNs), String(seconds)], { encoding: 'utf8' }, (err, stdout) => (err ? reject(new Error(`${WAKE_FLOOR}: ${stdout.trim() || err.message}`)) : resolve(stdout))),
    );
  } finally {
    clearInterval(timer);
    await writer?.stop();
  }
  const j = JSON.parse(out.trim().split('\n').pop()!) as { wakes: number; cpu_ns: number; wall_ns: number };
  const a = marks[0];
  const b = marks[marks.length - 1];
  const jsPct = marks.length >= 2 ? ((b.js - a.js) * 100) / Number(b.wall - a.wall) : NaN;
  const samplerPct = (j.cpu_ns * 100) / j.wall_ns;
  const none = Number.NaN;
  return {
    gpucoloPct: samplerPct + jsPct,
    ioPct: none,
    ownPct: samplerPct + jsPct,
    samplerPct,
    jsPct,
    processPct: none,
    wholeRunPct: none,
    wholeRunProcessPct: none,
    samples: none,
    changedPct: none,
    missed: none,
    jitterP50: null,
    jitterP99: null,
    readP50: null,
    parseP50: null,
    joinP50: null,
    issues: none,
    writerSteps: null,
    writerCpuPct: null,
  };
}

const cell = (s: Spread | null, f: (x: number) => string): string => (s ? formatSpread(s, f) : '–');

async function tracer(): Promise<void> {
  for (const which of TREES) {
    // the writer runs for both changing trees; 'pointers' keeps the queues and slots of step 0
    const changing = which !== 'unchanged';
    const tree = new ChurnTree(which === 'pointers' ? 'pointers' : 'all');
    const table: string[] = [];
    const ratios: string[] = [];
    const loads: number[] = [];
    const writerNotes: string[] = [];
    const aboveFloor: string[] = [];
    const verdicts: string[] = [];
    try {
      for (const ms of INTERVALS_MS) {
        const intervalNs = ms * 1e6;
        const run: InterleavedRuns<TraceRun> = await interleaveRuns<TraceRun>(
          IMPLS.map((impl) => ({
            name: impl,
            // warm-up runs (round -1) are short: JIT and page cache only
            run: (round: number) => (impl === 'floor' ? floorRun(intervalNs, tree, changing, round < 0 ? 1.5 : SECONDS) : traceRun(impl, intervalNs, tree, changing, round < 0 ? 1 : SECONDS)),
          })),
          {
            rounds: ROUNDS,
            warmupRuns: 1,
            onRun: (r, name, m) =>
              process.stderr.write(
                name === 'floor'
                  ? `${which} ${ms} ms round ${r + 1}/${ROUNDS} floor: C thread ${pc(m.samplerPct as number)}, JS timer ${pc(m.jsPct as number)}\n`
                  : `${which} ${ms} ms round ${r + 1}/${ROUNDS} ${name}: gpucolo ${pc(m.gpucoloPct as number)}, process ${pc(m.processPct as number)}, changed ${(m.changedPct as number).toFixed(0)}%\n`,
              ),
          },
        );
        loads.push(...run.load);
        for (const impl of IMPLS) {
          const m = (k: keyof TraceRun) => metricSpread(run, impl, k);
          const ns = (k: keyof TraceRun) => cell(m(k), us);
          table.push(
            `| ${ms} ms, ${IMPL_NAME[impl]} | ${cell(m('gpucoloPct'), pc)} | ${cell(m('ioPct'), pc)} | ${cell(m('ownPct'), pc)} | ${cell(m('samplerPct'), pc)} | ${cell(m('jsPct'), pc)} | ${cell(m('processPct'), pc)} | ${cell(m('wholeRunPct'), pc)} / ${cell(m('wholeRunProcessPct'), pc)} | ${cell(m('samples'), (x) => x.toFixed(0))} | ${cell(m('changedPct'), (x) => `${x.toFixed(0)}%`)} | ${cell(m('missed'), (x) => x.toFixed(0))} | ${ns('jitterP50')} / ${ns('jitterP99')} | ${ns('readP50')} | ${ns('parseP50')} | ${ns('joinP50')} |`,
          );
        }
        const r = (k: keyof TraceRun): string => {
          const s = OTHER ? metricRatio(run, k, OTHER, BASE) : null;
          return s ? formatRatio(s, 2) : '–';
        };
        ratios.push(`| ${ms} ms | ${r('gpucoloPct')} | ${r('processPct')} | ${r('readP50')} | ${r('parseP50')} | ${r('joinP50')} | ${formatLoad(run.load)} |`);
        if (IMPLS.includes('floor')) {
          for (const impl of IMPLS.filter((i) => i !== 'floor')) {
            const d = (k: keyof TraceRun, fk: keyof TraceRun = k) => cell(metricDifference(run, k, impl, 'floor', fk), pc);
            aboveFloor.push(`| ${ms} ms, ${IMPL_NAME[impl]} | ${d('ownPct', 'gpucoloPct')} | ${d('samplerPct')} | ${d('jsPct')} |`);
          }
        }
        const budget = OWN_WORK_BUDGET_PCT[ms];
        if (changing && budget !== undefined) {
          const floor = IMPLS.includes('floor') ? metricSpread(run, 'floor', 'gpucoloPct') : null;
          for (const impl of COMPARED) {
            const own = metricSpread(run, impl, 'ownPct');
            if (!own) continue;
            const v = cpuVerdict({ own, floor, budgetPct: budget, load: run.load, cores: os.cpus().length });
            verdicts.push(`| ${ms} ms, ${IMPL_NAME[impl]} | ${cell(own, pc)} | ${cell(floor, pc)} | < ${pc(budget)} | **${v.verdict}**: ${v.why} |`);
          }
        }
        if (changing) {
          const steps = metricSpread(run, BASE, 'writerSteps');
          const wcpu = metricSpread(run, BASE, 'writerCpuPct');
          const issues = IMPLS.filter((i) => i !== 'floor').flatMap((impl) => metricSpread(run, impl, 'issues')!.values);
          writerNotes.push(
            `${ms} ms: writer every ${ms / 2} ms, ${cell(steps, (x) => x.toFixed(0))} steps per run, its own process at ${cell(wcpu, pc)} of a core; samples with an issue per run (a queue directory caught mid-change): ${Math.min(...issues)}-${Math.max(...issues)}`,
          );
        }
      }
    } finally {
      tree.dispose();
    }
    console.log(
      `\ntracer, ${which === 'changing' ? 'CHANGING tree (queues, slots and pointers move: every sample parses and joins again)' : which === 'pointers' ? 'POINTERS tree (only ring pointers and counters move, as on a live GPU whose queues stay: the native thread re-decodes the changed words, the trace keeps its last join)' : 'UNCHANGED tree (nothing parsed or joined after the first sample)'}; ${ROUNDS} rounds of ${SECONDS} s per sampler, ${IMPLS.map((i) => IMPL_NAME[i]).join(' / ')} interleaved; ${formatLoad(loads)}; median over rounds (min-max)`,
    );
    console.log(
      `\n| interval, sampler | gpucolo CPU (% of one core) | of it in fs calls (kernel side) | own work (CPU - fs calls) | sampling thread | JS thread | whole process | whole run incl. start-up: gpucolo / process | samples | changed | missed | jitter p50 / p99 | read p50 | parse p50${changing ? '' : ' (the first sample: the only one parsed)'} | join p50 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|`,
    );
    for (const row of table) console.log(row);
    if (OTHER) {
      console.log(`\n| interval | ${IMPL_NAME[OTHER]} / ${IMPL_NAME[BASE]} per round: gpucolo CPU | whole process CPU | read p50 | parse p50 | join p50 | host |\n|---|---|---|---|---|---|---|`);
      for (const row of ratios) console.log(row);
    }
    if (aboveFloor.length) {
      console.log(`\n| interval, sampler | own work above the floor (per round: own work - floor) | sampling thread - C thread floor | JS thread - JS timer floor |\n|---|---|---|---|`);
      for (const row of aboveFloor) console.log(row);
    }
    if (verdicts.length) {
      console.log(
        `\n| interval, sampler | own work | floor (bare wake-ups, same rounds) | budget (issue 19) | verdict (bench/cpu-verdict.ts: none on a slow or busy host) |\n|---|---|---|---|---|`,
      );
      for (const row of verdicts) console.log(row);
    }
    for (const n of writerNotes) console.log(`- ${n}`);
  }
}

/** Bad command-line values: one line each, before anything runs. */
function badArgs(): string[] {
  const bad: string[] = [];
  const unknown = IMPLS.filter((i) => !(i in IMPL_NAME));
  if (unknown.length) bad.push(`--impls: unknown sampler(s) ${unknown.join(', ')} (known: ${Object.keys(IMPL_NAME).join(', ')})`);
  else if (new Set(IMPLS).size !== IMPLS.length || IMPLS.length < 2) bad.push('--impls: at least two different samplers to interleave (e.g. batched,floor or native,batched)');
  const trees = TREES.filter((t) => !['changing', 'pointers', 'unchanged'].includes(t));
  if (trees.length) bad.push(`--trees: unknown tree(s) ${trees.join(', ')} (known: changing, pointers, unchanged)`);
  if (INTERVALS_MS.some((ms) => !Number.isFinite(ms) || ms < 10)) bad.push(`--intervals: milliseconds >= 10, comma-separated (got ${arg('--intervals')})`);
  return bad;
}

async function main(): Promise<void> {
  const bad = badArgs();
  if (bad.length) {
    for (const b of bad) console.error(`bench: ${b}`);
    process.exit(2);
  }
  if (!loadNative()) {
    console.error('bench: the native core is not loaded (npm run build:native)');
    process.exit(1);
  }
  if (jsThreadCpuNs() === null) {
    console.error('bench: no per-thread CPU clock (the native core provides one)');
    process.exit(1);
  }
  if (IMPLS.includes('floor')) ensureWakeFloor();
  console.log(
    `\n${new Date().toISOString().slice(0, 10)}, ${os.hostname()} (${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} at the start), Node ${process.version}; \`npm run bench:trace${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\``,
  );
  await tracer();
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
