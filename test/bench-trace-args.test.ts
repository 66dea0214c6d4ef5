/**
 * bench/trace.ts refuses bad command-line values before anything runs: one line per bad value
 * on stderr, exit status 2, nothing measured (no tree, no tracer, no header on stdout).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/impls.js';
import { HANG_MS } from './helpers/load.js';

function bench(...args: string[]): { status: number | null; stdout: string; stderr: string[] } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join('bench', 'trace.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: HANG_MS });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.trim().split('\n') };
}

describe('bench:trace arguments', () => {
  it.each([
    [['--impls', 'batched'], /^bench: --impls: at least two different samplers to interleave/],
    [['--impls', 'batched,batched'], /^bench: --impls: at least two different samplers/],
    [['--impls', 'batched,fast'], /^bench: --impls: unknown sampler\(s\) fast \(known: native, ts, batched, batched-tsjoin, floor\)$/],
    [['--impls', 'native,ts', '--trees', 'changing,leafy'], /^bench: --trees: unknown tree\(s\) leafy/],
    [['--impls', 'native,ts', '--intervals', '100,5'], /^bench: --intervals: milliseconds >= 10, comma-separated \(got 100,5\)$/],
    [['--impls', 'native,ts', '--intervals', 'fast'], /^bench: --intervals: milliseconds >= 10/],
  ])('%j: one line, exit 2, nothing run', (args, message) => {
    const r = bench('1', ...(args as string[]));
    expect(r.status).toBe(2);
    expect(r.stderr).toHaveLength(1);
    expect(r.stderr[0]).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('every bad value is named, each on its own line', () => {
    const r = bench('1', '--impls', 'x', '--trees', 'y', '--intervals', '1');
    expect(r.status).toBe(2);
    expect(r.stderr.map((l) => l.split(':')[1].trim())).toEqual(['--impls', '--trees', '--intervals']);
  });
});
