import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeOutcome, type DistributedJob, type JobProcess } from '../src/runners/distributed/run.js';
import type { ExitInfo } from '../src/supervisor/index.js';

const proc = (rank: number | null, reason: JobProcess['outcome']['reason'], log = '/nonexistent.log'): JobProcess => ({
  child: null,
  info: null,
  outcome: { rank, role: rank === null ? 'torchrun' : 'rank', argv: [], pid: null, exitCode: null, signal: null, reason, log },
});
const job = (o: Partial<DistributedJob>): DistributedJob => ({ procs: [], timedOut: false, interrupted: false, firstFailure: null, stragglers: null, wallS: 0, ...o });
const ctx = (resultFile: string, nnodes = 1) => ({ method: 'ddp' as const, logDir: '/nonexistent', resultFile, nnodes, graceMs: 5000, timeoutMs: 2000 });

describe('describeOutcome (the outcome step of runDistributed, alone)', () => {
  it('an interrupted job is "interrupted", before anything else', () => {
    expect(describeOutcome(job({ interrupted: true, timedOut: true }), ctx('/x.json'))).toEqual({ error: 'interrupted', failedRank: null, failedExitCode: null, result: null });
  });

  it('a timeout names the ranks SIGKILLed after the grace', () => {
    const o = describeOutcome(job({ timedOut: true, procs: [proc(0, 'stopped'), proc(1, 'killed')] }), ctx('/x.json'));
    expect(o.error).toBe('timed out after 2.0 s: stopped all 2 ranks with SIGTERM (rank 1 SIGKILLed after the 5.0 s grace)');
  });

  it('a rank killed by a signal is the root cause, not the one that saw the broken connection first', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-dist-outcome-'));
    const log0 = path.join(dir, 'rank_0.log');
    const log1 = path.join(dir, 'rank_1.log');
    fs.writeFileSync(log0, 'connection reset\n');
    fs.writeFileSync(log1, 'oom\n');
    const exited: ExitInfo = { code: 1, signal: null, reason: 'exited' } as ExitInfo;
    const signaled: ExitInfo = { code: null, signal: 'SIGKILL', reason: 'signaled' } as ExitInfo;
    const p0 = proc(0, 'exited', log0);
    const p1 = { ...proc(1, 'signaled', log1), info: signaled };
    const o = describeOutcome(job({ procs: [p0, p1], firstFailure: { index: 0, info: exited } }), ctx('/x.json'));
    expect(o.failedRank).toBe(1);
    expect(o.failedExitCode).toBeNull();
    expect(o.error).toMatch(/^rank 1 was killed by signal SIGKILL: .*oom.*; stopped the other rank/);
  });

  it('no result file: an error on one node, a note on several', () => {
    const missing = path.join(os.tmpdir(), `gpucolo-no-result-${process.pid}.json`);
    expect(describeOutcome(job({}), ctx(missing)).error).toBe(`every rank exited 0 but rank 0 wrote no result file ${missing}`);
    const several = describeOutcome(job({}), ctx(missing, 2));
    expect(several.error).toBeUndefined();
    expect(several.note).toMatch(/rank 0 ran on another node/);
  });
});
