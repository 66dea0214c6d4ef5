/** Binary decoding shared by both parser paths. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { addr64, decodeMapQueues, gfxTargetName, priorityLevel } from '../src/kfd/decode.js';

describe('decode', () => {
  it('addr64 equals the BigInt computation for every hi/lo/shift (fast path included)', () => {
    const ref = (lo: number, hi: number, sh: number): string => `0x${(((BigInt(hi) << 32n) | BigInt(lo)) << BigInt(sh)).toString(16)}`;
    for (const hi of [0, 1, 0x1fff, 0x2000, 0x1fffff, 0x200000, 0xffffffff]) {
      for (const sh of [0, 8]) expect(addr64(0xffffffff, hi, sh)).toBe(ref(0xffffffff, hi, sh));
    }
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(0xffffffff), fc.constantFrom(0, 8), (lo, hi, sh) => addr64(lo, hi, sh) === ref(lo, hi, sh)),
      { numRuns: 2000 },
    );
    expect(addr64(0x3a8c2000, 0x7f, 8)).toBe('0x7f3a8c200000');
  });

  it('gfx target names from gfx_target_version', () => {
    expect([90402, 90010, 90400, 90008, 110000, 100300, 0].map(gfxTargetName)).toEqual(['gfx942', 'gfx90a', 'gfx940', 'gfx908', 'gfx1100', 'gfx1030', null]);
  });

  it('priority levels follow pipe_priority_map', () => {
    expect([0, 1, 2].map((p) => priorityLevel(p, null))).toEqual(['low', 'normal', 'high']);
    expect([0, 6, 7, 10, 11, 15, 16].map((q) => priorityLevel(null, q))).toEqual(['low', 'low', 'normal', 'normal', 'high', 'high', null]);
    expect(priorityLevel(7, 3)).toBe('low');
  });

  it('MAP_QUEUES engine selection: compute, legacy sdma0/1, extended sdma2..15', () => {
    const mq = (dw1: number) => decodeMapQueues(Uint32Array.from([0xc005a200, dw1, 0, 0, 0, 0, 0]), 0, 7).engine;
    expect(mq(0x20000010)).toBe('compute');
    expect(mq((1 << 4) | (2 << 26) | (1 << 29))).toBe('sdma0');
    expect(mq((1 << 4) | (3 << 26) | (1 << 29))).toBe('sdma1');
    expect(mq(0x28000014)).toBe('sdma2');
    expect(mq((2 << 2) | (1 << 4) | (3 << 26))).toBe('sdma11');
  });
});
