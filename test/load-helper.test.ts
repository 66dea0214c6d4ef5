/**
 * test/helpers/load.ts: the calibration spin that timing tests use to decide whether this host
 * can judge them, and the skip it leads to. Only what holds on any host is asserted (a share is
 * between 0 and 1; a test that wants more cores than the host has is skipped, with the reason).
 */
import os from 'node:os';
import { describe, expect, it, vi } from 'vitest';
import { busyHostReason, cpuShare, describeShare, loadAverage, skipUnlessCores } from './helpers/load.js';

describe('load helper', () => {
  it('cpuShare: what spinning threads obtained, never more than their number of cores', async () => {
    const s = await cpuShare(2, 100);
    expect(s.threads).toBe(2);
    expect(s.wallMs).toBeGreaterThanOrEqual(100);
    expect(s.cpuMs).toBeGreaterThan(0);
    expect(s.cores).toBeGreaterThan(0);
    expect(s.cores).toBeLessThanOrEqual(2);
    expect(s.share).toBeCloseTo(s.cores / 2, 9);
    expect(s.cpus).toBe(os.availableParallelism());
    expect(describeShare(s)).toMatch(/^2 spinning thread\(s\) obtained \d+\.\d\d core\(s\) over \d+ ms \((load average \d+\.\d|no load average) on \d+ CPU\(s\)\)$/);
  });

  it('cpuShare at nice 19: the threads lower their own priority (the test process keeps its own)', async () => {
    const before = os.getPriority();
    const s = await cpuShare(1, 50, 19);
    expect(s.nice).toBe(19);
    expect(s.cores).toBeGreaterThan(0);
    expect(describeShare(s)).toMatch(/^1 spinning thread\(s\) at nice 19 obtained /);
    expect(os.getPriority()).toBe(before);
  });

  it('loadAverage reads /proc/loadavg', () => {
    const la = loadAverage();
    if (la === null) return; // no /proc here: nothing to read
    expect(la).toHaveLength(3);
    for (const v of la) expect(v).toBeGreaterThanOrEqual(0);
  });

  it('a test that needs more cores than the host has is skipped with the reason, printed', async () => {
    const need = os.availableParallelism() + 1;
    expect(await busyHostReason(need)).toBe(`this host has ${os.availableParallelism()} CPU(s); the test needs ${need}`);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const skip = vi.fn((note?: string): never => {
      throw new Error(`skipped: ${note}`);
    });
    try {
      await expect(skipUnlessCores({ skip }, need)).rejects.toThrow(/^skipped: this host has \d+ CPU\(s\); the test needs \d+$/);
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/^SKIP: this host has/));
    } finally {
      warn.mockRestore();
    }
    // a share nobody can reach (more than a core per thread) is always a skip, with the figures
    expect(await busyHostReason(1, 1.5, 50)).toMatch(/^the host is too busy to judge a timing property: 1 spinning thread\(s\) obtained .* below 1\.5 of a core each$/);
  });
});
