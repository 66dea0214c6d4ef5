/**
 * Dispatch round trip as gpucolo measures it (engine, JS-visible arrays) vs the plain C++ floor
 * (native/tests/floor.cc: launch -> poll on one stream, no engine, no Node), on the same backend
 * and kernels, in one run. Backends: cpu always; cuda/hip when their plugin has a device.
 *
 *   npm run bench:dispatch       (builds build-cc/gpucolo_floor with plain cmake if needed)
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listBackends, probeLatency } from '../src/dispatch/index.js';
import { quantileOf } from '../src/stats/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FLOOR = path.join(ROOT, 'build-cc', 'gpucolo_floor');

function ensureFloor(): void {
  if (fs.existsSync(FLOOR)) return;
  execFileSync('cmake', ['-S', ROOT, '-B', path.join(ROOT, 'build-cc'), '-DCMAKE_BUILD_TYPE=Release'], { stdio: 'ignore' });
  execFileSync('cmake', ['--build', path.join(ROOT, 'build-cc'), '-j2', '--target', 'gpucolo_floor'], { stdio: 'ignore' });
}

function floor(backend: string, spinNs: number): { p50: number; p99: number } {
  const target = backend === 'cpu' ? 'cpu' : path.join(ROOT, 'build', 'Release', `gpucolo_${backend}.so`);
  const out = execFileSync(FLOOR, [target, '--n', '20000', '--spin', String(spinNs)], { encoding: 'utf8' });
  const j = JSON.parse(out.trim().split('\n').pop()!);
  return { p50: j.p50_ns, p99: j.p99_ns };
}

const us = (ns: number): string => `${(ns / 1e3).toFixed(2)} µs`;

async function main(): Promise<void> {
  ensureFloor();
  const rows: string[] = [];
  for (const b of listBackends()) {
    if (!b.available) {
      rows.push(`| ${b.name} | - | - | - | unavailable: ${b.reason} |`);
      continue;
    }
    for (const spinNs of [0, 100e3]) {
      const f = floor(b.name, spinNs);
      const g = await probeLatency({ backend: b.name, spinNs, durationNs: 3e9, warmupNs: 300e6 });
      const p50 = quantileOf(g.roundTrip, 50)!;
      const p99 = quantileOf(g.roundTrip, 99)!;
      rows.push(`| ${b.name}, ${spinNs ? `${spinNs / 1e3} µs spin` : 'empty'} kernel | ${us(f.p50)} / ${us(f.p99)} | ${us(p50)} / ${us(p99)} | ${(p50 / f.p50).toFixed(2)}x / ${(p99 / f.p99).toFixed(2)}x | ${g.launches} launches |`);
    }
  }
  console.log(`\n${new Date().toISOString().slice(0, 10)}, ${os.hostname()} (${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores), Node ${process.version}; \`npm run bench:dispatch\``);
  console.log('\n| backend, kernel | C++ floor p50 / p99 | gpucolo p50 / p99 | gpucolo / floor | |\n|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exit(1);
});
