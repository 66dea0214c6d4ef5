/**
 * `--ps-topology dedicated | colocated` (issue 18, 004): dedicated is the design notes' layout
 * (rank 0 only serves, num_workers = world size - 1, global batch from the workers), colocated
 * gpucolo's default (rank 0 serves and computes). Real gloo ranks on CPU (smallcnn, 16x16
 * synthetic images, 5 steps); the results and manifests say which layout ran, the analysis
 * explains it in throughput terms. Skipped, with the reason, without /usr/bin/python3 + torch.
 * No wall-clock assertions.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeDistributed, loadDistributedResult, runDistributed, type DistributedRunOptions } from '../src/runners/distributed/index.js';
import { trainArgs, validateRun } from '../src/runners/distributed/run.js';
import { HANG_MS } from './helpers/load.js';
import { distributedCli } from './helpers/cli-in-process.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const SCRIPT = path.join(ROOT, 'workloads/dist_train.py');
const PY = '/usr/bin/python3';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-dist-topo-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SKIP: string | null = (() => {
  if (!fs.existsSync(PY)) return `${PY} is missing`;
  const r = spawnSync(PY, ['-c', 'import torch, torch.distributed as d; assert d.is_available() and d.is_gloo_available(), "no gloo"'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) return `${PY} cannot import torch with gloo: apt-get install python3-torch`;
  if (process.env.GPUCOLO_NATIVE === '0') return 'the distributed runner has no native part: its rank tests run in the native pass only';
  return null;
})();
if (SKIP) console.warn(`distributed topology tests that start ranks are skipped: ${SKIP}`);

let seq = 0;
const outDir = (name: string): string => path.join(tmp, `${name}-${++seq}`);

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
  timeoutMs: 2 * HANG_MS,
} satisfies Partial<DistributedRunOptions>;

const cli = distributedCli;

describe('--ps-topology options', () => {
  it('is passed to the script for ps only (compare passes the same options to every method)', () => {
    expect(trainArgs({ method: 'ps', psTopology: 'dedicated' })).toEqual(expect.arrayContaining(['--ps-topology', 'dedicated']));
    expect(trainArgs({ method: 'ddp', psTopology: 'dedicated' })).not.toContain('--ps-topology');
    expect(trainArgs({ method: 'ps' })).not.toContain('--ps-topology');
  });

  it('bad values are refused before anything starts (library EBADCONFIG, CLI exit 2)', async () => {
    expect(() => validateRun({ ...SMALL, method: 'ps', outDir: outDir('bad'), psTopology: 'shared' as never })).toThrow(/unknown --ps-topology "shared" \(colocated, dedicated\)/);
    const r = await cli(['distributed', 'run', '--method', 'ps', '--ps-topology', 'server', '--out', outDir('bad-cli')]);
    expect(r.code).toBe(2);
    expect(r.message).toMatch(/--ps-topology.*server.*colocated, dedicated/);
    // one rank: no worker besides the server
    const one = await cli(['distributed', 'run', '--method', 'ps', '--ps-topology', 'dedicated', '--nproc-per-node', '1', '--python', process.execPath, '--out', outDir('one')]);
    expect(one.code).toBe(2);
    expect(one.message).toMatch(/ps needs a world size >= 2/);
  });

  it('the script refuses an unknown layout itself (exit 2, one line)', () => {
    const r = spawnSync(PY, [SCRIPT, '--method', 'ps', '--ps-topology', 'bogus', '--out', path.join(tmp, 'x.json')], { encoding: 'utf8', env: { ...process.env, WORLD_SIZE: '' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--ps-topology/);
  });
});

describe.skipIf(SKIP !== null)('real gloo ranks', () => {
  const runs: Record<string, { file: string; params: string; losses: number[] }> = {};

  it('ddp on 2 ranks, ps colocated on 2, ps dedicated on 3 (2 workers): the results say which layout ran', async () => {
    for (const [key, extra] of [
      ['ddp', { method: 'ddp', nprocPerNode: 2 }],
      ['colocated', { method: 'ps', nprocPerNode: 2, psTopology: 'colocated' }],
      ['dedicated', { method: 'ps', nprocPerNode: 3, psTopology: 'dedicated' }],
      // the notes' own code path: per-parameter send/recv between the server and each worker
      ['dedicated_naive', { method: 'ps', nprocPerNode: 3, psTopology: 'dedicated', psImpl: 'naive' }],
    ] as const) {
      const out = outDir(key);
      const r = await runDistributed({ ...SMALL, ...extra, outDir: out, dumpParams: path.join(out, 'params.pt') });
      expect(r.error).toBeUndefined();
      const res = loadDistributedResult(r.resultFile);
      const m = JSON.parse(fs.readFileSync(r.manifestFile, 'utf8'));
      if (key === 'ddp') {
        expect(res).toMatchObject({ world_size: 2, global_batch: 32, num_workers: null, ps_topology: null });
        expect(m.ps_topology).toBeNull();
      } else if (key === 'colocated') {
        expect(res).toMatchObject({ world_size: 2, global_batch: 32, num_workers: 2, ps_topology: 'colocated' });
        expect(m.ps_topology).toBe('colocated');
      } else {
        // the notes' layout: rank 0 serves only, the 2 workers make the global batch
        expect(res).toMatchObject({ world_size: 3, global_batch: 32, num_workers: 2, ps_topology: 'dedicated', steps: 5, ps_impl: key === 'dedicated' ? 'flat' : 'naive' });
        expect(m.ps_topology).toBe('dedicated');
        expect(m.exit_codes).toEqual([0, 0, 0]);
        // throughput counts the workers' samples: 5 steps x 32
        const e = res.epochs[0];
        expect(e.train_throughput! * e.train_time).toBeCloseTo(160, 6);
      }
      runs[key] = { file: r.resultFile, params: path.join(out, 'params.pt'), losses: res.all_losses as number[] };
    }
  }, 240_000);

  it('dedicated PS (flat and naive) on 3 ranks trains exactly like DDP on its 2 workers (same global batch): parameters 1e-5, losses 1e-6', () => {
    expect(Object.keys(runs).sort()).toEqual(['colocated', 'ddp', 'dedicated', 'dedicated_naive']);
    const r = spawnSync(PY, ['-c', 'import sys, torch; v = [torch.load(f) for f in sys.argv[1:]]; print(v[0].numel(), max(float((x - v[0]).abs().max()) for x in v))', runs.ddp.params, runs.colocated.params, runs.dedicated.params, runs.dedicated_naive.params], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const [n, maxDiff] = r.stdout.trim().split(' ').map(Number);
    expect(n).toBeGreaterThan(1000);
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
    for (const k of ['colocated', 'dedicated', 'dedicated_naive']) {
      expect(runs[k].losses).toHaveLength(5);
      runs[k].losses.forEach((l, i) => expect(Math.abs(l - runs.ddp.losses[i])).toBeLessThanOrEqual(1e-6));
    }
  });

  it('analyze: the comparison states each layout and explains the difference in throughput terms', async () => {
    const d = outDir('analyze');
    fs.mkdirSync(d);
    fs.copyFileSync(runs.ddp.file, path.join(d, 'results_baseline_ddp.json'));
    fs.copyFileSync(runs.colocated.file, path.join(d, 'results_ps_colocated.json'));
    fs.copyFileSync(runs.dedicated.file, path.join(d, 'results_ps_dedicated.json'));
    const a = await analyzeDistributed(d, { plots: false });
    expect(a.comparison.map((c) => [c.displayName, c.workers, c.psTopology])).toEqual([
      ['Baseline DDP (PyTorch)', 2, null],
      ['Parameter Server (PS) [ps_colocated]', 2, 'colocated'],
      ['Parameter Server (PS) [ps_dedicated]', 2, 'dedicated'],
    ]);
    const ded = a.comparison[2];
    expect(ded.perWorkerThroughput).toBeCloseTo(ded.throughput! / 2, 9);
    expect(a.text).toMatch(/^Parameter Server \(PS\) \[ps_dedicated\]\s+3\s+2 \(PS dedicated\)\s/m);
    expect(a.text).toMatch(/\[ps_dedicated\]: dedicated PS layout .* 2 of 3 ranks compute, global batch 32 = 16 x 2 workers\. .*at most 2\/3 = 0\.67 of a method where all 3 ranks compute/);
    expect(a.text).toMatch(/\[ps_colocated\]: colocated PS layout .* all 2 ranks compute, global batch 32 as DDP's/);
  });

  it('CLI run --ps-topology dedicated prints the layout', async () => {
    const out = outDir('cli');
    const r = await cli(['distributed', 'run', '--method', 'ps', '--ps-topology', 'dedicated', '--nproc-per-node', '3', '--launcher', 'direct', '--image-size', '16', '--train-samples', '128', '--val-samples', '0', '--batch-size', '16', '--max-steps', '2', '--model', 'smallcnn', '--timeout', String(2 * HANG_MS / 1000), '--out', out]);
    expect(r.message).toBeUndefined();
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ps: 3 ranks \(PS dedicated: rank 0 serves, 2 workers\), direct:/);
  }, 120_000);
});
