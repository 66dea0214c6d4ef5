/**
 * Parse benchmark: native vs TS on the shared MI300 fixture and on an MI300X-class 8-GPU dump
 * built from the fixture's node layout (8 nodes x 4 XCC x (HIQ + 24 CP slots) + 64 SDMA RLCs).
 * Native and TS run interleaved (bench/interleave.ts): each round times both, in alternating
 * order, and gives one TS/native ratio; the rows show the spread of those per-round ratios, so a
 * host that gets busier during the run widens the spread instead of skewing the ratio. Prints
 * Markdown rows for bench/RESULTS.md.
 *
 *   npm run bench            (= tsx bench/parse.ts; BENCH_ROUNDS=N, default 7)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { joinQueues, parseHqds, parseMqds, parseRls } from '../src/index.js';
import { parseHqdsRaw, parseMqdsRaw, parseRlsRaw } from '../src/kfd/parse.js';
import { loadNative } from '../src/native.js';
import type { Impl } from '../src/native.js';
import { formatRatio, interleave, medianNs, ratioSpread } from './interleave.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIX = path.join(ROOT, 'test/fixtures/kfd/debugfs/kfd');

/** The fixture's single node block repeated for nodes 2..9 with distinct gpu_ids and pids. */
export function eightGpuDumps(): { mqds: Buffer; hqds: Buffer; rls: Buffer } {
  const mq = fs.readFileSync(path.join(FIX, 'mqds'), 'latin1');
  const hq = fs.readFileSync(path.join(FIX, 'hqds'), 'latin1');
  const rl = fs.readFileSync(path.join(FIX, 'rls'), 'latin1');
  let mqds = '';
  let hqds = '';
  let rls = '';
  for (let i = 0; i < 8; i++) {
    const gpu = (0x7c1e + i * 0x101).toString(16);
    const node = `Node ${2 + i}, gpu_id ${gpu}:`;
    hqds += hq.replace('Node 2, gpu_id 7c1e:', node);
    rls += rl.replace('Node 2, gpu_id 7c1e:', node);
    // per node two processes whose MQD addresses are this node's (addresses are per device)
    mqds += mq
      .replace(/device 7c1e/g, `device ${gpu}`)
      .replace(/Process (\d+) PASID (\d+)/g, (_, p) => `Process ${Number(p) + i * 1000} PASID ${Number(p) + i * 1000}`);
  }
  return { mqds: Buffer.from(mqds, 'latin1'), hqds: Buffer.from(hqds, 'latin1'), rls: Buffer.from(rls, 'latin1') };
}

const us = (ns: number): string => `${(ns / 1000).toFixed(0)} µs`;

async function main(): Promise<void> {
  if (!loadNative()) {
    console.error('bench: the native core is not loaded (npm run build:native); nothing to compare');
    process.exit(1);
  }
  const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
  const fixture = { mqds: fs.readFileSync(path.join(FIX, 'mqds')), hqds: fs.readFileSync(path.join(FIX, 'hqds')), rls: fs.readFileSync(path.join(FIX, 'rls')) };
  const eight = eightGpuDumps();
  const rows: string[] = [];
  for (const [label, d] of [['MI300 fixture, 1 GPU', fixture], ['MI300X-class, 8 GPUs', eight]] as const) {
    const raw = (impl: Impl) => () => {
      parseMqdsRaw(d.mqds, impl);
      parseHqdsRaw(d.hqds, impl);
      parseRlsRaw(d.rls, impl);
    };
    const full = (impl: Impl) => () =>
      joinQueues({ mqds: parseMqds(d.mqds, { impl }), hqds: parseHqds(d.hqds, { impl }), rls: parseRls(d.rls, { impl }) });
    const hqdsOnly = (impl: Impl) => () => parseHqdsRaw(d.hqds, impl);
    const kb = (b: Buffer) => `${(b.length / 1024).toFixed(0)} KB`;
    const cases: [string, (impl: Impl) => () => unknown][] = [
      [`hqds text only (${kb(d.hqds)})`, hqdsOnly],
      [`mqds+hqds+rls to raw tables (${kb(d.mqds)}+${kb(d.hqds)}+${kb(d.rls)})`, raw],
      ['parse + build objects + join', full],
    ];
    for (const [what, make] of cases) {
      // native and TS alternate within each round (N T, then T N, ...): the ratio is per round
      const run = interleave([{ name: 'native', fn: make('native') }, { name: 'ts', fn: make('ts') }], { rounds, timePerRoundMs: 250 });
      const n = medianNs(run, 'native');
      const t = medianNs(run, 'ts');
      rows.push(`| ${label}: ${what} | ${us(n.median)} (${us(n.min)}-${us(n.max)}) | ${us(t.median)} (${us(t.min)}-${us(t.max)}) | ${formatRatio(ratioSpread(run, 'ts', 'native'))} |`);
    }
  }
  console.log(`\n${new Date().toISOString().slice(0, 10)}, ${os.hostname()} (${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(2)}), Node ${process.version}; \`npm run bench\`; native and TS interleaved, ${rounds} rounds`);
  console.log('\n| input | native: median of round medians (min-max) | TS: same | TS / native per round: median (min-max) |\n|---|---|---|---|');
  for (const row of rows) console.log(row);
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exit(1);
});
