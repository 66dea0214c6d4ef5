/**
 * `distributed compare` in rounds: the order the runs happened (rotated each round), the round
 * directories, pooling over rounds, the spread, the quality block (host interference, rounds that
 * disagree, failed runs), target verdicts that a flag makes inconclusive, and the reaped ranks'
 * CPU time counted as gpucolo's own. Most of it runs with an injected runner that starts nothing
 * (results from the fixture files, times scaled); one real compare --rounds 2 on 2 gloo ranks with
 * the smallest settings (skipped without Debian's torch). No wall-clock assertions.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { compareDistributed, loadDistributedResult, loadRoundsSummary, type DistMethod, type DistributedResult, type DistributedRunOptions, type DistributedRunResult, type RoundRun } from '../src/runners/distributed/index.js';
import { ROUNDS_FILES, pairedRatios, summarizeRounds, targetVerdict } from '../src/runners/distributed/rounds-summary.js';
import { reapedChildrenTicks, runHostLoadWindow, withReapedChildren } from '../src/runners/distributed/host-load.js';
import { resultFileName } from '../src/runners/distributed/schema.js';
import { runRounds } from '../src/runners/distributed/rounds.js';
import { qualityOf, type HostLoad } from '../src/stats/index.js';
import { distributedCli } from './helpers/cli-in-process.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIX = path.join(HERE, 'fixtures/distributed');
const PY = '/usr/bin/python3';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-dist-rounds-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const outDir = (name: string): string => path.join(tmp, `${name}-${++seq}`);

const QUIET: HostLoad = { wallS: 2, cpus: 2, foreignCores: 0.05, ownCores: 1.9, stealShare: 0, loadAverage1: 0.3 };
const BUSY: HostLoad = { ...QUIET, foreignCores: 0.8, loadAverage1: 2.9 };

/** A fixture result (3 epochs of 16 steps) with every time multiplied by `slow`. */
function scaled(method: DistMethod, slow: number): DistributedResult {
  const r = structuredClone(loadDistributedResult(path.join(FIX, resultFileName(method))));
  for (const e of r.epochs) {
    e.train_time *= slow;
    e.avg_batch_time = e.avg_batch_time! * slow;
    e.train_throughput = e.train_throughput! / slow;
    for (const k of ['avg_comm_time', 'avg_comm_time_pull', 'avg_comm_time_push'] as const) if (typeof e[k] === 'number') e[k] = e[k]! * slow;
  }
  return r;
}

function runResult(method: DistMethod, dir: string, result: DistributedResult | null, extra: Partial<DistributedRunResult> = {}): DistributedRunResult {
  return {
    method,
    launcher: 'direct',
    why: 'test',
    ok: result !== null,
    ...(result === null ? { error: 'rank 1 exited with code 1: boom' } : {}),
    failedRank: result === null ? 1 : null,
    failedExitCode: result === null ? 1 : null,
    stoppedAfterExit: [],
    timedOut: false,
    interrupted: false,
    worldSize: 2,
    outDir: dir,
    resultFile: path.join(dir, resultFileName(method)),
    manifestFile: path.join(dir, `run_${method}.json`),
    logDir: path.join(dir, 'logs', method),
    result,
    wallS: 3,
    scriptS: result ? 2.9 : null,
    overheadS: result ? 0.1 : null,
    processes: [],
    ...extra,
  };
}

/** Round runs of `labels` over `rounds`, rotated, each from figures(label, round). */
function roundRuns(labels: DistMethod[], rounds: number, fig: (m: DistMethod, round: number) => { slow?: number; failed?: boolean; load?: HostLoad }): { runs: RoundRun[]; order: string[][] } {
  const runs: RoundRun[] = [];
  const order: string[][] = [];
  for (let r = 1; r <= rounds; r++) {
    const o = [...labels.slice((r - 1) % labels.length), ...labels.slice(0, (r - 1) % labels.length)];
    order.push(o);
    o.forEach((m, i) => {
      const f = fig(m, r);
      const dir = `/x/round-${r}`;
      runs.push({ label: m, method: m, round: r, position: i + 1, dir, result: runResult(m, dir, f.failed ? null : scaled(m, f.slow ?? 1)), hostLoad: f.load ?? QUIET });
    });
  }
  return { runs, order };
}

const summarize = (labels: DistMethod[], rounds: number, fig: Parameters<typeof roundRuns>[2]) => {
  const { runs, order } = roundRuns(labels, rounds, fig);
  return summarizeRounds({ dir: '/x', rounds, order, labels, runs, interrupted: false });
};

describe('pooling, spread and quality (injected results)', () => {
  it('pools every step of every round; spreads per figure; speedup against the same round\'s DDP', () => {
    // round 2 runs everything twice as slow (the host got busier): ratios within a round hold
    const s = summarize(['ddp', 'allreduce', 'ps'], 2, (_m, r) => ({ slow: r }));
    const ddp1 = loadDistributedResult(path.join(FIX, resultFileName('ddp')));
    const t1 = ddp1.epochs.reduce((a, e) => a + e.train_time, 0);
    const [ddp, ar, ps] = s.variants;
    expect(ddp.rounds.map((x) => x.steps)).toEqual([48, 48]);
    expect(ddp.rounds[0].stepMs).toBeCloseTo((t1 / 48) * 1000, 9);
    // pooled: (t1 + 2 t1) / 96 steps
    expect(ddp.pooled.stepMs).toBeCloseTo(((3 * t1) / 96) * 1000, 9);
    expect(ddp.spread.stepMs).toMatchObject({ n: 2 });
    expect(ddp.spread.stepMs!.max / ddp.spread.stepMs!.min).toBeCloseTo(2, 9);
    expect(ddp.overlapped).toBe(true);
    expect(ddp.pooled.commMs).toBeNull();
    // per round against the same round's DDP run: the host's slowdown cancels out
    const perRound = ar.rounds.map((x) => x.speedupVsDdp!);
    expect(perRound[0]).toBeCloseTo(perRound[1], 9);
    expect(ar.pooled.allreduceMs).toBeGreaterThan(0);
    expect(ar.pooled.commMs).toBeCloseTo(ar.pooled.allreduceMs!, 12);
    expect(ps.pooled.commMs).toBeCloseTo(ps.pooled.pullMs! + ps.pooled.pushMs!, 12);
    expect(ps.pooled.allreduceMs).toBeNull();
    expect(pairedRatios(s, 'allreduce', 'ddp', 'throughput')).toEqual(perRound);
    expect(s.baseline).toBe('ddp');
    // a 2x drift between rounds is far beyond the 10% the rounds may differ
    expect(s.quality.warnings.map((w) => [w.code, w.phase])).toEqual([
      ['rounds-disagree', 'ddp'],
      ['rounds-disagree', 'allreduce'],
      ['rounds-disagree', 'ps'],
    ]);
    expect(s.quality.warnings[0].message).toMatch(/^ddp: step time .* over 2 rounds \(100% apart, > 10%\)/);
  });

  it('rounds within 10% of each other and a quiet host: ok; host interference and a failed run are flagged with their round', () => {
    expect(summarize(['ddp', 'ps'], 3, (_m, r) => ({ slow: 1 + r * 0.02 })).quality).toEqual({ verdict: 'ok', warnings: [] });
    const s = summarize(['ddp', 'ps'], 3, (m, r) => ({ load: m === 'ps' && r === 2 ? BUSY : QUIET, failed: m === 'ddp' && r === 3 }));
    expect(s.quality.verdict).toBe('noisy');
    expect(s.quality.warnings).toEqual([
      expect.objectContaining({ code: 'round-failed', phase: 'ddp', round: 3, message: expect.stringMatching(/^ddp \(round 3\) failed: rank 1 exited with code 1: boom; the pooled figures lack it$/) }),
      expect.objectContaining({ code: 'host-interference', phase: 'ps', round: 2, message: expect.stringMatching(/^ps \(round 2\): other processes used 0\.80 of 2 cores/) }),
    ]);
    const ddp = s.variants[0];
    expect(ddp.spread.stepMs!.n).toBe(2);
    expect(ddp.rounds[2]).toMatchObject({ ok: false, stepMs: null, error: 'rank 1 exited with code 1: boom' });
    // ps in round 3 has no DDP run to compare with: unknown, not 0
    expect(s.variants[1].rounds[2].speedupVsDdp).toBeNull();
  });

  it('a target verdict is met only when every round meets it and nothing it rests on is flagged', () => {
    const q = qualityOf([{ code: 'host-interference', phase: 'ps', message: 'ps (round 2): other processes used 0.80 of 2 cores' }]);
    const ok = qualityOf([]);
    const within10 = (v: number): boolean => v >= 0.9;
    expect(targetVerdict([0.95, 0.97], within10, ok, ['allreduce', 'ddp'])).toEqual({ verdict: 'met' });
    expect(targetVerdict([0.8, 0.85], within10, ok, ['allreduce', 'ddp'])).toEqual({ verdict: 'not met' });
    expect(targetVerdict([0.85, 0.95], within10, ok, ['allreduce', 'ddp'])).toEqual({ verdict: 'inconclusive', reason: '1 of 2 rounds meet it' });
    expect(targetVerdict([0.95, 0.97], within10, q, ['ps', 'ddp'])).toEqual({ verdict: 'inconclusive', reason: 'host-interference: ps (round 2): other processes used 0.80 of 2 cores' });
    expect(targetVerdict([0.95, 0.97], within10, q, ['allreduce', 'ddp']).verdict).toBe('met');
    expect(targetVerdict([null, null], within10, ok, ['ddp'])).toMatchObject({ verdict: 'inconclusive' });
  });
});

describe('rounds with an injected runner (nothing started)', () => {
  /** Writes the fixture result (times scaled by slow(method, round)) where the run would, and returns its outcome. */
  function fakeRunner(slow: (m: DistMethod, round: number) => number = () => 1) {
    const calls: DistributedRunOptions[] = [];
    const run = async (o: DistributedRunOptions): Promise<DistributedRunResult> => {
      calls.push(o);
      const round = Number(/round-(\d+)/.exec(o.outDir)?.[1] ?? 1);
      const result = scaled(o.method, slow(o.method, round));
      fs.mkdirSync(o.outDir, { recursive: true });
      fs.writeFileSync(path.join(o.outDir, resultFileName(o.method)), JSON.stringify(result));
      return runResult(o.method, o.outDir, result);
    };
    return { calls, run };
  }

  it('runRounds: every variant once per round, order rotated, a directory per round; the order is in the result', async () => {
    const { calls, run } = fakeRunner();
    const variants = ['a', 'b', 'c'].map((label, i) => ({ label, options: { method: (['ddp', 'allreduce', 'ps'] as const)[i] } }));
    const seen: string[] = [];
    const o = await runRounds(variants, { rounds: 3, dirOf: (r, l) => path.join(tmp, 'rr', `round-${r}`, l), run, onRun: (l, r, n) => seen.push(`${r}/${n} ${l}`) });
    expect(o.order).toEqual([
      ['a', 'b', 'c'],
      ['b', 'c', 'a'],
      ['c', 'a', 'b'],
    ]);
    expect(seen).toEqual(o.order.flatMap((x, i) => x.map((l) => `${i + 1}/3 ${l}`)));
    expect(calls.map((c) => path.relative(path.join(tmp, 'rr'), c.outDir))).toEqual(o.order.flatMap((x, i) => x.map((l) => path.join(`round-${i + 1}`, l))));
    expect(o.runs.map((x) => [x.label, x.round, x.position])).toEqual(o.order.flatMap((x, i) => x.map((l, p) => [l, i + 1, p + 1])));
    for (const x of o.runs) expect(x.hostLoad.wallS).toBeGreaterThanOrEqual(0);
    expect(o.interrupted).toBe(false);
  });

  it('runRounds: an interrupted run ends the rounds there', async () => {
    let n = 0;
    const run = async (o: DistributedRunOptions): Promise<DistributedRunResult> => runResult(o.method, o.outDir, null, { interrupted: ++n === 2, ok: false });
    const o = await runRounds([{ label: 'ddp', options: { method: 'ddp' } }, { label: 'ps', options: { method: 'ps' } }], { rounds: 3, dirOf: () => tmp, run });
    expect(o.order).toEqual([['ddp', 'ps']]);
    expect(o.interrupted).toBe(true);
  });

  it('compare --rounds 2: round-<r>/ directories analyzed, rounds.json and reports, per-round --dump-params', async () => {
    const { calls, run } = fakeRunner((m, r) => (m === 'ps' && r === 2 ? 1.5 : 1));
    const out = outDir('compare');
    const res = await compareDistributed({
      methods: ['ddp', 'allreduce', 'ps'],
      rounds: 2,
      outDir: out,
      python: process.execPath, // any executable passes the interpreter check: nothing is started
      registryFile: path.join(tmp, 'registry.json'),
      dumpParams: path.join(out, 'p.pt'),
      png: false,
      run,
    });
    expect(res.order).toEqual([
      ['ddp', 'allreduce', 'ps'],
      ['allreduce', 'ps', 'ddp'],
    ]);
    expect(calls.map((c) => [c.method, path.relative(out, c.outDir), path.basename(c.dumpParams!)])).toEqual([
      ['ddp', 'round-1', 'p_ddp_round-1.pt'],
      ['allreduce', 'round-1', 'p_allreduce_round-1.pt'],
      ['ps', 'round-1', 'p_ps_round-1.pt'],
      ['allreduce', 'round-2', 'p_allreduce_round-2.pt'],
      ['ps', 'round-2', 'p_ps_round-2.pt'],
      ['ddp', 'round-2', 'p_ddp_round-2.pt'],
    ]);
    expect(res.analysis).toBeNull();
    expect(res.analyses.map((a) => path.basename(a.dir))).toEqual(['round-1', 'round-2']);
    for (const r of [1, 2]) expect(fs.existsSync(path.join(out, `round-${r}`, 'performance_report.txt'))).toBe(true);
    expect(res.summary!.variants.map((v) => [v.label, v.rounds.length])).toEqual([
      ['ddp', 2],
      ['allreduce', 2],
      ['ps', 2],
    ]);
    // ps was 1.5x slower in round 2 only: its rounds disagree, the others agree
    expect(res.summary!.quality.warnings.filter((w) => w.code === 'rounds-disagree').map((w) => w.phase)).toEqual(['ps']);
    const saved = loadRoundsSummary(out)!;
    expect(saved.order).toEqual(res.order);
    expect(saved.quality).toEqual(res.summary!.quality);
    expect(fs.readFileSync(path.join(out, ROUNDS_FILES.txt), 'utf8')).toMatch(/^ps\s+\S+\s+\S+–\S+\s+/m);
    expect(fs.readFileSync(path.join(out, ROUNDS_FILES.md), 'utf8')).toMatch(/^Quality: \*\*(ok|noisy)\*\*$/m);
    expect(res.failed).toBe(0);
  });

  it('compare with one round keeps the single-directory layout and adds rounds.json', async () => {
    const { calls, run } = fakeRunner();
    const out = outDir('one');
    const res = await compareDistributed({ methods: ['ddp', 'ps'], outDir: out, python: process.execPath, registryFile: path.join(tmp, 'registry.json'), png: false, run });
    expect(calls.map((c) => c.outDir)).toEqual([out, out]);
    expect(res.rounds).toBe(1);
    expect(res.analysis!.comparison.map((c) => c.label)).toEqual(['ddp', 'ps']);
    expect(res.summary!.variants[1].spread.stepMs).toMatchObject({ n: 1 });
    expect(fs.existsSync(path.join(out, ROUNDS_FILES.json))).toBe(true);
  });
});

describe('host load around a run: reaped ranks are our own CPU time', () => {
  it('reads cutime + cstime of this process; moves children time from foreign to own', () => {
    const d = path.join(tmp, 'proc');
    fs.mkdirSync(path.join(d, 'self'), { recursive: true });
    const fields = ['S', '1', '1', '1', '0', '-1', '0', '0', '0', '0', '0', '30', '20', '700', '55', '20', '0'];
    fs.writeFileSync(path.join(d, 'self', 'stat'), `42 (node (x) y) ${fields.join(' ')}\n`);
    expect(reapedChildrenTicks(d)).toBe(755);
    expect(reapedChildrenTicks(path.join(tmp, 'nope'))).toBeNull();
    const load: HostLoad = { wallS: 2, cpus: 2, foreignCores: 1.5, ownCores: 0.1, stealShare: 0, loadAverage1: 1 };
    expect(withReapedChildren(load, 2)).toMatchObject({ foreignCores: 0.5, ownCores: 1.1 });
    expect(withReapedChildren(load, 5).foreignCores).toBe(0);
    expect(withReapedChildren({ ...load, foreignCores: null }, 2)).toEqual({ ...load, foreignCores: null });
  });

  it('a child that burns CPU inside the window counts as ours once reaped', () => {
    const w = runHostLoadWindow();
    const before = reapedChildrenTicks()!;
    // the child spins until it has used 300 ms of CPU by its own account, then exits
    const r = spawnSync(process.execPath, ['-e', 'const t = process.cpuUsage(); for (;;) { const u = process.cpuUsage(t); if (u.user + u.system >= 300000) break; }'], { timeout: 120_000 });
    expect(r.status).toBe(0);
    const load = w.stop();
    expect(reapedChildrenTicks()! - before).toBeGreaterThanOrEqual(25);
    if (load.ownCores !== null) expect(load.ownCores * load.wallS).toBeGreaterThanOrEqual(0.25);
  });
});

// ---- a real compare --rounds 2 -------------------------------------------------------------------

const SKIP: string | null = (() => {
  if (!fs.existsSync(PY)) return `${PY} is missing`;
  const r = spawnSync(PY, ['-c', 'import torch, torch.distributed as d; assert d.is_available() and d.is_gloo_available(), "no gloo"'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) return `${PY} cannot import torch with gloo: apt-get install python3-torch`;
  // no native part: the pure-TS pass of the suite would only start the same ranks again
  if (process.env.GPUCOLO_NATIVE === '0') return 'the distributed runner has no native part: its rank tests run in the native pass only';
  return null;
})();
if (SKIP) console.warn(`distributed rounds test that starts ranks is skipped: ${SKIP}`);

/** gpucolo distributed ... in-process; the exit code and what went to stdout. */
const cli = distributedCli;

describe.skipIf(SKIP !== null)('real compare --rounds 2 (2 gloo ranks, smallest settings)', () => {
  const SMALL = ['--image-size', '16', '--train-samples', '128', '--val-samples', '32', '--batch-size', '16', '--max-steps', '3', '--launcher', 'direct', '--grace', '2', '--no-png'];

  it('--json: rounds, rotated order, per-method pooled figures with their spread, quality; analyze DIR prints the rounds', async () => {
    const out = outDir('real');
    const r = await cli(['distributed', 'compare', '--methods', 'ddp,ps', '--rounds', '2', ...SMALL, '--registry', path.join(tmp, 'registry.json'), '--out', out, '--json']);
    expect(r.code, r.message).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.rounds).toBe(2);
    expect(j.order).toEqual([
      ['ddp', 'ps'],
      ['ps', 'ddp'],
    ]);
    expect(j.runs.map((x: { method: string; round: number; ok: boolean }) => [x.method, x.round, x.ok])).toEqual([
      ['ddp', 1, true],
      ['ps', 1, true],
      ['ps', 2, true],
      ['ddp', 2, true],
    ]);
    for (const v of j.variants) {
      expect(v.rounds).toHaveLength(2);
      expect(v.spread.stepMs).toMatchObject({ n: 2 });
      expect(v.pooled.stepMs).toBeGreaterThan(0);
      expect(v.rounds.every((x: { steps: number; hostLoad: unknown }) => x.steps === 3 && x.hostLoad !== null)).toBe(true);
    }
    expect(j.variants[1].pooled.pullMs).toBeGreaterThan(0);
    expect(['ok', 'noisy']).toContain(j.quality.verdict);
    expect(j.analyses.map((a: { dir: string }) => path.basename(a.dir))).toEqual(['round-1', 'round-2']);
    for (const rr of [1, 2]) for (const f of ['results_baseline_ddp.json', 'results_ps.json', 'run_ddp.json', 'logs/ps/rank_1.log']) expect(fs.existsSync(path.join(out, `round-${rr}`, f))).toBe(true);

    const a = await cli(['distributed', 'analyze', out]);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/^2 round\(s\), order rotated each round \(round 1: ddp, ps; round 2: ps, ddp\)/m);
    expect(a.stdout).toMatch(/^quality: (ok|noisy)/m);
  }, 170_000);
});
