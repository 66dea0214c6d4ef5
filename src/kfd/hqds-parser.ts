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
import { HqdsNodeCol as N, HqdsSlotCol as S } from './columns.js';
import { HQDS_NODE_COLS, HQDS_SLOT_COLS, HqdSlotKind, type HqdsRaw } from './raw.js';
import { DumpLineScanner, DumpLines, IssueSink, WordBuffer, asLatin1, decU32, parseDumpLine, snippet } from './text-scan.js';

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

/**
 * One long function on purpose: its line loop keeps the parse state in locals that V8 holds in
 * registers; the same parser split into per-line callbacks measured 10-14% slower (bench/RESULTS.md,
 * "TS parsers before/after the shared line scanner"). The loop skeleton itself is shared
 * (DumpLineScanner in text-scan.ts).
 */
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
    const r = curSlot * HQDS_SLOT_COLS;
    const count = slots[r + S.wordCount];
    if (slotBroken) brokenSlots.push(curSlot);
    else if (slots[r + S.kind] === HqdSlotKind.sdma) {
      if (count === 0) sink.add(slots[r + S.line], 'error', 'SDMA RLC dump has no registers');
    } else if (count !== 56) {
      sink.add(slots[r + S.line], 'error', `HQD dump has ${count} registers, expected 56`);
    }
    curSlot = -1;
  };
  /** What a dump cut at a line boundary leaves short in a node (see the file comment). */
  const checkNode = (row: number, endsDump: boolean): void => {
    const r = row * HQDS_NODE_COLS;
    const first = nodes[r + N.firstSlot];
    const count = nodes[r + N.slotCount];
    const line = nodes[r + N.line];
    const node = nodes[r + N.node];
    if (count === 0) {
      if (nodes[r + N.stopped] !== 1) sink.add(line, 'error', `node ${node} has no HQD slots (dump cut?)`);
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
      const o = i * HQDS_SLOT_COLS;
      const k = slots[o + S.kind];
      if (k === HqdSlotKind.sdma) {
        sdmaSlots++;
        if (!brokenSlots.includes(i)) sdmaMax = Math.max(sdmaMax, slots[o + S.wordCount]);
        // an SDMA slot's pipe column holds its engine
        let e = engines.indexOf(slots[o + S.pipe]);
        if (e < 0) {
          e = engines.length;
          engines.push(slots[o + S.pipe]);
          rlcPerEngine.push(0);
        }
        rlcPerEngine[e]++;
        continue;
      }
      let at = insts.indexOf(slots[o + S.inst]);
      if (at < 0) {
        at = insts.length;
        insts.push(slots[o + S.inst]);
        cpPerInst.push(0);
      }
      if (k === HqdSlotKind.cp) cpPerInst[at]++;
    }
    const cpMax = Math.max(0, ...cpPerInst);
    for (let j = 0; j < insts.length; j++) {
      if (cpPerInst[j] < cpMax) {
        sink.add(line, 'error', `node ${node}: Inst ${insts[j] < 0 ? '-' : insts[j]} has ${cpPerInst[j]} CP slot(s), another Inst has ${cpMax} (dump cut?)`);
      }
    }
    // every engine has num_sdma_queues_per_engine RLCs
    const rlcMax = Math.max(0, ...rlcPerEngine);
    for (let j = 0; j < engines.length; j++) {
      if (rlcPerEngine[j] < rlcMax) {
        sink.add(line, 'error', `node ${node}: SDMA engine ${engines[j]} has ${rlcPerEngine[j]} RLC(s), another engine has ${rlcMax} (dump cut?)`);
      }
    }
    for (let i = first; i < first + count; i++) {
      const o = i * HQDS_SLOT_COLS;
      const c = slots[o + S.wordCount];
      if (slots[o + S.kind] === HqdSlotKind.sdma && c > 0 && c < sdmaMax && !brokenSlots.includes(i)) {
        sink.add(slots[o + S.line], 'error', `SDMA RLC dump has ${c} registers, the node's others have ${sdmaMax} (dump cut?)`);
      }
    }
    if (endsDump && sdmaSlots === 0 && insts.length > 0) {
      sink.add(line, 'error', `node ${node} ends without its SDMA RLC dumps (dump cut?)`);
    }
  };
  const closeNode = (endsDump: boolean): void => {
    closeSlot();
    if (curNode >= 0) {
      const r = curNode * HQDS_NODE_COLS;
      nodes[r + N.slotCount] = slots.length / HQDS_SLOT_COLS - nodes[r + N.firstSlot];
      checkNode(curNode, endsDump);
    }
    brokenSlots = [];
  };

  const addNode = (node: number, gpuId: number, lineNo: number): void => {
    curNode = nodes.length / HQDS_NODE_COLS;
    const r = nodes.length; // a new row, written in column order
    nodes[r + N.node] = node;
    nodes[r + N.gpuId] = gpuId;
    nodes[r + N.line] = lineNo;
    nodes[r + N.stopped] = 0;
    nodes[r + N.firstSlot] = slots.length / HQDS_SLOT_COLS;
    nodes[r + N.slotCount] = 0;
  };
  /** f: matchSlotHeader's fields; wordOffset: where its registers will start in words. */
  const addSlot = (f: number[], lineNo: number, wordOffset: number): void => {
    curSlot = slots.length / HQDS_SLOT_COLS;
    const r = slots.length; // a new row, written in column order
    slots[r + S.node] = curNode;
    slots[r + S.kind] = f[0];
    slots[r + S.inst] = f[1];
    slots[r + S.mec] = f[2];
    slots[r + S.pipe] = f[3];
    slots[r + S.queue] = f[4];
    slots[r + S.line] = lineNo;
    slots[r + S.wordOffset] = wordOffset;
    slots[r + S.wordCount] = 0;
    slots[r + S.firstRegisterAddress] = 0;
  };

  // The register-line branch stays in this loop rather than in a callback: the state it reads
  // (skipRegs, words, lead, s) then lives in registers, not in the closures' shared context.
  const sc = new DumpLineScanner(s, DumpLines.fourSpaces);
  while (sc.next()) {
    const { start, end, lineNo } = sc;
    if (sc.dump) {
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
      const r = curSlot * HQDS_SLOT_COLS;
      if (slots[r + S.wordCount] === 0) slots[r + S.firstRegisterAddress] = lead[0];
      slots[r + S.wordCount] += k;
      words.length += k;
      continue;
    }

    const line = s.slice(start, end);
    const c0 = line.charCodeAt(0);
    if (c0 === 0x4e /* N */ && line.startsWith('Node')) {
      const h = matchNodeHeader(line);
      // a node printed before starts a second dump appended to the first
      const again = h ? (seenNode.get(h.node) ?? seenGpu.get(h.gpuId)) : undefined;
      closeNode(again !== undefined);
      if (!h || again !== undefined) {
        if (!h) sink.add(lineNo, 'error', `unrecognised node header (its slots are skipped): "${snippet(s, start, end)}"`);
        else sink.add(lineNo, 'error', `node ${h.node} (gpu_id ${h.gpuId.toString(16)}) again, first at line ${again}: two dumps appended? this copy is skipped`);
        curNode = -1;
        skipNode = true;
        skipRegs = true;
        continue;
      }
      seenNode.set(h.node, lineNo);
      seenGpu.set(h.gpuId, lineNo);
      skipNode = false;
      skipRegs = false;
      addNode(h.node, h.gpuId, lineNo);
      continue;
    }

    if (c0 === 0x20) {
      // ---- slot header or "Device is stopped" (one to three spaces)
      closeSlot();
      if (line === STOPPED) {
        if (curNode >= 0) nodes[curNode * HQDS_NODE_COLS + N.stopped] = 1;
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
      addSlot(f, lineNo, words.length);
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
    lines: sc.lineNo,
  };
}
