/**
 * GPU device descriptions as the plugins list them (listBackends()), for tests that feed made-up
 * GPU figures to the code that judges them: one H100 for every such test.
 */
import type { NativeBackendDevice } from '../../src/native.js';

/** An H100 SXM as the CUDA plugin would list it: 132 SMs, 2048 threads and 32 blocks per SM. */
export const H100: NativeBackendDevice = {
  name: 'NVIDIA H100 80GB HBM3',
  arch: 'sm_90',
  computeUnits: 132,
  priorityLeast: 0,
  priorityGreatest: -5,
  supportsCuMask: false,
  supportsSmPartition: true,
  timerResolutionNs: 0,
  maxThreadsPerBlock: 1024,
  fillThreadsPerBlock: 64,
  maxActiveBlocksPerCu: 32,
  occupancy: [
    { threadsPerBlock: 32, blocksPerCu: 32 },
    { threadsPerBlock: 64, blocksPerCu: 32 },
    { threadsPerBlock: 128, blocksPerCu: 16 },
    { threadsPerBlock: 256, blocksPerCu: 8 },
    { threadsPerBlock: 512, blocksPerCu: 4 },
    { threadsPerBlock: 1024, blocksPerCu: 2 },
  ],
  numXcc: 1,
  numSePerXcc: 0,
  numShPerSe: 0,
  cuMaskBitsPerUnit: 0,
};
