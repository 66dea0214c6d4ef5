/**
 * Whether the words that changed in a debugfs table can change a trace sample. On a live GPU the
 * ring pointers of every busy queue move between two samples, so kfd/mqds and kfd/hqds differ in
 * almost every sample, while the queues, their slots and priorities stay as they were. The native
 * sampler re-decodes such texts word by word and names the words it changed
 * (NativeSample.changedWords); when none of them is a dword or register the decoders read for
 * anything but `busy` (src/kfd/decode.ts, COMPUTE_MQD_DWORDS ...), the joined result is the same
 * as the last sample's, and SampleAssembler keeps it instead of building and joining again.
 */
import { COMPUTE_HQD_REGS, COMPUTE_MQD_DWORDS, SDMA_HQD_REGS, SDMA_MQD_DWORDS } from '../kfd/decode.js';
import { HqdsSlotCol as S, MqdsBlockCol as B, MqdsQueueCol as Q } from '../kfd/columns.js';
import { HQDS_SLOT_COLS, HqdSlotKind, MQDS_BLOCK_COLS, MQDS_QUEUE_COLS, MqdQueueKind, type HqdsRaw, type MqdsRaw } from '../kfd/raw.js';

/** The last row whose `offsetCol` is <= index, in a table sorted by that column; -1 if none. */
function rowAt(table: Float64Array, cols: number, offsetCol: number, index: number): number {
  let lo = 0;
  let hi = table.length / cols - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (table[mid * cols + offsetCol] <= index) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** Every changed word of hqds is a register no decoder reads but for busy. */
export function hqdsChangeIrrelevant(hqds: HqdsRaw, changed: Uint32Array): boolean {
  for (const w of changed) {
    const r = rowAt(hqds.slots, HQDS_SLOT_COLS, S.wordOffset, w);
    if (r < 0) return false;
    const base = r * HQDS_SLOT_COLS;
    const reg = w - hqds.slots[base + S.wordOffset];
    if (reg >= hqds.slots[base + S.wordCount]) return false;
    const regs = hqds.slots[base + S.kind] === HqdSlotKind.sdma ? SDMA_HQD_REGS : COMPUTE_HQD_REGS;
    if (regs.has(reg)) return false;
  }
  return true;
}

/** Every changed word of mqds is a dword of its MQD that no decoder reads. */
export function mqdsChangeIrrelevant(mqds: MqdsRaw, changed: Uint32Array): boolean {
  for (const w of changed) {
    const b = rowAt(mqds.blocks, MQDS_BLOCK_COLS, B.wordOffset, w);
    if (b < 0) return false;
    const base = b * MQDS_BLOCK_COLS;
    const dword = w - mqds.blocks[base + B.wordOffset];
    if (dword >= mqds.blocks[base + B.wordCount]) return false;
    const kind = mqds.queues[mqds.blocks[base + B.queue] * MQDS_QUEUE_COLS + Q.kind];
    const dwords = kind === MqdQueueKind.sdma ? SDMA_MQD_DWORDS : kind === MqdQueueKind.compute || kind === MqdQueueKind.diq ? COMPUTE_MQD_DWORDS : null;
    // a queue kind the decoders do not know: any change may matter
    if (dwords === null || dwords.has(dword)) return false;
  }
  return true;
}
