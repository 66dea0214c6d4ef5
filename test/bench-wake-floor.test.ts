/**
 * build-cc/gpucolo_wake_floor (native/tests/wake_floor.cc), the bare wake-ups bench/trace.ts sets
 * beside the tracer: it wakes at every deadline of its run and counts only those after --skip-ns,
 * and bad arguments are a one-line JSON error with exit status 2, never a figure. Skipped when the
 * plain CMake build (build-cc) has no current gpucolo_wake_floor: .ci/run and bench:trace build it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/impls.js';
import { HANG_MS } from './helpers/load.js';

const WAKE_FLOOR = path.join(ROOT, 'build-cc', 'gpucolo_wake_floor');
const SRC = path.join(ROOT, 'native', 'tests', 'wake_floor.cc');
const current = fs.existsSync(WAKE_FLOOR) && fs.statSync(WAKE_FLOOR).mtimeMs >= fs.statSync(SRC).mtimeMs;

function wakeFloor(...args: string[]): { status: number | null; json: Record<string, unknown>; lines: number } {
  const r = spawnSync(WAKE_FLOOR, args, { encoding: 'utf8', timeout: HANG_MS });
  const lines = r.stdout.trim().split('\n');
  return { status: r.status, json: JSON.parse(lines[lines.length - 1]) as Record<string, unknown>, lines: lines.length };
}

describe.skipIf(!current)('gpucolo_wake_floor (bare wake-ups at the tracer pace)', () => {
  it('counts the wake-ups after --skip-ns to the end of the run, with their thread CPU and wall time', () => {
    // 10 ms for 0.2 s: deadlines 1..20; the first one past 1 ns starts the count, 19 are counted
    const r = wakeFloor('10000000', '0.2', '--skip-ns', '1');
    expect(r.status).toBe(0);
    expect(r.lines).toBe(1);
    expect(r.json.wakes).toBe(19);
    expect(r.json.cpu_ns as number).toBeGreaterThanOrEqual(0);
    expect(r.json.wall_ns as number).toBeGreaterThan(0);
    // one thread's CPU time over a span is at most the span
    expect(r.json.cpu_ns as number).toBeLessThanOrEqual(r.json.wall_ns as number);
  });

  it('the default skip is 1 s: a run of 1.5 s counts only its last half second', () => {
    const r = wakeFloor('100000000', '1.5');
    expect(r.status).toBe(0);
    // deadlines at 0.1 .. 1.5 s; the one at 1.0 s starts the count; 1.1 .. 1.5 are counted
    expect(r.json.wakes).toBe(5);
  });

  it.each([
    [[], /^usage: gpucolo_wake_floor <interval ns> <seconds>/],
    [['10000000'], /^usage:/],
    [['0', '1'], /^usage:/],
    [['-5', '1'], /^usage:/],
    [['10ms', '1'], /^usage:/],
    [['10000000', 'nan'], /^usage:/],
    [['10000000', '1', '--skip'], /^unknown or malformed option/],
    [['10000000', '1', '--skip-ns'], /^unknown or malformed option/],
    [['10000000', '1', '--skip-ns', 'soon'], /^unknown or malformed option/],
    [['50000', '1'], /^interval below 100 us$/],
    [['10000000', '0.05', '--skip-ns', '1000000000'], /^the run ended before --skip-ns/],
  ])('%j is an error line and exit status 2, no figures', (args, message) => {
    const r = wakeFloor(...(args as string[]));
    expect(r.status).toBe(2);
    expect(r.lines).toBe(1);
    expect(Object.keys(r.json)).toEqual(['error']);
    expect(r.json.error).toMatch(message);
  });
});
