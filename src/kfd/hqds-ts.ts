/**
 * Pure-TS parser of debugfs kfd/hqds (docs/kfd-formats.md#hqds). Twin of native/kfd/hqds_parser.cc.
 *
 * Registers are taken by position, never by address: the address printed in front of each
 * line is a per-XCC, per-ASIC MMIO offset. A compute slot (HIQ or CP) should hold 56 values
 * (CP_MQD_BASE_ADDR .. CP_HQD_PQ_WPTR_HI, value i == MQD dword 128+i); SDMA RLC dumps vary by
 * ASIC (44 on GC 9.4.3) and are only required to be non-empty and as long as the node's others.
 *
 * Damaged input is reported, never guessed at: a line ending in CR LF is read as if it ended in
 * LF; a Node that appears a second time (two dumps appended) is an error and its copy is skipped,
 * not merged; a dump cut at a line boundary is found by what it leaves short: a node without
 * slots, an Inst with fewer CP slots than the node's others, an SDMA engine with fewer RLCs than
 * the node's others, an SDMA RLC with fewer registers than the node's others, a node that ends a
 * dump without its SDMA RLCs.
 */
import { HqdSlotKind, type HqdsRaw } from './raw.js';
import { IssueSink, WordBuffer, asLatin1, decU32, parseDumpLine, snippet } from './text.js';

export const HQD_COMPUTE_REGS = 56;

const RE_NODE = /^Node (\d{1,10}), gpu_id ([0-9a-f]{1,8}):$/;
const RE_HIQ = /^ {3}Inst (\d{1,10}), HIQ on MEC (\d{1,10}) Pipe (\d{1,10}) Queue (\d{1,10})$/;
const RE_HIQ_OLD = /^ {2}HIQ on MEC (\d{1,10}) Pipe (\d{1,10}) Queue (\d{1,10})$/;
const RE_CP = /^ Inst (\d{1,10}), {2}CP Pipe (\d{1,10}), Queue (\d{1,10})$/;
const RE_CP_OLD = /^ {2}CP Pipe (\d{1,10}), Queue (\d{1,10})$/;
const RE_SDMA = /^ {2}SDMA Engine (\d{1,10}), RLC (\d{1,10})$/;
const STOPPED = ' Device is stopped';

/** Node header shared by hqds and rls. */
export function matchNodeHeader(line: string): { node: number; gpuId: number } | null {
  const m = RE_NODE.exec(line);
  if (!m) return null;
  const node = decU32(m[1]);
  return node === null ? null : { node, gpuId: parseInt(m[2], 16) };
}

/** [kind, inst, mec, pipe, queue] of a slot header, or null. */
function matchSlotHeader(line: string): number[] | null {
  let m: RegExpExecArray | null;
  let f: (number | null)[];
  if ((m = RE_CP.exec(line))) f = [HqdSlotKind.cp, decU32(m[1]), -1, decU32(m[2]), decU32(m[3])];
  else if ((m = RE_HIQ.exec(line)))
    f = [HqdSlotKind.hiq, decU32(m[1]), decU32(m[2]), decU32(m[3]), decU32(m[4])];
  else if ((m = RE_SDMA.exec(line))) f = [HqdSlotKind.sdma, -1, -1, decU32(m[1]), decU32(m[2])];
  else if ((m = RE_CP_OLD.exec(line))) f = [HqdSlotKind.cp, -1, -1, decU32(m[1]), decU32(m[2])];
  else if ((m = RE_HIQ_OLD.exec(line)))
    f = [HqdSlotKind.hiq, -1, decU32(m[1]), decU32(m[2]), decU32(m[3])];
  else return null;
  return f.includes(null) ? null : (f as number[]);
}

export function parseHqdsTs(input: string | Uint8Array): HqdsRaw {
  const s = asLatin1(input);
  const sink = new IssueSink();
  const words = new WordBuffer(Math.ceil(s.length / 9));
  const nodes: number[] = [];
  const slots: number[] = [];
  const lead = [0];

  let curNode = -1;
  let skipNode = false; // after a bad or repeated Node header: its slots are skipped silently
  let curSlot = -1;
  let skipRegs = false; // register lines skipped silently (bad slot header / orphan / broken slot)
  let slotBroken = false;
  // slots of the open node whose dump was broken (already reported): left out of the length checks
  let brokenSlots: number[] = [];
  // first line of each node number and gpu_id seen, to find a node printed twice
  const seenNode = new Map<number, number>();
  const seenGpu = new Map<number, number>();

  const closeSlot = (): void => {
    if (curSlot < 0) return;
    const r = curSlot * 10;
    const count = slots[r + 8];
    if (slotBroken) brokenSlots.push(curSlot);
    else if (slots[r + 1] === HqdSlotKind.sdma) {
      if (count === 0) sink.add(slots[r + 6], 'error', 'SDMA RLC dump has no registers');
    } else if (count !== 56) {
      sink.add(slots[r + 6], 'error', `HQD dump has ${count} registers, expected 56`);
    }
    curSlot = -1;
  };
  /** What a dump cut at a line boundary leaves short in a node (see the file comment). */
  const checkNode = (row: number, endsDump: boolean): void => {
    const r = row * 6;
    const first = nodes[r + 4];
    const count = nodes[r + 5];
    if (count === 0) {
      if (nodes[r + 3] !== 1) sink.add(nodes[r + 2], 'error', `node ${nodes[r]} has no HQD slots (dump cut?)`);
      return;
    }
    // CP slots per Inst (in order of first appearance) and the longest SDMA RLC dump
    const insts: number[] = [];
    const cpPerInst: number[] = [];
    const engines: number[] = [];
    const rlcPerEngine: number[] = [];
    let sdmaMax = 0;
    let sdmaSlots = 0;
    for (let i = first; i < first + count; i++) {
      const k = slots[i * 10 + 1];
      if (k === HqdSlotKind.sdma) {
        sdmaSlots++;
        if (!brokenSlots.includes(i)) sdmaMax = Math.max(sdmaMax, slots[i * 10 + 8]);
        let e = engines.indexOf(slots[i * 10 + 4]);
        if (e < 0) {
          e = engines.length;
          engines.push(slots[i * 10 + 4]);
          rlcPerEngine.push(0);
        }
        rlcPerEngine[e]++;
        continue;
      }
      let at = insts.indexOf(slots[i * 10 + 2]);
      if (at < 0) {
        at = insts.length;
        insts.push(slots[i * 10 + 2]);
        cpPerInst.push(0);
      }
      if (k === HqdSlotKind.cp) cpPerInst[at]++;
    }
    const cpMax = Math.max(0, ...cpPerInst);
    for (let j = 0; j < insts.length; j++) {
      if (cpPerInst[j] < cpMax) {
        sink.add(nodes[r + 2], 'error', `node ${nodes[r]}: Inst ${insts[j] < 0 ? '-' : insts[j]} has ${cpPerInst[j]} CP slot(s), another Inst has ${cpMax} (dump cut?)`);
      }
    }
    // every engine has num_sdma_queues_per_engine RLCs
    const rlcMax = Math.max(0, ...rlcPerEngine);
    for (let j = 0; j < engines.length; j++) {
      if (rlcPerEngine[j] < rlcMax) {
        sink.add(nodes[r + 2], 'error', `node ${nodes[r]}: SDMA engine ${engines[j]} has ${rlcPerEngine[j]} RLC(s), another engine has ${rlcMax} (dump cut?)`);
      }
    }
    for (let i = first; i < first + count; i++) {
      const c = slots[i * 10 + 8];
      if (slots[i * 10 + 1] === HqdSlotKind.sdma && c > 0 && c < sdmaMax && !brokenSlots.includes(i)) {
        sink.add(slots[i * 10 + 6], 'error', `SDMA RLC dump has ${c} registers, the node's others have ${sdmaMax} (dump cut?)`);
      }
    }
    if (endsDump && sdmaSlots === 0 && insts.length > 0) {
      sink.add(nodes[r + 2], 'error', `node ${nodes[r]} ends without its SDMA RLC dumps (dump cut?)`);
    }
  };
  const closeNode = (endsDump: boolean): void => {
    closeSlot();
    if (curNode >= 0) {
      nodes[curNode * 6 + 5] = slots.length / 10 - nodes[curNode * 6 + 4];
      checkNode(curNode, endsDump);
    }
    brokenSlots = [];
  };

  let lineNo = 0;
  let pos = 0;
  const n = s.length;
  while (pos < n) {
    let end = s.indexOf('\n', pos);
    if (end < 0) end = n;
    lineNo++;
    const start = pos;
    pos = end + 1;
    if (end > start && s.charCodeAt(end - 1) === 0x0d) end--; // CR LF
    if (end === start) continue;

    const c0 = s.charCodeAt(start);
    if (c0 === 0x20 && s.charCodeAt(start + 1) === 0x20 && s.charCodeAt(start + 2) === 0x20 && s.charCodeAt(start + 3) === 0x20) {
      // ---- register line
      if (curSlot < 0) {
        if (!skipRegs && !skipNode) {
          sink.add(lineNo, 'error', 'register dump outside a slot');
          skipRegs = true;
        }
        continue;
      }
      if (skipRegs) continue;
      words.reserve(8);
      const k = parseDumpLine(s, start, end, 4, words.buf, words.length, lead);
      if (k < 0) {
        sink.add(lineNo, 'error', `malformed register line: "${snippet(s, start, end)}"`);
        slotBroken = true;
        skipRegs = true;
        continue;
      }
      const r = curSlot * 10;
      if (slots[r + 8] === 0) slots[r + 9] = lead[0];
      slots[r + 8] += k;
      words.length += k;
      continue;
    }

    const line = s.slice(start, end);
    if (c0 === 0x4e /* N */ && line.startsWith('Node')) {
      const h = matchNodeHeader(line);
      // a node printed before starts a second dump appended to the first
      const again = h ? (seenNode.get(h.node) ?? seenGpu.get(h.gpuId)) : undefined;
      closeNode(again !== undefined);
      if (!h) {
        sink.add(lineNo, 'error', `unrecognised node header (its slots are skipped): "${snippet(s, start, end)}"`);
        curNode = -1;
        skipNode = true;
        skipRegs = true;
        continue;
      }
      if (again !== undefined) {
        sink.add(lineNo, 'error', `node ${h.node} (gpu_id ${h.gpuId.toString(16)}) again, first at line ${again}: two dumps appended? this copy is skipped`);
        curNode = -1;
        skipNode = true;
        skipRegs = true;
        continue;
      }
      seenNode.set(h.node, lineNo);
      seenGpu.set(h.gpuId, lineNo);
      skipNode = false;
      skipRegs = false;
      curNode = nodes.length / 6;
      nodes.push(h.node, h.gpuId, lineNo, 0, slots.length / 10, 0);
      continue;
    }

    if (c0 === 0x20) {
      closeSlot();
      if (line === STOPPED) {
        if (curNode >= 0) nodes[curNode * 6 + 3] = 1;
        else if (!skipNode) sink.add(lineNo, 'error', '"Device is stopped" outside a Node block');
        skipRegs = true;
        continue;
      }
      const f = matchSlotHeader(line);
      if (!f) {
        sink.add(lineNo, 'error', `unrecognised slot header (its registers are skipped): "${snippet(s, start, end)}"`);
        skipRegs = true;
        continue;
      }
      if (curNode < 0) {
        if (!skipNode) sink.add(lineNo, 'error', `slot header outside a Node block: "${snippet(s, start, end)}"`);
        skipRegs = true;
        continue;
      }
      skipRegs = false;
      slotBroken = false;
      curSlot = slots.length / 10;
      slots.push(curNode, f[0], f[1], f[2], f[3], f[4], lineNo, words.length, 0, 0);
      continue;
    }

    closeSlot();
    sink.add(lineNo, 'error', `unrecognised line: "${snippet(s, start, end)}"`);
    skipRegs = true;
  }
  closeNode(true);

  return {
    words: words.finish(),
    nodes: Float64Array.from(nodes),
    slots: Float64Array.from(slots),
    issues: sink.issues,
    suppressed: sink.suppressed,
    lines: lineNo,
  };
}
