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
import {
  MQD_QUEUE_KIND_NAMES,
  MqdQueueKind,
  type MqdsRaw,
} from './raw.js';
import { IssueSink, WordBuffer, asLatin1, decU32, hex8, parseDumpLine, snippet } from './text.js';

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
    const q = curQueue * 8;
    blocks.push(curQueue, blockLine, blockStart, count);
    queues[q + 6]++;
    if (blockBroken) return;
    const expected = expectedMqdWords(queues[q + 1]);
    if (expected.length > 0 && !expected.includes(count)) {
      sink.add(blockLine, 'error', `MQD block has ${count} dwords, expected ${expected[0]}`);
    }
  };

  const closeProc = (): void => {
    if (curProc >= 0) procs[curProc * 4 + 3] = queues.length / 8 - procs[curProc * 4 + 2];
  };

  /** A queue whose header is the last thing printed of it: the dump was cut after the header. */
  const closeQueue = (): void => {
    if (curQueue < 0) return;
    const q = curQueue * 8;
    if (queues[q + 6] === 0 && expectedMqdWords(queues[q + 1]).length > 0) {
      sink.add(queues[q + 4], 'error', `${MQD_QUEUE_KIND_NAMES[queues[q + 1]]} queue without an MQD dump (dump cut?)`);
    }
    curQueue = -1;
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
    if (end === start) continue; // blank line

    const c0 = s.charCodeAt(start);
    if (c0 === 0x20 && s.charCodeAt(start + 1) === 0x20 && s.charCodeAt(start + 2) === 0x20 && s.charCodeAt(start + 3) === 0x20) {
      // ---- dump line
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
        if (!blockOpen) {
          // the block's first line is damaged: open it broken so its later lines are not
          // reported once more as a block without a start
          blockOpen = true;
          blockLine = lineNo;
          blockStart = words.length;
          blockDiscard = queues[curQueue * 8 + 1] === MqdQueueKind.sdma && queues[curQueue * 8 + 6] > 0;
          if (blockDiscard) queues[curQueue * 8 + 7]++;
        }
        blockBroken = true;
        continue;
      }
      const offset = lead[0];
      if (offset === 0) {
        closeBlock();
        blockOpen = true;
        blockBroken = false;
        blockLine = lineNo;
        blockStart = words.length;
        // an SDMA queue's MQD is its first block; later blocks repeat neighbouring slots
        blockDiscard = queues[curQueue * 8 + 1] === MqdQueueKind.sdma && queues[curQueue * 8 + 6] > 0;
        if (blockDiscard) queues[curQueue * 8 + 7]++;
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
        sink.add(
          lineNo,
          'error',
          `MQD dump offset 0x${hex8(offset)} where 0x${hex8((words.length - blockStart) * 4)} was expected`,
        );
        blockBroken = true;
        continue;
      }
      if (!blockDiscard) words.length += k;
      continue;
    }

    const line = s.slice(start, end);
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
      curProc = procs.length / 4;
      procs.push(pid, lineNo, queues.length / 8, 0);
      pasids.push(m[2]);
      continue;
    }

    if (c0 === 0x20 && s.charCodeAt(start + 1) === 0x20 && s.charCodeAt(start + 2) !== 0x20) {
      // ---- queue header
      closeBlock();
      closeQueue();
      if (curProc < 0) {
        if (!skipProc) sink.add(lineNo, 'error', `queue header outside a process: "${snippet(s, start, end)}"`);
        skipDump = true;
        continue;
      }
      let kind = -1;
      let typeCode = -1;
      let gpu: string | undefined;
      let m: RegExpExecArray | null;
      if ((m = RE_QUEUE.exec(line))) {
        kind = m[1] === 'Compute' ? MqdQueueKind.compute : MqdQueueKind.sdma;
        gpu = m[2];
      } else if ((m = RE_DIQ.exec(line))) {
        kind = MqdQueueKind.diq;
        gpu = m[1];
      } else if ((m = RE_BAD_USER.exec(line))) {
        typeCode = decU32(m[1]) ?? -1;
        if (typeCode >= 0) kind = MqdQueueKind.badUser;
        gpu = m[2];
      } else if ((m = RE_BAD_KERNEL.exec(line))) {
        typeCode = decU32(m[1]) ?? -1;
        if (typeCode >= 0) kind = MqdQueueKind.badKernel;
        gpu = m[2];
      } else if (line === WEIRD) {
        kind = MqdQueueKind.weird;
      }
      if (kind < 0) {
        sink.add(lineNo, 'error', `unrecognised queue header (its dump is skipped): "${snippet(s, start, end)}"`);
        skipDump = true;
        continue;
      }
      if (kind >= MqdQueueKind.badUser) {
        sink.add(lineNo, 'warning', `kernel reports an unusable queue: "${snippet(s, start, end)}"`);
      }
      skipDump = false;
      curQueue = queues.length / 8;
      queues.push(curProc, kind, typeCode, gpu === undefined ? -1 : parseInt(gpu, 16), lineNo, blocks.length / 4, 0, 0);
      continue;
    }

    // ---- anything else
    sink.add(lineNo, 'error', `unrecognised line: "${snippet(s, start, end)}"`);
  }
  closeBlock();
  closeQueue();
  closeProc();

  // one MQD block per XCC: a compute queue with fewer blocks than another on its device was cut
  const most = new Map<number, number>();
  for (let q = 0; q < queues.length; q += 8) {
    if (queues[q + 1] === MqdQueueKind.compute) most.set(queues[q + 3], Math.max(most.get(queues[q + 3]) ?? 0, queues[q + 6]));
  }
  for (let q = 0; q < queues.length; q += 8) {
    const have = queues[q + 6];
    const max = most.get(queues[q + 3]) ?? 0;
    if (queues[q + 1] === MqdQueueKind.compute && have > 0 && have < max) {
      sink.add(queues[q + 4], 'error', `compute queue has ${have} MQD block(s), another on device ${hex(queues[q + 3])} has ${max} (dump cut?)`);
    }
  }

  return {
    words: words.finish(),
    procs: Float64Array.from(procs),
    pasids,
    queues: Float64Array.from(queues),
    blocks: Float64Array.from(blocks),
    issues: sink.issues,
    suppressed: sink.suppressed,
    lines: lineNo,
  };
}
