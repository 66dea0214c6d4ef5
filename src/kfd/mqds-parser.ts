/**
 * Pure-TS parser of debugfs kfd/mqds (docs/kfd-formats.md#mqds). Twin of native/kfd/mqds_parser.cc: same rules,
 * same tables, same issue wording.
 *
 * Rules:
 *  - `Process <pid> PASID <0x..|dec>:` opens a process (the PASID field is opaque: on current
 *    drivers it is the pid again).
 *  - two-space queue headers open a queue; its dump follows as 4-space hex lines. An offset of
 *    00000000 starts a new block: for compute queues one block per XCC; for an SDMA queue only
 *    the first block is its MQD, later blocks are the kernel's stale-num_xccs repeat (counted in
 *    extraCopies, words dropped).
 *  - a block must continue at offset = 4 x words so far; compute/DIQ blocks should hold 512
 *    dwords, SDMA 128 (130 on old headers).
 *  - anything else is an issue naming the line; after a bad header its dump is skipped silently.
 *  - damaged input is reported, never guessed at: CR LF line ends are read as LF; a compute, SDMA
 *    or DIQ queue header without any dump line, and a compute queue with fewer MQD blocks than
 *    the other compute queues on its device (one block per XCC), are errors (a dump cut at a
 *    line boundary). What a short block does not hold is decoded as unknown (decode.ts).
 */
import { MqdsBlockCol as B, MqdsProcCol as P, MqdsQueueCol as Q } from './columns.js';
import {
  MQDS_BLOCK_COLS,
  MQDS_PROC_COLS,
  MQDS_QUEUE_COLS,
  MQD_QUEUE_KIND_NAMES,
  MqdQueueKind,
  type MqdsRaw,
} from './raw.js';
import { DumpLineScanner, DumpLines, IssueSink, WordBuffer, asLatin1, decU32, hex8, parseDumpLine, snippet } from './text-scan.js';

const RE_PROCESS = /^Process (\d{1,10}) PASID (0x[0-9a-f]{1,8}|\d{1,10}):$/;
const RE_QUEUE = /^ {2}(Compute|SDMA) queue on device ([0-9a-f]{1,8})$/;
const RE_DIQ = /^ {2}DIQ on device ([0-9a-f]{1,8})$/;
const RE_BAD_USER = /^ {2}(?:Bad user queue type|Queue node with bad user queue type) (\d{1,10}) on device ([0-9a-f]{1,8})$/;
const RE_BAD_KERNEL = /^ {2}Bad kernel queue type (\d{1,10}) on device ([0-9a-f]{1,8})$/;
const WEIRD = '  Weird: Queue node with neither kernel nor user queue';
const hex = (v: number): string => (v >>> 0).toString(16);

/** Expected dwords per MQD block by queue kind (0 = not checked). */
export function expectedMqdWords(kind: number): readonly number[] {
  if (kind === MqdQueueKind.compute || kind === MqdQueueKind.diq) return [512];
  if (kind === MqdQueueKind.sdma) return [128, 130];
  return [];
}

/** [kind, typeCode (-1), gpuId (-1)] of a queue header, or null when it is none we know. */
function matchQueueHeader(line: string): [number, number, number] | null {
  let m: RegExpExecArray | null;
  if ((m = RE_QUEUE.exec(line))) return [m[1] === 'Compute' ? MqdQueueKind.compute : MqdQueueKind.sdma, -1, parseInt(m[2], 16)];
  if ((m = RE_DIQ.exec(line))) return [MqdQueueKind.diq, -1, parseInt(m[1], 16)];
  // a type code beyond u32 makes the header unrecognised, without trying the patterns after it
  if ((m = RE_BAD_USER.exec(line))) {
    const t = decU32(m[1]);
    return t === null ? null : [MqdQueueKind.badUser, t, parseInt(m[2], 16)];
  }
  if ((m = RE_BAD_KERNEL.exec(line))) {
    const t = decU32(m[1]);
    return t === null ? null : [MqdQueueKind.badKernel, t, parseInt(m[2], 16)];
  }
  return line === WEIRD ? [MqdQueueKind.weird, -1, -1] : null;
}

/**
 * One long function on purpose: its line loop keeps the parse state in locals that V8 holds in
 * registers; the same parser split into per-line callbacks measured 10-14% slower (bench/RESULTS.md,
 * "TS parsers before/after the shared line scanner"). The loop skeleton itself is shared
 * (DumpLineScanner in text-scan.ts).
 */
export function parseMqdsTs(input: string | Uint8Array): MqdsRaw {
  const s = asLatin1(input);
  const sink = new IssueSink();
  const words = new WordBuffer(Math.ceil(s.length / 9));
  const procs: number[] = [];
  const pasids: string[] = [];
  const queues: number[] = [];
  const blocks: number[] = [];
  const lead = [0];

  let curProc = -1; // process row, -1 = none
  let curQueue = -1; // queue row, -1 = none
  let skipProc = false; // after a bad process header: its queues are skipped silently
  let skipDump = false; // after a bad queue header (or an orphan dump): dump lines skipped silently
  // the open block
  let blockOpen = false;
  let blockDiscard = false; // SDMA repeat copy
  let blockBroken = false;
  let blockLine = 0;
  let blockStart = 0;

  const closeBlock = (): void => {
    if (!blockOpen) return;
    blockOpen = false;
    if (blockDiscard) return;
    const count = words.length - blockStart;
    const q = curQueue * MQDS_QUEUE_COLS;
    const b = blocks.length; // a new row, written in column order
    blocks[b + B.queue] = curQueue;
    blocks[b + B.line] = blockLine;
    blocks[b + B.wordOffset] = blockStart;
    blocks[b + B.wordCount] = count;
    queues[q + Q.blockCount]++;
    if (blockBroken) return;
    const expected = expectedMqdWords(queues[q + Q.kind]);
    if (expected.length > 0 && !expected.includes(count)) {
      sink.add(blockLine, 'error', `MQD block has ${count} dwords, expected ${expected[0]}`);
    }
  };

  const closeProc = (): void => {
    const p = curProc * MQDS_PROC_COLS;
    if (curProc >= 0) procs[p + P.queueCount] = queues.length / MQDS_QUEUE_COLS - procs[p + P.firstQueue];
  };

  /** A queue whose header is the last thing printed of it: the dump was cut after the header. */
  const closeQueue = (): void => {
    if (curQueue < 0) return;
    const q = curQueue * MQDS_QUEUE_COLS;
    if (queues[q + Q.blockCount] === 0 && expectedMqdWords(queues[q + Q.kind]).length > 0) {
      sink.add(queues[q + Q.line], 'error', `${MQD_QUEUE_KIND_NAMES[queues[q + Q.kind]]} queue without an MQD dump (dump cut?)`);
    }
    curQueue = -1;
  };

  /** Opens a block at this dump line; an SDMA queue's MQD is its first block, later ones repeat neighbouring slots. */
  const openBlock = (lineNo: number, broken: boolean): void => {
    const q = curQueue * MQDS_QUEUE_COLS;
    blockOpen = true;
    blockBroken = broken;
    blockLine = lineNo;
    blockStart = words.length;
    blockDiscard = queues[q + Q.kind] === MqdQueueKind.sdma && queues[q + Q.blockCount] > 0;
    if (blockDiscard) queues[q + Q.extraCopies]++;
  };

  const addProcess = (pid: number, lineNo: number): void => {
    curProc = procs.length / MQDS_PROC_COLS;
    const p = procs.length; // a new row, written in column order
    procs[p + P.pid] = pid;
    procs[p + P.line] = lineNo;
    procs[p + P.firstQueue] = queues.length / MQDS_QUEUE_COLS;
    procs[p + P.queueCount] = 0;
  };

  const addQueue = (h: [number, number, number], lineNo: number): void => {
    curQueue = queues.length / MQDS_QUEUE_COLS;
    const q = queues.length; // a new row, written in column order
    queues[q + Q.proc] = curProc;
    queues[q + Q.kind] = h[0];
    queues[q + Q.typeCode] = h[1];
    queues[q + Q.gpuId] = h[2];
    queues[q + Q.line] = lineNo;
    queues[q + Q.firstBlock] = blocks.length / MQDS_BLOCK_COLS;
    queues[q + Q.blockCount] = 0;
    queues[q + Q.extraCopies] = 0;
  };

  // The dump-line branch stays in this loop rather than in a callback: the state it reads
  // (skipDump, lead, s) then lives in registers, not in the closures' shared context.
  const sc = new DumpLineScanner(s, DumpLines.fourSpaces);
  while (sc.next()) {
    const { start, end, lineNo } = sc;
    if (sc.dump) {
      if (curQueue < 0) {
        if (!skipDump && !skipProc) {
          sink.add(lineNo, 'error', 'MQD dump line outside a queue');
          skipDump = true;
        }
        continue;
      }
      if (skipDump) continue;
      words.reserve(8);
      const k = parseDumpLine(s, start, end, 4, words.buf, words.length, lead);
      if (k < 0) {
        sink.add(lineNo, 'error', `malformed MQD dump line: "${snippet(s, start, end)}"`);
        // the block's first line is damaged: open it broken so its later lines are not
        // reported once more as a block without a start
        if (!blockOpen) openBlock(lineNo, true);
        blockBroken = true;
        continue;
      }
      const offset = lead[0];
      if (offset === 0) {
        closeBlock();
        openBlock(lineNo, false);
      } else if (!blockOpen) {
        sink.add(lineNo, 'error', `MQD dump starts at offset 0x${hex8(offset)} instead of 00000000`);
        blockOpen = true;
        blockBroken = true;
        blockDiscard = false;
        blockLine = lineNo;
        blockStart = words.length;
        continue;
      } else if (blockBroken) {
        continue;
      } else if (!blockDiscard && offset !== (words.length - blockStart) * 4) {
        sink.add(lineNo, 'error', `MQD dump offset 0x${hex8(offset)} where 0x${hex8((words.length - blockStart) * 4)} was expected`);
        blockBroken = true;
        continue;
      }
      if (!blockDiscard) words.length += k;
      continue;
    }

    const line = s.slice(start, end);
    const c0 = line.charCodeAt(0);
    if (c0 === 0x50 /* P */ && line.startsWith('Process')) {
      // ---- process header
      closeBlock();
      closeQueue();
      closeProc();
      skipDump = false;
      const m = RE_PROCESS.exec(line);
      const pid = m ? decU32(m[1]) : null;
      if (!m || pid === null) {
        sink.add(lineNo, 'error', `unrecognised process header (its queues are skipped): "${snippet(s, start, end)}"`);
        curProc = -1;
        skipProc = true;
        continue;
      }
      skipProc = false;
      addProcess(pid, lineNo);
      pasids.push(m[2]);
      continue;
    }

    // two spaces, then not a third (four are a dump line, three anything else)
    if (c0 === 0x20 && line.charCodeAt(1) === 0x20 && line.charCodeAt(2) !== 0x20) {
      // ---- queue header
      closeBlock();
      closeQueue();
      if (curProc < 0) {
        if (!skipProc) sink.add(lineNo, 'error', `queue header outside a process: "${snippet(s, start, end)}"`);
        skipDump = true;
        continue;
      }
      const h = matchQueueHeader(line);
      if (!h) {
        sink.add(lineNo, 'error', `unrecognised queue header (its dump is skipped): "${snippet(s, start, end)}"`);
        skipDump = true;
        continue;
      }
      if (h[0] >= MqdQueueKind.badUser) {
        sink.add(lineNo, 'warning', `kernel reports an unusable queue: "${snippet(s, start, end)}"`);
      }
      skipDump = false;
      addQueue(h, lineNo);
      continue;
    }

    // ---- anything else
    sink.add(lineNo, 'error', `unrecognised line: "${snippet(s, start, end)}"`);
  }
  closeBlock();
  closeQueue();
  closeProc();
  checkBlocksPerDevice(queues, sink);

  return {
    words: words.finish(),
    procs: Float64Array.from(procs),
    pasids,
    queues: Float64Array.from(queues),
    blocks: Float64Array.from(blocks),
    issues: sink.issues,
    suppressed: sink.suppressed,
    lines: sc.lineNo,
  };
}

/** One MQD block per XCC: a compute queue with fewer blocks than another on its device was cut. */
function checkBlocksPerDevice(queues: number[], sink: IssueSink): void {
  const most = new Map<number, number>();
  for (let q = 0; q < queues.length; q += MQDS_QUEUE_COLS) {
    if (queues[q + Q.kind] === MqdQueueKind.compute) most.set(queues[q + Q.gpuId], Math.max(most.get(queues[q + Q.gpuId]) ?? 0, queues[q + Q.blockCount]));
  }
  for (let q = 0; q < queues.length; q += MQDS_QUEUE_COLS) {
    const have = queues[q + Q.blockCount];
    const max = most.get(queues[q + Q.gpuId]) ?? 0;
    if (queues[q + Q.kind] === MqdQueueKind.compute && have > 0 && have < max) {
      sink.add(queues[q + Q.line], 'error', `compute queue has ${have} MQD block(s), another on device ${hex(queues[q + Q.gpuId])} has ${max} (dump cut?)`);
    }
  }
}
