/**
 * Parse benchmark: native vs TS on the shared MI300 fixture and on an MI300X-class 8-GPU dump
 * built from the fixture's node layout (8 nodes x 4 XCC x (HIQ + 24 CP slots) + 64 SDMA RLCs).
 * Native and TS run interleaved (bench/interleave.ts): each round times both, in alternating
 * order, and gives one TS/native ratio; the rows show the spread of those per-round ratios, so a
 * host that gets busier during the run widens the spread instead of skewing the ratio. Prints
 * Markdown rows for bench/RESULTS.md.
 *
 * The snapshot rows compare three ways to get from the three dump texts to the joined queues:
 * the addon's one call (parse + join in C++, objects only for the result: joinDumps, native), the
 * native parsers with the TS objects and join (what the native path did before), and all-TS.
 *
 *   npm run bench            (= tsx bench/parse.ts; BENCH_ROUNDS=N, default 7;
 *                             BENCH_SNAPSHOT_ONLY=1: only the snapshot rows, with every round)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { joinQueues, parseHqds, parseMqds, parseRls } from '../src/index.js';
import { parseHqdsRaw, parseMqdsRaw, parseRlsRaw } from '../src/kfd/parse.js';
import { joinDumps } from '../src/kfd/snapshot.js';
import { loadNative } from '../src/native.js';
import type { Impl } from '../src/native.js';
import { formatRatio, interleave, medianNs, ratioSpread, type Interleaved } from './interleave.js';

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

type Dumps = { mqds: Buffer; hqds: Buffer; rls: Buffer };

/**
 * Dump texts -> joined queues, three ways, interleaved: 'native' one addon call, 'native-parse'
 * native parsers + TS objects + TS join, 'ts' all TS. Returns the table row and the rounds.
 */
function snapshotRow(label: string, d: Dumps, rounds: number): { row: string; run: Interleaved } {
  const run = interleave(
    [
      { name: 'native', fn: () => joinDumps(d, { impl: 'native' }) },
      { name: 'native-parse', fn: () => joinQueues({ mqds: parseMqds(d.mqds, { impl: 'native' }), hqds: parseHqds(d.hqds, { impl: 'native' }), rls: parseRls(d.rls, { impl: 'native' }) }) },
      { name: 'ts', fn: () => joinDumps(d, { impl: 'ts' }) },
    ],
    { rounds, timePerRoundMs: 250 },
  );
  const cell = (name: string) => {
    const m = medianNs(run, name);
    return `${us(m.median)} (${us(m.min)}-${us(m.max)})`;
  };
  const row = `| ${label} | ${cell('native')} | ${cell('native-parse')} | ${cell('ts')} | ${formatRatio(ratioSpread(run, 'ts', 'native'))} | ${formatRatio(ratioSpread(run, 'native-parse', 'native'))} |`;
  return { row, run };
}

/** One line per round: its order, load and per-variant medians, for the record. */
function roundLines(run: Interleaved): string[] {
  return run.order.map((order, r) => {
    const v = (name: string) => run.variants.find((x) => x.name === name)!.medianNs[r];
    return `| ${r + 1} | ${order.join(' ')} | ${run.load[r].toFixed(1)} | ${us(v('native'))} | ${us(v('native-parse'))} | ${us(v('ts'))} | ${(v('ts') / v('native')).toFixed(1)}x |`;
  });
}

async function main(): Promise<void> {
  if (!loadNative()) {
    console.error('bench: the native core is not loaded (npm run build:native); nothing to compare');
    process.exit(1);
  }
  const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
  const fixture = { mqds: fs.readFileSync(path.join(FIX, 'mqds')), hqds: fs.readFileSync(path.join(FIX, 'hqds')), rls: fs.readFileSync(path.join(FIX, 'rls')) };
  const eight = eightGpuDumps();
  const rows: string[] = [];
  const snapshotRows: string[] = [];
  let eightRounds: string[] = [];
  for (const [label, d] of [['MI300 fixture, 1 GPU', fixture], ['MI300X-class, 8 GPUs', eight]] as const) {
    const snap = snapshotRow(`${label}: parse + objects + join`, d, rounds);
    snapshotRows.push(snap.row);
    if (d === eight) eightRounds = roundLines(snap.run);
    if (process.env.BENCH_SNAPSHOT_ONLY === '1') continue;
    const raw = (impl: Impl) => () => {
      parseMqdsRaw(d.mqds, impl);
      parseHqdsRaw(d.hqds, impl);
      parseRlsRaw(d.rls, impl);
    };
    const hqdsOnly = (impl: Impl) => () => parseHqdsRaw(d.hqds, impl);
    const kb = (b: Buffer) => `${(b.length / 1024).toFixed(0)} KB`;
    const cases: [string, (impl: Impl) => () => unknown][] = [
      [`hqds text only (${kb(d.hqds)})`, hqdsOnly],
      [`mqds+hqds+rls to raw tables (${kb(d.mqds)}+${kb(d.hqds)}+${kb(d.rls)})`, raw],
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
  console.log('\n| snapshot: dump texts to joined queues | native: one addon call (joinDumps) | native parsers + TS objects + TS join | TS | TS / native per round | (native parsers + TS join) / native per round |\n|---|---|---|---|---|---|');
  for (const row of snapshotRows) console.log(row);
  console.log('\nMI300X-class, 8 GPUs, every round (median of one call):\n\n| round | order | load | native | native parsers + TS join | TS | TS / native |\n|---|---|---|---|---|---|---|');
  for (const line of eightRounds) console.log(line);
}

// run only as a script: other scripts and tests import eightGpuDumps() from here
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(`bench: ${(err as Error).message}`);
    process.exit(1);
  });
}
