/**
 * Pure-TS parser of debugfs kfd/rls (docs/kfd-formats.md#rls). Twin of native/kfd/rls_parser.cc.
 *
 * Per `Node` block: either `  No active runlist` or a 2-space hex dump of the runlist IB. The
 * IB is cut into PM4 type-3 packets by their header count field (not by MAP_PROCESS.num_queues,
 * which counts inactive queues too); what each packet means is decoded in decode.ts. CR LF line
 * ends are read as LF; a Node printed a second time (two dumps appended) is an error and its copy
 * is skipped, not merged.
 */
import { RlsNodeCol as N, RlsPacketCol as P } from './columns.js';
import { RLS_NODE_COLS, RLS_PACKET_COLS, type RlsRaw } from './raw.js';
import { matchNodeHeader } from './hqds-parser.js';
import { DumpLineScanner, DumpLines, IssueSink, WordBuffer, asLatin1, hex8, parseDumpLine, snippet } from './text-scan.js';

export const PM4_OPCODE_NAMES: Record<number, string> = {
  0xa1: 'MAP_PROCESS',
  0xa2: 'MAP_QUEUES',
  0xa5: 'RUN_LIST',
};
const NO_RUNLIST = '  No active runlist';

/**
 * Cuts words[start, start+count) into PM4 type-3 packets; appends RlsPacketCol rows. Stops at
 * the first word that is not a type-3 header or a packet that runs past the end.
 */
export function walkPm4(
  words: Uint32Array,
  start: number,
  count: number,
  nodeRow: number,
  firstDumpLine: number,
  packets: number[],
  sink: IssueSink,
): void {
  let i = 0;
  while (i < count) {
    const h = words[start + i];
    const line = firstDumpLine + Math.floor(i / 8);
    if (h >>> 30 !== 3) {
      sink.add(line, 'error', `runlist dword ${i}: 0x${hex8(h)} is not a PM4 type-3 packet header`);
      return;
    }
    const dwords = ((h >>> 16) & 0x3fff) + 2;
    const opcode = (h >>> 8) & 0xff;
    if (i + dwords > count) {
      const name = PM4_OPCODE_NAMES[opcode] ?? `opcode 0x${opcode.toString(16).padStart(2, '0')}`;
      sink.add(line, 'error', `runlist dword ${i}: ${name} packet needs ${dwords} dwords, only ${count - i} left`);
      return;
    }
    const need = opcode === 0xa1 ? 16 : opcode === 0xa2 ? 7 : 0; // the shortest layout (v9 MAP_PROCESS)
    if (dwords < need) {
      // kept: the decoders give null for the fields of the dwords it lacks (docs/kfd-formats.md)
      sink.add(line, 'warning', `runlist dword ${i}: ${PM4_OPCODE_NAMES[opcode]} packet has ${dwords} dwords, its layout needs ${need}: the fields of the missing dwords are unknown`);
    }
    const r = packets.length; // a new row, written in column order
    packets[r + P.node] = nodeRow;
    packets[r + P.dwordOffset] = i;
    packets[r + P.opcode] = opcode;
    packets[r + P.dwords] = dwords;
    i += dwords;
  }
}

/**
 * One long function on purpose: its line loop keeps the parse state in locals that V8 holds in
 * registers; the same parser split into per-line callbacks measured 10-14% slower (bench/RESULTS.md,
 * "TS parsers before/after the shared line scanner"). The loop skeleton itself is shared
 * (DumpLineScanner in text-scan.ts).
 */
export function parseRlsTs(input: string | Uint8Array): RlsRaw {
  const s = asLatin1(input);
  const sink = new IssueSink();
  const words = new WordBuffer(Math.ceil(s.length / 9));
  const nodes: number[] = [];
  const packets: number[] = [];
  const lead = [0];

  let curNode = -1;
  let skip = false; // dump lines skipped silently (bad or repeated node header, orphan dump, broken dump)
  // first line of each node number and gpu_id seen, to find a node printed twice
  const seenNode = new Map<number, number>();
  const seenGpu = new Map<number, number>();

  const closeNode = (): void => {
    if (curNode < 0) return;
    const r = curNode * RLS_NODE_COLS;
    nodes[r + N.wordCount] = words.length - nodes[r + N.wordOffset];
    nodes[r + N.firstPacket] = packets.length / RLS_PACKET_COLS;
    walkPm4(words.buf, nodes[r + N.wordOffset], nodes[r + N.wordCount], curNode, nodes[r + N.firstDumpLine], packets, sink);
    nodes[r + N.packetCount] = packets.length / RLS_PACKET_COLS - nodes[r + N.firstPacket];
    curNode = -1;
  };

  const addNode = (node: number, gpuId: number, lineNo: number): void => {
    curNode = nodes.length / RLS_NODE_COLS;
    const r = nodes.length; // a new row, written in column order
    nodes[r + N.node] = node;
    nodes[r + N.gpuId] = gpuId;
    nodes[r + N.line] = lineNo;
    nodes[r + N.noRunlist] = 0;
    nodes[r + N.wordOffset] = words.length;
    nodes[r + N.wordCount] = 0;
    nodes[r + N.firstPacket] = 0;
    nodes[r + N.packetCount] = 0;
    nodes[r + N.firstDumpLine] = 0;
  };

  // The dump-line branch stays in this loop rather than in a callback: the state it reads
  // (skip, lead, s) then lives in registers, not in the closures' shared context.
  const sc = new DumpLineScanner(s, DumpLines.twoSpacesHex);
  while (sc.next()) {
    const { start, end, lineNo } = sc;
    if (sc.dump) {
      // ---- IB dump line
      if (curNode < 0) {
        if (!skip) {
          sink.add(lineNo, 'error', 'runlist dump line outside a Node block');
          skip = true;
        }
        continue;
      }
      if (skip) continue;
      const r = curNode * RLS_NODE_COLS;
      words.reserve(8);
      const k = parseDumpLine(s, start, end, 2, words.buf, words.length, lead);
      if (k < 0) {
        sink.add(lineNo, 'error', `malformed runlist dump line: "${snippet(s, start, end)}"`);
        skip = true;
        continue;
      }
      const have = (words.length - nodes[r + N.wordOffset]) * 4;
      if (lead[0] !== have) {
        sink.add(lineNo, 'error', `runlist dump offset 0x${hex8(lead[0])} where 0x${hex8(have)} was expected`);
        skip = true;
        continue;
      }
      if (have === 0) nodes[r + N.firstDumpLine] = lineNo;
      words.length += k;
      continue;
    }

    const line = s.slice(start, end);
    if (line.charCodeAt(0) === 0x4e /* N */ && line.startsWith('Node')) {
      closeNode();
      const h = matchNodeHeader(line);
      if (!h) {
        sink.add(lineNo, 'error', `unrecognised node header (its runlist is skipped): "${snippet(s, start, end)}"`);
        skip = true;
        continue;
      }
      const again = seenNode.get(h.node) ?? seenGpu.get(h.gpuId);
      if (again !== undefined) {
        sink.add(lineNo, 'error', `node ${h.node} (gpu_id ${h.gpuId.toString(16)}) again, first at line ${again}: two dumps appended? this copy is skipped`);
        skip = true;
        continue;
      }
      seenNode.set(h.node, lineNo);
      seenGpu.set(h.gpuId, lineNo);
      skip = false;
      addNode(h.node, h.gpuId, lineNo);
      continue;
    }
    if (line === NO_RUNLIST) {
      if (curNode >= 0) nodes[curNode * RLS_NODE_COLS + N.noRunlist] = 1;
      // after a bad Node header its lines are skipped silently, like the dump lines
      else if (!skip) sink.add(lineNo, 'error', '"No active runlist" outside a Node block');
      continue;
    }
    sink.add(lineNo, 'error', `unrecognised line: "${snippet(s, start, end)}"`);
  }
  closeNode();

  return {
    words: words.finish(),
    nodes: Float64Array.from(nodes),
    packets: Float64Array.from(packets),
    issues: sink.issues,
    suppressed: sink.suppressed,
    lines: sc.lineNo,
  };
}
