/**
 * Data-parallel strategies on the same model and data (2 ranks, gloo on CPU; nccl on a GPU host
 * with --backend nccl): samples/s per variant, comm time per step, and the ratios the issue sets
 * targets for: manual all-reduce with buckets vs DDP (within 10%), ps flat vs ps naive per step
 * (>= 2x on a model with many parameter tensors), and the runner's overhead (wall time of the
 * launch minus the script's own time, as a share of the wall time; < 2%).
 *
 * In rounds (default 5, the least the benches use): every variant once per round, in an order
 * rotated each round, so drift on a shared host reaches all of them alike. Figures are pooled
 * over the rounds (every step of every round) with the per-round median (min–max) beside them; the
 * ratios are taken within each round (both variants ran minutes apart at most) and a target is
 * met only when every round meets it and no variant it rests on is flagged (host interference,
 * rounds that disagree, a failed round): otherwise it is inconclusive or not met. With --out the
 * figures are also written, per round, to DIR/bench-distributed.json.
 *
 *   npm run bench:distributed [-- --model resnet18 --steps 15 --backend gloo --rounds 5 --out DIR]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pairedRatios, qualityLines, summarizeRounds, targetVerdict, type DistributedRoundsSummary, type TargetVerdict } from '../src/runners/distributed/rounds-summary.js';
import { runRounds, type RoundVariant } from '../src/runners/distributed/rounds.js';
import { roundSpread, type RoundSpread } from '../src/stats/index.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

const model = arg('model', 'resnet18');
const steps = Number(arg('steps', '15'));
const rounds = Number(arg('rounds', '5'));
const backend = arg('backend', 'gloo') as 'gloo' | 'nccl' | 'auto';
const keep = arg('out', '');
const out = keep ? path.resolve(keep) : fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-bench-dist-'));
if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`--rounds must be an integer >= 1, got ${arg('rounds', '')}`);

const train = {
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
  launcher: 'direct' as const,
  timeoutMs: 600_000,
};
const variants: RoundVariant[] = [
  { label: 'ddp', options: { ...train, method: 'ddp' } },
  { label: 'allreduce 25 MB buckets', options: { ...train, method: 'allreduce', bucketMb: 25 } },
  { label: 'allreduce per parameter', options: { ...train, method: 'allreduce', bucketMb: 0 } },
  { label: 'ps naive', options: { ...train, method: 'ps', psImpl: 'naive' } },
  { label: 'ps flat', options: { ...train, method: 'ps', psImpl: 'flat' } },
];

const started = new Date();
const o = await runRounds(variants, {
  rounds,
  dirOf: (r, label) => path.join(out, `round-${r}`, label.replace(/\W+/g, '_')),
  onRun: (label, r, n) => process.stderr.write(`bench: round ${r}/${n}: ${label} ...\n`),
});
const failed = o.runs.filter((x) => !x.result.ok);
for (const f of failed) process.stderr.write(`bench: ${f.label} (round ${f.round}) failed: ${f.result.error}\n`);
const s: DistributedRoundsSummary = summarizeRounds({ dir: out, rounds, order: o.order, labels: variants.map((v) => v.label), runs: o.runs, interrupted: o.interrupted });

const f1 = (x: number): string => x.toFixed(1);
const f2 = (x: number): string => x.toFixed(2);
/** "pooled; per-round median (min–max)" */
const cell = (v: number | null, sp: RoundSpread | null, f: (x: number) => string): string => (v === null ? '-' : sp && sp.n > 1 ? `${f(v)}; ${f(sp.median)} (${f(sp.min)}–${f(sp.max)})` : f(v));
/** "median (min–max)" of per-round values */
const med = (sp: RoundSpread | null, f: (x: number) => string): string => (!sp ? '-' : sp.n > 1 ? `${f(sp.median)} (${f(sp.min)}–${f(sp.max)})` : f(sp.median));

const loads = o.runs.map((x) => x.hostLoad.loadAverage1).filter((x): x is number => x !== null);
const foreign = roundSpread(o.runs.map((x) => x.hostLoad.foreignCores));
console.log(
  `\n${model}, 2 ranks, ${backend}, global batch 64, ${steps} steps, ${rounds} rounds (order rotated each round); host ${os.hostname()} (${os.cpus().length} CPUs), started ${started.toISOString()}; load average ${loads.length ? `${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}` : 'n.a.'}, other processes ${foreign ? `${f2(foreign.min)}–${f2(foreign.max)}` : 'n.a.'} cores during the runs\n`,
);
console.log('| method | samples/s | step ms | comm ms/step | wall s | in-script s |');
console.log('|---|---|---|---|---|---|');
for (const v of s.variants) {
  const comm =
    v.method === 'ps'
      ? `pull ${cell(v.pooled.pullMs, v.spread.pullMs, f1)} / push ${cell(v.pooled.pushMs, v.spread.pushMs, f1)}`
      : v.overlapped
        ? 'overlapped'
        : cell(v.pooled.commMs, v.spread.commMs, f1);
  const wall = roundSpread(v.rounds.map((x) => x.wallS));
  const script = roundSpread(v.rounds.map((x) => (x.ok ? x.scriptS : null)));
  console.log(`| ${v.label} | ${cell(v.pooled.throughput, v.spread.throughput, f1)} | ${cell(v.pooled.stepMs, v.spread.stepMs, f1)} | ${comm} | ${med(wall, f2)} | ${med(script, f2)} |`);
}
console.log('\nsamples/s, step ms, comm ms: pooled over the rounds (every step of every round); then the per-round figure, median (min–max); wall and in-script s: median (min–max) over the rounds.');

const verdictText = (v: { verdict: TargetVerdict; reason?: string }): string => `${v.verdict.toUpperCase()}${v.reason ? ` (${v.reason})` : ''}`;
const ratioRecords: { what: string; perRound: (number | null)[]; spread: RoundSpread | null; target?: string; verdict?: string }[] = [];
const ratioLine = (what: string, ratios: (number | null)[], target?: { text: string; meets: (x: number) => boolean; restsOn: string[] }): void => {
  const sp = roundSpread(ratios);
  ratioRecords.push({ what, perRound: ratios, spread: sp, ...(target ? { target: target.text, verdict: verdictText(targetVerdict(ratios, target.meets, s.quality, target.restsOn)) } : {}) });
  const verdict = target ? ` (target ${target.text}: ${verdictText(targetVerdict(ratios, target.meets, s.quality, target.restsOn))})` : '';
  console.log(`${what}: ${med(sp, (x) => `${f2(x)}x`)} per round, median (min–max)${verdict}`);
};
console.log('');
ratioLine('allreduce (25 MB buckets) / ddp samples/s', pairedRatios(s, 'allreduce 25 MB buckets', 'ddp', 'throughput'), { text: '>= 0.90', meets: (x) => x >= 0.9, restsOn: ['allreduce 25 MB buckets', 'ddp'] });
ratioLine('allreduce per parameter / ddp samples/s', pairedRatios(s, 'allreduce per parameter', 'ddp', 'throughput'));
ratioLine('ps naive / ps flat step time', pairedRatios(s, 'ps naive', 'ps flat', 'stepMs'), { text: '>= 2', meets: (x) => x >= 2, restsOn: ['ps naive', 'ps flat'] });
const overhead = s.variants.flatMap((v) => v.rounds.map((x) => (x.ok && x.wallS && x.scriptS !== null ? (x.wallS - x.scriptS) / x.wallS : null)));
const ov = roundSpread(overhead);
console.log(
  `runner overhead (wall - in-script) / wall, every run: ${ov ? `${(ov.min * 100).toFixed(1)}% .. ${(ov.max * 100).toFixed(1)}% (median ${(ov.median * 100).toFixed(1)}%)` : 'n.a.'} (target < 2%: ${verdictText(targetVerdict(overhead, (x) => x < 0.02, s.quality, variants.map((v) => v.label)))}; in-script time includes import torch and the rendezvous)`,
);
console.log(`\n${qualityLines(s.quality).join('\n')}`);
if (keep) {
  // everything above as data: the rounds summary (per-round figures, host load), the ratios per round
  const file = path.join(out, 'bench-distributed.json');
  fs.writeFileSync(file, `${JSON.stringify({ model, steps, backend, rounds, host: os.hostname(), cpus: os.cpus().length, started: started.toISOString(), loadAverage: loads, summary: s, ratios: ratioRecords, overhead }, null, 2)}\n`);
  console.log(`\nresults, logs and rounds in ${out} (${path.basename(file)}: the figures above, per round)`);
}
else fs.rmSync(out, { recursive: true, force: true });
if (failed.length) process.exitCode = 1;
