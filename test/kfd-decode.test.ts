/** Binary decoding shared by both parser paths. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  addr64,
  COMPUTE_HQD_REGS,
  COMPUTE_MQD_DWORDS,
  decodeComputeHqd,
  decodeComputeMqd,
  decodeMapQueues,
  decodeSdmaHqd,
  decodeSdmaMqd,
  gfxTargetName,
  priorityLevel,
  SDMA_HQD_REGS,
  SDMA_MQD_DWORDS,
} from '../src/kfd/decode.js';

describe('decode', () => {
  it('the trace-relevant dword/register sets hold every dword a decoder reads, except busy-only pointers', () => {
    const cases: [string, ReadonlySet<number>, number, (w: Uint32Array) => object][] = [
      ['compute MQD', COMPUTE_MQD_DWORDS, 512, decodeComputeMqd],
      ['SDMA MQD', SDMA_MQD_DWORDS, 128, decodeSdmaMqd],
      ['compute HQD', COMPUTE_HQD_REGS, 56, decodeComputeHqd],
      ['SDMA RLC', SDMA_HQD_REGS, 16, decodeSdmaHqd],
    ];
    for (const [what, keep, n, decode] of cases) {
      fc.assert(
        fc.property(fc.uint32Array({ minLength: n, maxLength: n }), fc.uint32Array({ minLength: n, maxLength: n }), (a, b) => {
          // b takes a's value at every dword of the set: the decoded fields may differ in busy only
          const mixed = b.map((x, i) => (keep.has(i) ? a[i] : x));
          const { busy: _a, ...x } = decode(a) as { busy?: unknown };
          const { busy: _b, ...y } = decode(mixed) as { busy?: unknown };
          expect(y, what).toEqual(x);
        }),
        { numRuns: 200 },
      );
    }
  });

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

  it('busy compares rptr and wptr modulo the ring size from CP_HQD_PQ_CONTROL, not a fixed mask', () => {
    const regs = (queueSize: number, rptr: number, wptr: number): Uint32Array => {
      const r = new Uint32Array(56);
      r[2] = 1; // CP_HQD_ACTIVE
      r[10] = rptr;
      r[17] = queueSize; // QUEUE_SIZE: log2(ring dwords) - 1
      r[54] = wptr;
      return r;
    };
    // a 1024-dword ring (QUEUE_SIZE 9): wptr one lap ahead of rptr is the same place, empty
    expect(decodeComputeHqd(regs(9, 0x10, 0x410)).busy).toBe(false);
    expect(decodeComputeHqd(regs(9, 0x10, 0x418)).busy).toBe(true);
    // the fixture's 1 MiB rings (QUEUE_SIZE 0x11, 2^18 dwords)
    expect(decodeComputeHqd(regs(0x14014511, 0xa440, 0xa480)).busy).toBe(true);
    expect(decodeComputeHqd(regs(0x14014511, 0x100, 0x40100)).busy).toBe(false);
    // cut before CP_HQD_PQ_CONTROL or the WPTR: unknown
    expect(decodeComputeHqd(regs(9, 0x10, 0x18).subarray(0, 17)).busy).toBeNull();
    expect(decodeComputeHqd(regs(9, 0x10, 0x18).subarray(0, 54)).busy).toBeNull();
  });

  it('fields beyond the end of a cut block or slot are null, never 0', () => {
    const m = decodeComputeMqd(Uint32Array.from({ length: 130 }, (_, i) => (i === 0 ? 0xc0310800 : i === 128 ? 0x712000 : 0)));
    expect(m).toMatchObject({ headerOk: true, mqdAddress: '0x712000', cpHqdActive: null, pipePriority: null, ringBase: null, aql: null, doorbell: null });
    expect(decodeComputeMqd(new Uint32Array(129)).mqdAddress).toBeNull();
    expect(decodeSdmaMqd(new Uint32Array(100))).toMatchObject({ ringBase: '0x0', engine: null, rlc: null });
    expect(decodeSdmaMqd(new Uint32Array(1)).ringBase).toBeNull();
    expect(decodeComputeHqd(Uint32Array.from([0x712000, 0])).active).toBeNull();
    expect(decodeComputeHqd(Uint32Array.from([0x712000, 0, 0])).active).toBe(false);
    expect(decodeSdmaHqd(new Uint32Array(0)).active).toBeNull();
  });
});
