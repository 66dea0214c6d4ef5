/**
 * build-cc/gpucolo_floor (native/tests/floor.cc), the C++ floor bench/dispatch.ts compares the
 * engine with: both modes measure what they say on the cpu backend. Behavioural only (a kernel
 * of S ns takes at least S; a hand-off round trip is at least the loop's). Skipped when the plain
 * CMake build (build-cc) has no current gpucolo_floor: .ci/run and bench:dispatch build it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/impls.js';
import { HANG_MS } from './helpers/load.js';

const FLOOR = path.join(ROOT, 'build-cc', 'gpucolo_floor');
const SRC = path.join(ROOT, 'native', 'tests', 'floor.cc');
const current = fs.existsSync(FLOOR) && fs.statSync(FLOOR).mtimeMs >= fs.statSync(SRC).mtimeMs;

function floor(...args: string[]): { status: number | null; json: Record<string, unknown> | null; stderr: string } {
  const r = spawnSync(FLOOR, args, { encoding: 'utf8', timeout: HANG_MS });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(last);
  } catch {
    // usage errors print nothing on stdout
  }
  return { status: r.status, json, stderr: r.stderr };
}

describe.skipIf(!current)('gpucolo_floor (C++ dispatch floor)', () => {
  it.each(['loop', 'handoff'])('--mode %s: N round trips after W warm-up ones, a 200 µs kernel takes >= 200 µs', (mode) => {
    const r = floor('cpu', '--mode', mode, '--n', '50', '--warmup', '5', '--spin', '200000');
    expect(r.status).toBe(0);
    const j = r.json!;
    expect(j).toMatchObject({ backend: 'cpu', mode, n: 50, warmup: 5, spin_ns: 200000 });
    expect(j.pause_ns).toBe(mode === 'handoff' ? 20000 : 0); // the engine's cpu-backend poll pause
    expect(j.p50_ns as number).toBeGreaterThanOrEqual(200000);
    expect(j.p99_ns as number).toBeGreaterThanOrEqual(j.p50_ns as number);
    expect(j.min_ns as number).toBeGreaterThanOrEqual(200000);
    expect(j.device_p50_ns as number).toBeGreaterThanOrEqual(200000);
  });

  it('an empty kernel: the loop round trip is launch + one poll, the hand-off adds a thread hand-off', () => {
    const loop = floor('cpu', '--mode', 'loop', '--n', '2000', '--warmup', '100').json!;
    const hand = floor('cpu', '--mode', 'handoff', '--n', '2000', '--warmup', '100', '--pause', '0').json!;
    expect(loop.n).toBe(2000);
    expect(hand.n).toBe(2000);
    expect(hand.pause_ns).toBe(0);
    // the hand-off's fastest round trip includes a completion thread noticing the launch
    expect(hand.min_ns as number).toBeGreaterThanOrEqual(loop.min_ns as number);
  });

  it('--seconds measures for that long instead of N round trips; bad options are a usage error', () => {
    const t0 = Date.now();
    const r = floor('cpu', '--mode', 'handoff', '--seconds', '0.3', '--spin', '100000', '--warmup', '10');
    expect(r.status).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    // at most one 100 µs kernel per 100 µs
    expect(r.json!.n as number).toBeGreaterThan(0);
    expect(r.json!.n as number).toBeLessThanOrEqual(3000);
    for (const bad of [['--mode', 'spin'], ['--seconds', '0'], ['--seconds', 'x'], ['--pause']]) {
      const u = floor('cpu', ...bad);
      expect(u.status, bad.join(' ')).toBe(2);
      expect(u.stderr).toMatch(/usage: gpucolo_floor/);
    }
  });
});
