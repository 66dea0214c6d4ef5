/**
 * Data-parallel strategies on the same model and data, in one run (2 ranks, gloo on CPU; nccl on
 * a GPU host with --backend nccl): samples/s per method, comm time per step, and the ratios the
 * issue sets targets for: manual all-reduce with buckets vs DDP (within 10%), ps flat vs ps naive
 * per step (>= 2x on a model with many parameter tensors), and the runner's overhead (wall time
 * of the launch minus the script's own time, as a share of the wall time).
 *
 *   npm run bench:distributed [-- --model resnet18 --steps 15 --backend gloo]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runDistributed, type DistributedRunOptions } from '../src/runners/distributed/index.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

const model = arg('model', 'resnet18');
const steps = Number(arg('steps', '15'));
const backend = arg('backend', 'gloo') as 'gloo' | 'nccl' | 'auto';
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-bench-dist-'));

const variants: { label: string; opts: Partial<DistributedRunOptions> & Pick<DistributedRunOptions, 'method'> }[] = [
  { label: 'ddp', opts: { method: 'ddp' } },
  { label: 'allreduce 25 MB buckets', opts: { method: 'allreduce', bucketMb: 25 } },
  { label: 'allreduce per parameter', opts: { method: 'allreduce', bucketMb: 0 } },
  { label: 'ps naive', opts: { method: 'ps', psImpl: 'naive' } },
  { label: 'ps flat', opts: { method: 'ps', psImpl: 'flat' } },
];

interface Row {
  label: string;
  samplesPerS: number;
  stepMs: number;
  commMs: string;
  wallS: number;
  scriptS: number;
}

const rows: Row[] = [];
for (const v of variants) {
  process.stderr.write(`bench: ${v.label} ...\n`);
  const r = await runDistributed({
    ...v.opts,
    model,
    synthetic: true,
    imageSize: 32,
    numClasses: 10,
    trainSamples: 64 * (steps + 1),
    valSamples: 64,
    epochs: 1,
    batchSize: 32,
    maxSteps: steps,
    backend,
    nprocPerNode: 2,
    launcher: 'direct',
    outDir: path.join(out, v.label.replace(/\W+/g, '_')),
    timeoutMs: 600_000,
  });
  if (!r.ok || !r.result) throw new Error(`${v.label}: ${r.error ?? 'no result'}`);
  const e = r.result.epochs[0];
  const ms = (s: number | null | undefined): string => (s === null || s === undefined ? '-' : (s * 1000).toFixed(1));
  rows.push({
    label: v.label,
    samplesPerS: e.train_throughput,
    stepMs: e.avg_batch_time * 1000,
    commMs: v.opts.method === 'ps' ? `pull ${ms(e.avg_comm_time_pull)} / push ${ms(e.avg_comm_time_push)}` : v.opts.method === 'allreduce' ? ms(e.avg_comm_time) : 'overlapped',
    wallS: r.wallS,
    scriptS: r.scriptS ?? Number.NaN,
  });
}

const by = (l: string): Row => rows.find((x) => x.label === l)!;
console.log(`\n${model}, 2 ranks, ${backend}, global batch 64, ${steps} steps; host ${os.hostname()} (${os.cpus().length} CPUs), ${new Date().toISOString()}\n`);
console.log('| method | samples/s | step ms | comm ms/step | wall s | in-script s |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.label} | ${r.samplesPerS.toFixed(1)} | ${r.stepMs.toFixed(1)} | ${r.commMs} | ${r.wallS.toFixed(2)} | ${r.scriptS.toFixed(2)} |`);
const ar = by('allreduce 25 MB buckets').samplesPerS / by('ddp').samplesPerS;
const ps = by('ps naive').stepMs / by('ps flat').stepMs;
const overhead = rows.map((r) => (r.wallS - r.scriptS) / r.wallS);
console.log(`\nallreduce (25 MB buckets) / ddp samples/s: ${ar.toFixed(2)}x (target >= 0.90)`);
console.log(`ps naive / ps flat step time: ${ps.toFixed(2)}x (target >= 2)`);
console.log(`runner overhead (wall - in-script) / wall: ${(Math.min(...overhead) * 100).toFixed(1)}% .. ${(Math.max(...overhead) * 100).toFixed(1)}% (in-script time includes import torch and the rendezvous)`);
fs.rmSync(out, { recursive: true, force: true });
