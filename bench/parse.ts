/**
 * Parse benchmark: native vs TS on the shared MI300 fixture and on an MI300X-class 8-GPU dump
 * built from the fixture's node layout (8 nodes x 4 XCC x (HIQ + 24 CP slots) + 64 SDMA RLCs).
 * Prints ratios measured in this one run (robust on a noisy host) as Markdown rows for
 * bench/RESULTS.md.
 *
 *   npm run bench            (= tsx bench/parse.ts)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { joinQueues, parseHqds, parseMqds, parseRls } from '../src/index.js';
import { parseHqdsRaw, parseMqdsRaw, parseRlsRaw } from '../src/kfd/parse.js';
import { loadNative } from '../src/native.js';
import type { Impl } from '../src/native.js';

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

type Stat = { p50: number; mean: number };

async function measure(tasks: Record<string, () => unknown>): Promise<Record<string, Stat>> {
  const bench = new Bench({ time: 800, warmupTime: 200 });
  for (const [name, fn] of Object.entries(tasks)) bench.add(name, fn);
  await bench.run();
  const out: Record<string, Stat> = {};
  for (const t of bench.tasks) {
    const r = t.result as unknown as { latency: { p50: number; mean: number } };
    out[t.name] = { p50: r.latency.p50, mean: r.latency.mean };
  }
  return out;
}

const us = (ms: number): string => `${(ms * 1000).toFixed(0)} µs`;

async function main(): Promise<void> {
  if (!loadNative()) {
    console.error('bench: the native core is not loaded (npm run build:native); nothing to compare');
    process.exit(1);
  }
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
    const r = await measure({
      'hqds native': hqdsOnly('native'),
      'hqds ts': hqdsOnly('ts'),
      'raw native': raw('native'),
      'raw ts': raw('ts'),
      'full native': full('native'),
      'full ts': full('ts'),
    });
    const kb = (b: Buffer) => `${(b.length / 1024).toFixed(0)} KB`;
    const ratio = (a: string, b: string) => (r[b].p50 / r[a].p50).toFixed(1);
    rows.push(
      `| ${label}: hqds text only (${kb(d.hqds)}) | ${us(r['hqds native'].p50)} | ${us(r['hqds ts'].p50)} | ${ratio('hqds native', 'hqds ts')}x |`,
      `| ${label}: mqds+hqds+rls to raw tables (${kb(d.mqds)}+${kb(d.hqds)}+${kb(d.rls)}) | ${us(r['raw native'].p50)} | ${us(r['raw ts'].p50)} | ${ratio('raw native', 'raw ts')}x |`,
      `| ${label}: parse + build objects + join | ${us(r['full native'].p50)} | ${us(r['full ts'].p50)} | ${ratio('full native', 'full ts')}x |`,
    );
  }
  console.log(`\n${new Date().toISOString().slice(0, 10)}, ${os.hostname()} (${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores), Node ${process.version}; \`npm run bench\`; medians`);
  console.log('\n| input | native | TS | TS / native |\n|---|---|---|---|');
  for (const row of rows) console.log(row);
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exit(1);
});
