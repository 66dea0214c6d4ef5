/**
 * The distributed runner (src/runners/distributed) and `gpucolo distributed` against real
 * processes: workloads/dist_train.py on 2 gloo ranks (smallcnn, 16x16 synthetic images, 5 steps:
 * a few seconds per run on 2 cores), the direct launcher and torchrun, the equivalence of ddp,
 * allreduce (bucket 0 and default) and ps (naive, flat), and the faults: bad options refused
 * before anything starts (exit 2), a crashing rank, a hanging rank past --timeout, Ctrl-C.
 * Faults are injected with --python wrappers in test/fixtures/distributed/ (dist_train.py is not
 * touched). The analysis runs on fixture result files (real runs, 3 epochs).
 *
 * Tests that start ranks need /usr/bin/python3 with torch (Debian: python3-torch) and skip with
 * the reason printed without it. No wall-clock assertions.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeDistributed, compareDistributed, loadDistributedResult, runDistributed, type DistributedRunOptions, type DistributedRunResult } from '../src/runners/distributed/index.js';
import { PLOT_NAMES } from '../src/runners/distributed/analyze.js';
import { TORCHRUN_BROKEN, chooseLauncher, probeTorchrun, torchrunArgv } from '../src/runners/distributed/launcher.js';
import { resultFileName } from '../src/runners/distributed/schema.js';
import { liveGroupMembers, readRunRegistry } from '../src/supervisor/index.js';
import { HANG_MS } from './helpers/load.js';
import { dead, waitFor } from './helpers/procs.js';
import { distributedCli } from './helpers/cli-in-process.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const FIX = path.join(HERE, 'fixtures/distributed');
const SCRIPT = path.join(ROOT, 'workloads/dist_train.py');
const PY = '/usr/bin/python3';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-dist-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Why the torch tests cannot run here, or null. */
const SKIP: string | null = (() => {
  if (!fs.existsSync(PY)) return `${PY} is missing`;
  if (!fs.existsSync(SCRIPT)) return `${SCRIPT} is missing`;
  const r = spawnSync(PY, ['-c', 'import torch, torch.distributed as d; assert d.is_available() and d.is_gloo_available(), "no gloo"'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) return `${PY} cannot import torch with gloo (${(r.stderr ?? '').trim().split('\n').pop() ?? r.error?.message}): apt-get install python3-torch`;
  // the runner has no native part: CI's second pass over the suite (GPUCOLO_NATIVE=0, the pure-TS
  // paths) would start the same ranks again and only add load to the 2 shared cores
  if (process.env.GPUCOLO_NATIVE === '0') return 'the distributed runner has no native part: its rank tests run in the native pass only';
  return null;
})();
if (SKIP) console.warn(`distributed tests that start ranks are skipped: ${SKIP}`);

let seq = 0;
const outDir = (name: string): string => path.join(tmp, `${name}-${++seq}`);

/** 2 ranks, smallcnn on 16x16 synthetic images, 5 steps of a global batch of 32. */
const SMALL = {
  model: 'smallcnn',
  synthetic: true,
  imageSize: 16,
  trainSamples: 256,
  valSamples: 64,
  epochs: 1,
  batchSize: 16,
  maxSteps: 5,
  seed: 0,
  nprocPerNode: 2,
  launcher: 'direct',
  graceMs: 2000,
  // a backstop: a run that hangs is stopped by the runner itself, never left to the test timeout
  // (vitest.config.ts, 180 s); 2 ranks importing torch take seconds even at load average 16
  timeoutMs: 2 * HANG_MS,
} satisfies Partial<DistributedRunOptions>;

/** gpucolo distributed ... in-process; resolves with the exit code and what went to stdout. */
const cli = distributedCli;

/** Every process a run started is gone, and so is everything in its process groups. */
function expectNothingLeft(r: DistributedRunResult): void {
  const pids = r.processes.map((p) => p.pid).filter((p): p is number => p !== null);
  expect(pids.length).toBe(r.processes.length);
  for (const pid of pids) {
    expect(dead(pid), `pid ${pid} still alive`).toBe(true);
    expect(liveGroupMembers('/proc', pid).map((s) => s.pid), `group ${pid} still has members`).toEqual([]);
  }
}

// ---- analysis on fixture results (no torch needed) ----------------------------------------------

describe('analyze (fixture results)', () => {
  const fixtureDir = (files: string[]): string => {
    const d = outDir('analyze');
    fs.mkdirSync(d, { recursive: true });
    for (const f of files) fs.copyFileSync(path.join(FIX, f), path.join(d, f));
    return d;
  };
  const ALL = ['results_baseline_ddp.json', 'results_all_reduce.json', 'results_ps.json'];

  it('fixture files are valid results of each method', () => {
    for (const [f, m] of [['results_baseline_ddp.json', 'ddp'], ['results_all_reduce.json', 'allreduce'], ['results_ps.json', 'ps']] as const) {
      const r = loadDistributedResult(path.join(FIX, f));
      expect(r.method).toBe(m);
      expect(resultFileName(m)).toBe(f);
      expect(r.all_losses.length).toBe(r.steps);
    }
  });

  it('writes the tables with speedup vs DDP and comm columns, both reports and 10 plot files', async () => {
    const d = fixtureDir(ALL);
    const a = await analyzeDistributed(d);
    expect(a.results.map((r) => r.label)).toEqual(['ddp', 'allreduce', 'ps']);
    expect(a.baseline).toBe('ddp');
    const ddp = loadDistributedResult(path.join(FIX, ALL[0]));
    const ar = loadDistributedResult(path.join(FIX, ALL[1]));
    const ps = loadDistributedResult(path.join(FIX, ALL[2]));
    const [cDdp, cAr, cPs] = a.comparison;
    expect(cDdp.speedupVsDdp).toBe(1);
    expect(cAr.speedupVsDdp).toBeCloseTo(ar.summary.avg_train_throughput! / ddp.summary.avg_train_throughput!, 10);
    expect(cPs.throughput).toBe(ps.summary.avg_train_throughput);
    expect(cPs.worldSize).toBe(2);
    expect(cAr.bestValAccuracy).toBe(ar.summary.best_val_accuracy);
    const [mDdp, mAr, mPs] = a.communication;
    expect(mDdp).toMatchObject({ overlapped: true, allreduceMs: null, pullMs: null, pushMs: null, totalMs: null });
    expect(mAr.allreduceMs).toBeCloseTo(ar.summary.avg_comm_time! * 1000, 9);
    expect(mAr.totalMs).toBeCloseTo(mAr.allreduceMs!, 9);
    expect(mPs.pullMs).toBeCloseTo(ps.summary.avg_comm_time_pull! * 1000, 9);
    expect(mPs.pushMs).toBeCloseTo(ps.summary.avg_comm_time_push! * 1000, 9);
    expect(mPs.totalMs).toBeCloseTo(mPs.pullMs! + mPs.pushMs!, 9);
    expect(mPs.allreduceMs).toBeNull();

    const txt = fs.readFileSync(path.join(d, 'performance_report.txt'), 'utf8');
    expect(txt).toBe(a.text);
    expect(txt).toMatch(/speedup vs DDP/);
    expect(txt).toMatch(/pull \(ms\)\s+push \(ms\)\s+all-reduce \(ms\)\s+total comm\/step \(ms\)/);
    expect(txt).toMatch(/^Baseline DDP \(PyTorch\)\s+2\s+.*1\.00x$/m);
    expect(txt).toMatch(/^Baseline DDP \(PyTorch\)\s+n\.a\.\s+n\.a\.\s+overlapped/m);
    expect(txt).toMatch(/^Read results_ps\.json as Parameter Server \(PS\): gpucolo's format \(gpucolo\.distributed-result\/1\)\.$/m);
    const md = fs.readFileSync(path.join(d, 'performance_report.md'), 'utf8');
    expect(md).toMatch(/^\| method \| world size \| computing ranks \| throughput \(samples\/s\) \|/m);
    expect(md).toMatch(/!\[loss_curves\]\(plots\/loss_curves\.png\)/);

    const plots = fs.readdirSync(path.join(d, 'plots')).sort();
    expect(plots).toEqual(PLOT_NAMES.flatMap((n) => [`${n}.png`, `${n}.svg`]).sort());
    expect(plots).toHaveLength(10);
    for (const p of a.plots) {
      expect(p.error).toBeUndefined();
      expect(fs.readFileSync(p.svg, 'utf8')).toMatch(/^<svg/);
      expect(fs.readFileSync(p.png!).subarray(1, 4).toString()).toBe('PNG');
    }
    // no temp dir left behind
    expect(fs.readdirSync(d).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('says n.a. for the speedup without a DDP result', async () => {
    const d = fixtureDir(ALL.slice(1));
    const a = await analyzeDistributed(d, { plots: false });
    expect(a.baseline).toBeNull();
    expect(a.comparison.map((r) => r.speedupVsDdp)).toEqual([null, null]);
    expect(a.text).toMatch(/^Manual All-Reduce\s+2\s+.*n\.a\.$/m);
    expect(a.text).toMatch(/no DDP result/);
  });

  it('a bad result file is a one-line error naming it (CLI exit 2); an empty directory exit 1', async () => {
    const d = fixtureDir(ALL);
    const bad = JSON.parse(fs.readFileSync(path.join(FIX, ALL[2]), 'utf8'));
    delete bad.summary;
    bad.world_size = 'two';
    fs.writeFileSync(path.join(d, 'results_ps.json'), JSON.stringify(bad));
    await expect(analyzeDistributed(d)).rejects.toThrow(/results_ps\.json: invalid distributed result: world_size: .*summary/);
    const r = await cli(['distributed', 'analyze', d]);
    expect(r.code).toBe(2);
    expect(r.message).toMatch(/results_ps\.json/);
    expect(r.message).not.toMatch(/\n/);
    fs.writeFileSync(path.join(d, 'results_ps.json'), '{"schema": ');
    expect((await cli(['distributed', 'analyze', d])).message).toMatch(/results_ps\.json: not JSON/);

    const empty = outDir('empty');
    fs.mkdirSync(empty);
    const e = await cli(['distributed', 'analyze', empty]);
    expect(e.code).toBe(1);
    expect(e.message).toMatch(/no results_\*\.json/);
  });

  it('CLI analyze --json prints the tables', async () => {
    const d = fixtureDir(ALL);
    const r = await cli(['distributed', 'analyze', d, '--json', '--no-png']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.comparison.map((x: { label: string }) => x.label)).toEqual(['ddp', 'allreduce', 'ps']);
    expect(j.communication[2].pullMs).toBeGreaterThan(0);
    expect(j.plots.filter((p: { svg: string }) => p.svg)).toHaveLength(5);
  });
});

// ---- launcher choice --------------------------------------------------------------------------

describe('chooseLauncher', () => {
  const broken = { usable: false, torch: true, reason: TORCHRUN_BROKEN };
  it('follows the probe: torchrun where it works, else direct (one node) or torchrun with the flags (several)', async () => {
    expect(await chooseLauncher({ probe: { usable: true, torch: true, reason: 'ok' } })).toMatchObject({ launcher: 'torchrun' });
    const one = await chooseLauncher({ probe: broken });
    expect(one.launcher).toBe('direct');
    expect(one.why).toBe("torchrun unusable here (Debian torch 1.13 on Python 3.11: Std.from_str('0') is None); launching ranks directly");
    expect(await chooseLauncher({ probe: broken, nnodes: 2 })).toMatchObject({ launcher: 'torchrun', why: expect.stringMatching(/--redirects 2 --tee 1/) });
    expect(await chooseLauncher({ launcher: 'direct' })).toMatchObject({ launcher: 'direct' });
    expect(await chooseLauncher({ launcher: 'torchrun' })).toMatchObject({ launcher: 'torchrun' });
  });

  it('torchrun argv: module form, single-bit --redirects/--tee, fast monitor, standalone or c10d', () => {
    const a = torchrunArgv({ python: PY, script: 's.py', scriptArgs: ['--x'], nprocPerNode: 2, nnodes: 1, nodeRank: 0, logDir: '/l' });
    expect(a.slice(0, 3)).toEqual([PY, '-m', 'torch.distributed.run']);
    expect(a.join(' ')).toMatch(/--standalone .*--monitor_interval 0\.2 --redirects 2 --tee 1 --log_dir \/l s\.py --x$/);
    const m = torchrunArgv({ python: PY, script: 's.py', scriptArgs: [], nprocPerNode: 4, nnodes: 2, nodeRank: 1, rdzvEndpoint: 'h:29500', logDir: '/l' });
    expect(m.join(' ')).toMatch(/--nnodes 2 --node_rank 1 --rdzv_backend c10d --rdzv_endpoint h:29500/);
  });

  it.skipIf(SKIP !== null)('on this host: probes once and explains the choice', async () => {
    const v = spawnSync(PY, ['-c', 'import sys, torch; print(torch.__version__, "%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' }).stdout.trim();
    const debian113on311 = /^1\.13\S* 3\.11$/.test(v);
    const probe = await probeTorchrun(PY);
    expect(probe.torch).toBe(true);
    const c = await chooseLauncher({ python: PY });
    if (debian113on311) {
      expect(probe.usable).toBe(false);
      expect(c).toMatchObject({ launcher: 'direct', why: "torchrun unusable here (Debian torch 1.13 on Python 3.11: Std.from_str('0') is None); launching ranks directly" });
    } else {
      expect(c.launcher).toBe(probe.usable ? 'torchrun' : 'direct');
    }
    console.log(`chooseLauncher here (torch/python ${v}): ${c.launcher}: ${c.why}`);
  });
});

// ---- refused before anything starts ------------------------------------------------------------

describe('options refused before anything starts (exit 2, one line)', () => {
  const base = ['distributed', 'run', '--method', 'ddp', '--image-size', '16', '--max-steps', '2'];
  const refused = async (extra: string[], msg: RegExp): Promise<void> => {
    const out = outDir('refused');
    const r = await cli([...base, ...extra, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.message).toMatch(msg);
    expect(r.message).not.toMatch(/\n/);
    expect(fs.existsSync(path.join(out, 'logs'))).toBe(false);
  };

  it('a --data-dir without val/ (and a missing one)', async () => {
    const data = path.join(tmp, 'data-no-val');
    fs.mkdirSync(path.join(data, 'train/cat'), { recursive: true });
    await refused(['--data-dir', data], /--data-dir .*: missing val\//);
    await refused(['--data-dir', path.join(tmp, 'nowhere')], /no such directory/);
  });

  it('a missing --pretrained file', async () => {
    await refused(['--pretrained', path.join(tmp, 'missing.pth')], /--pretrained .*missing\.pth: no such file/);
  });

  it('ps with one rank; several nodes without a rendezvous endpoint; an unknown python', async () => {
    await refused(['--method', 'ps', '--nproc-per-node', '1'], /ps needs a world size >= 2/);
    await refused(['--nnodes', '2', '--node-rank', '0'], /needs --rdzv-endpoint/);
    await refused(['--python', path.join(tmp, 'no-python')], /python interpreter .* not found/);
  });

  it('a master port or rendezvous port already in use (checked without python or torch)', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      // any executable passes the interpreter check: nothing is started
      const py = ['--python', process.execPath];
      await refused([...py, '--launcher', 'direct', '--master-port', String(port)], new RegExp(`--master-port port ${port} is already in use`));
      await refused([...py, '--launcher', 'torchrun', '--nnodes', '2', '--node-rank', '0', '--rdzv-endpoint', `127.0.0.1:${port}`], new RegExp(`port ${port} is already in use`));
    } finally {
      srv.close();
    }
  });

  it('absurd rank and node counts (a typo must not start 100000 ranks)', async () => {
    // a missing --python: should the bound ever regress, the run is still refused, not started
    const noPy = ['--python', path.join(tmp, 'no-python')];
    await refused([...noPy, '--nproc-per-node', '100000'], /--nproc-per-node .*'100000' is invalid.*from 1 to 1024/);
    await refused([...noPy, '--nproc-per-node', '1025'], /from 1 to 1024/);
    await refused([...noPy, '--nnodes', '4097'], /--nnodes .*'4097' is invalid.*from 1 to 4096/);
    await refused([...noPy, '--master-port', '70000'], /--master-port .*from 1 to 65535/);
  });
});

// ---- real runs ---------------------------------------------------------------------------------

describe.skipIf(SKIP !== null)('real runs (2 gloo ranks)', () => {
  const params: Record<string, string> = {};
  const losses: Record<string, number[]> = {};

  it('compare ddp,allreduce,ps with the direct launcher: valid results, manifests, analysis', async () => {
    const out = outDir('compare');
    const res = await compareDistributed({ ...SMALL, methods: ['ddp', 'allreduce', 'ps'], outDir: out, dumpParams: path.join(out, 'params.pt') });
    expect(res.runs.map((r) => [r.method, r.ok, r.error])).toEqual([
      ['ddp', true, undefined],
      ['allreduce', true, undefined],
      ['ps', true, undefined],
    ]);
    for (const r of res.runs) {
      const result = loadDistributedResult(r.resultFile);
      expect(result).toMatchObject({ method: r.method, world_size: 2, global_batch: 32, backend: 'gloo', steps: 5 });
      expect(path.basename(r.resultFile)).toBe(resultFileName(r.method));
      const m = JSON.parse(fs.readFileSync(r.manifestFile, 'utf8'));
      expect(m).toMatchObject({ schema: 'gpucolo.distributed-run/1', method: r.method, launcher: 'direct', ok: true, exit_codes: [0, 0] });
      expect(m.processes.map((p: { env: Record<string, string> }) => [p.env.RANK, p.env.WORLD_SIZE, p.env.MASTER_ADDR])).toEqual([
        ['0', '2', '127.0.0.1'],
        ['1', '2', '127.0.0.1'],
      ]);
      expect(m.processes[0].argv).toEqual(expect.arrayContaining(['--method', r.method, '--out', r.resultFile]));
      expect(m.wall_s).toBeGreaterThan(0);
      expect(m.script_s).toBeGreaterThan(0);
      expect(m.overhead_s).toBeCloseTo(m.wall_s - m.script_s, 2);
      for (const rank of [0, 1]) expect(fs.existsSync(path.join(out, 'logs', r.method, `rank_${rank}.log`))).toBe(true);
      expectNothingLeft(r);
      params[r.method === 'ps' ? 'ps_flat' : r.method === 'allreduce' ? 'allreduce_25mb' : 'ddp'] = path.join(out, `params_${r.method}.pt`);
      losses[r.method === 'ps' ? 'ps_flat' : r.method === 'allreduce' ? 'allreduce_25mb' : 'ddp'] = result.all_losses as number[];
      console.log(`${r.method}: direct launcher wall ${r.wallS} s, in-script ${r.scriptS} s, overhead ${r.overheadS} s`);
    }
    expect(res.analysis).not.toBeNull();
    expect(res.analysis!.comparison.map((c) => c.label)).toEqual(['ddp', 'allreduce', 'ps']);
    expect(fs.readdirSync(path.join(out, 'plots'))).toHaveLength(10);
    // one round (the library's default): results in --out itself, plus the rounds summary
    expect(res.order).toEqual([['ddp', 'allreduce', 'ps']]);
    expect(res.summary!.variants.map((v) => [v.label, v.rounds.length])).toEqual([
      ['ddp', 1],
      ['allreduce', 1],
      ['ps', 1],
    ]);
    expect(['ok', 'noisy']).toContain(res.summary!.quality.verdict);
    expect(fs.existsSync(path.join(out, 'rounds.json'))).toBe(true);
  }, 240_000);

  it('allreduce with --bucket-mb 0 and ps --ps-impl naive', async () => {
    for (const [key, extra] of [
      ['allreduce_0mb', { method: 'allreduce', bucketMb: 0 }],
      ['ps_naive', { method: 'ps', psImpl: 'naive' }],
    ] as const) {
      const out = outDir(key);
      const r = await runDistributed({ ...SMALL, ...extra, outDir: out, dumpParams: path.join(out, 'params.pt') });
      expect(r.error).toBeUndefined();
      expect(r.result).toMatchObject(key === 'ps_naive' ? { ps_impl: 'naive' } : { bucket_mb: 0 });
      params[key] = path.join(out, 'params.pt');
      losses[key] = r.result!.all_losses as number[];
    }
  });

  it('same seed: every method gives the same parameters (1e-5) and losses (1e-6)', () => {
    const keys = ['ddp', 'allreduce_25mb', 'allreduce_0mb', 'ps_flat', 'ps_naive'];
    expect(Object.keys(params).sort()).toEqual([...keys].sort());
    const files = keys.map((k) => params[k]);
    const r = spawnSync(PY, ['-c', 'import sys, torch; v = [torch.load(f) for f in sys.argv[1:]]; print(v[0].numel(), max(float((x - v[0]).abs().max()) for x in v))', ...files], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const [n, maxDiff] = r.stdout.trim().split(' ').map(Number);
    expect(n).toBeGreaterThan(1000);
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
    console.log(`${keys.join(', ')}: ${n} parameters, max |difference| ${maxDiff}`);
    for (const k of keys) {
      expect(losses[k]).toHaveLength(5);
      losses[k].forEach((l, i) => expect(Math.abs(l - losses.ddp[i])).toBeLessThanOrEqual(1e-6));
    }
  });

  it('torchrun (with --redirects 2 --tee 1): ddp runs, per-rank logs in its log dir', async () => {
    const out = outDir('torchrun');
    const r = await runDistributed({ ...SMALL, launcher: 'torchrun', method: 'ddp', outDir: out });
    expect(r.error).toBeUndefined();
    expect(r.launcher).toBe('torchrun');
    expect(r.processes).toHaveLength(1);
    expect(r.processes[0].argv).toEqual(expect.arrayContaining(['torch.distributed.run', '--redirects', '2', '--tee', '1', '--monitor_interval', '0.2']));
    const m = JSON.parse(fs.readFileSync(r.manifestFile, 'utf8'));
    expect(m.torchrun_logs.filter((f: string) => f.startsWith(path.join(out, 'logs/ddp/torchrun')) && f.endsWith('stdout.log'))).toHaveLength(2);
    expect(fs.readFileSync(path.join(out, 'logs/ddp/launcher.log'), 'utf8')).toMatch(/epoch 1: loss/);
    expectNothingLeft(r);
  });

  it('two torchrun "nodes" on this host (c10d rendezvous, 1 rank each): one of them holds the result', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const common = { ...SMALL, launcher: 'auto' as const, method: 'ddp' as const, nprocPerNode: 1, nnodes: 2, rdzvEndpoint: `127.0.0.1:${port}`, timeoutMs: 60_000 };
    let [a, b] = await Promise.all([runDistributed({ ...common, nodeRank: 0, outDir: outDir('node0') }), runDistributed({ ...common, nodeRank: 1, outDir: outDir('node1') })]);
    if (a.timedOut || b.timedOut) {
      // two torchrun agents on 2 loaded cores now and then miss each other in the rendezvous or
      // the exit barrier (torch 1.13); what is under test is the wiring, so one more try
      console.warn(`two-node torchrun timed out once (${a.error ?? ''} / ${b.error ?? ''}); trying again`);
      expectNothingLeft(a);
      expectNothingLeft(b);
      [a, b] = await Promise.all([runDistributed({ ...common, nodeRank: 0, outDir: outDir('node0b') }), runDistributed({ ...common, nodeRank: 1, outDir: outDir('node1b') })]);
    }
    for (const r of [a, b]) {
      expect(r.error).toBeUndefined();
      expect(r.launcher).toBe('torchrun');
      expect(r.worldSize).toBe(2);
      expect(r.processes[0].argv).toEqual(expect.arrayContaining(['--nnodes', '2', '--rdzv_backend', 'c10d', '--rdzv_endpoint', `127.0.0.1:${port}`]));
      expectNothingLeft(r);
    }
    const withResult = [a, b].filter((r) => r.result !== null);
    expect(withResult).toHaveLength(1);
    expect(withResult[0].result).toMatchObject({ world_size: 2, method: 'ddp' });
    expect([a, b].find((r) => r.result === null)!.note).toMatch(/rank 0 ran on another node/);
  }, 200_000);

  it('the script rejecting its arguments on every rank: CLI exit 2 with its one line', async () => {
    const out = outDir('rejected');
    const r = await cli(['distributed', 'run', '--method', 'ddp', '--launcher', 'direct', '--image-size', '16', '--train-samples', '10', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.message).toMatch(/^ddp: rank \d exited with code 2: dist_train rank \d: error: 10 training samples are fewer than one global batch/);
    expect(r.message).not.toMatch(/\n/);
  });

  it('a rank that crashes stops the job with its log tail; no rank is left', async () => {
    const out = outDir('crash');
    const registryFile = path.join(out, 'registry.json');
    const r = await runDistributed({ ...SMALL, method: 'ddp', outDir: out, python: path.join(FIX, 'crash_rank1.sh'), registryFile });
    expect(r.ok).toBe(false);
    expect(r.failedRank).toBe(1);
    expect(r.failedExitCode).toBe(3);
    expect(r.error).toMatch(/^rank 1 exited with code 3: wrapper: injected crash on rank 1; stopped the other rank/);
    expect(r.error).not.toMatch(/\n/);
    expect(r.processes.map((p) => p.reason)).toEqual([expect.stringMatching(/^(stopped|killed)$/), 'exited']);
    expect(fs.existsSync(r.resultFile)).toBe(false);
    expectNothingLeft(r);
    const reg = readRunRegistry(registryFile);
    expect(reg.children.map((c) => [c.name, c.pid, c.groupAlive])).toEqual(r.processes.map((p) => [`dist-ddp-rank${p.rank}`, p.pid, false]));
    const m = JSON.parse(fs.readFileSync(r.manifestFile, 'utf8'));
    expect(m).toMatchObject({ ok: false, failed_rank: 1 });
    expect(m.exit_codes[1]).toBe(3);
  });

  it('a rank killed by SIGKILL in the middle of training stops the job; no rank is left', async () => {
    const out = outDir('killed');
    // 40 epochs of 512 steps (minutes), ended by rank 1's SIGKILL after 3.5 s: mid-training, or on
    // a slow host maybe still in setup, never after the end (one epoch, ~3 s on an idle 2-core host,
    // did finish before the kill now and then: "expected true to be false" on r.ok)
    const r = await runDistributed({ ...SMALL, method: 'allreduce', trainSamples: 16384, epochs: 40, maxSteps: undefined, outDir: out, python: path.join(FIX, 'killed_rank1.sh'), env: { KILL_AFTER_S: '3.5' } });
    expect(r.ok).toBe(false);
    expect(r.failedRank).toBe(1);
    expect(r.error).toMatch(/^rank 1 was killed by signal SIGKILL: .*; stopped the other rank/);
    expect(r.error).not.toMatch(/\n/);
    expect(r.processes[1]).toMatchObject({ signal: 'SIGKILL', reason: 'signaled' });
    expectNothingLeft(r);
  });

  it('a rank still running after another exited 0 (hung in teardown) is stopped; the complete result counts', async () => {
    const out = outDir('linger');
    // a grace that only a rank ignoring SIGTERM waits out: the lingering shell obeys, so "stopped"
    // does not depend on how soon a busy host lets it die
    const r = await runDistributed({ ...SMALL, method: 'ddp', outDir: out, python: path.join(FIX, 'linger_rank1.sh'), exitGraceMs: 1000, graceMs: 10_000 });
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.result).toMatchObject({ method: 'ddp', steps: 5 });
    expect(r.stoppedAfterExit).toEqual([1]);
    expect(r.note).toMatch(/^rank 1 had not exited 1\.0 s after rank 0 exited 0 \(hung in teardown after the final barrier\): stopped; the result was complete$/);
    expect(r.processes.map((p) => p.reason)).toEqual(['exited', 'stopped']);
    expectNothingLeft(r);
  });

  it('a hanging rank (ignoring SIGTERM) past --timeout: every rank stopped, SIGKILL after the grace', async () => {
    const out = outDir('hang');
    // rank 1 ignores SIGTERM and waits out the grace; rank 0 (python) obeys it, within 2 s even on
    // a busy host (with 0.5 s it was SIGKILLed too now and then, and named in the message)
    const r = await runDistributed({ ...SMALL, method: 'allreduce', outDir: out, python: path.join(FIX, 'hang_rank1.sh'), timeoutMs: 3000, graceMs: 2000 });
    expect(r.ok).toBe(false);
    expect(r.timedOut).toBe(true);
    expect(r.error).toMatch(/^timed out after 3\.0 s: stopped all 2 ranks with SIGTERM \(rank 1 SIGKILLed after the 2\.0 s grace\)$/);
    expect(r.processes[1].reason).toBe('killed');
    expectNothingLeft(r);
  });

  it('an AbortSignal (the library side of Ctrl-C) stops every rank', async () => {
    const out = outDir('abort');
    const ctl = new AbortController();
    const r = await runDistributed({
      ...SMALL,
      method: 'ps',
      outDir: out,
      signal: ctl.signal,
      onEvent: (e) => {
        if (e.type === 'started') setTimeout(() => ctl.abort(), 300);
      },
    });
    expect(r).toMatchObject({ ok: false, interrupted: true, error: 'interrupted' });
    expectNothingLeft(r);
  });

  it('Ctrl-C to the CLI process: exit 130, manifest says interrupted, no rank left', async () => {
    const out = outDir('sigint');
    const child = spawn(process.execPath, [path.join(ROOT, 'dist/cli/cli.js'), 'distributed', 'run', '--method', 'ddp', '--launcher', 'direct', '--image-size', '16', '--train-samples', '256', '--max-steps', '5', '--grace', '2', '--timeout', '60s', '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.stdout.resume();
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor(() => /started 2 rank\(s\) \(pid \d+ \d+\)/.test(stderr), HANG_MS, 'the ranks to start');
    const pids = /started 2 rank\(s\) \(pid (\d+) (\d+)\)/.exec(stderr)!.slice(1).map(Number);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/SIGINT: stopping every rank/);
    expect(stderr).toMatch(/gpucolo: ddp: interrupted/);
    for (const pid of pids) {
      expect(dead(pid)).toBe(true);
      expect(liveGroupMembers('/proc', pid)).toEqual([]);
    }
    const m = JSON.parse(fs.readFileSync(path.join(out, 'run_ddp.json'), 'utf8'));
    expect(m).toMatchObject({ interrupted: true, ok: false });
    expect(m.processes.map((p: { pid: number }) => p.pid)).toEqual(pids);
  });
});
